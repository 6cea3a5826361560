"""controller.local.interrupts: a signal sets a flag; the run raises only at its safe points."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from controller.local.interrupts import SignalFlag


def test_a_signal_sets_the_flag_and_check_raises_only_then() -> None:
    before = signal.getsignal(signal.SIGTERM)
    flag = SignalFlag().install()
    try:
        flag.check()
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the flag: the test process lives on
        assert flag.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            flag.check()
    finally:
        flag.restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGINT)
    flags: list[SignalFlag] = []
    thread = threading.Thread(target=lambda: flags.append(SignalFlag().install()))  # signal.signal would raise here
    thread.start()
    thread.join()
    assert len(flags) == 1 and flags[0].signum is None
    assert signal.getsignal(signal.SIGINT) is before
