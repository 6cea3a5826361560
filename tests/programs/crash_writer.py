"""Test program: report batches to a SQLite store, printing `ack <i>` after each commit.

Usage: crash_writer.py DB_PATH TRIAL BATCHES ROWS_PER_BATCH [--threads N]

The crash test SIGKILLs it mid-stream; every batch it printed must be in the store.
With --threads, N threads write interleaved batches (trial names TRIAL-<thread>).
"""

from __future__ import annotations

import sys
import threading

from controller.store_sqlite import SQLiteStore


def write(store: SQLiteStore, trial: str, batches: int, rows: int, lock: threading.Lock) -> None:
    for i in range(batches):
        store.report(trial, [(f"m{j}", f"{i}.{j}", "") for j in range(rows)])
        with lock:
            sys.stdout.write(f"ack {trial} {i}\n")
            sys.stdout.flush()


def main() -> None:
    path, trial, batches, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--threads" else 1
    store = SQLiteStore(path)
    lock = threading.Lock()
    workers = [threading.Thread(target=write, args=(store, f"{trial}-{t}" if threads > 1 else trial,
                                                    batches, rows, lock)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()


if __name__ == "__main__":
    main()
