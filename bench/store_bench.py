"""Report throughput of the SQLite observation store, direct and through DBManager gRPC.

Each case writes `--batches` batches of `--rows` metric logs per writer into a fresh file
and is repeated `--repeats` times; the table gives the median rows/s and the ratio to the
baseline (one writer, synchronous=NORMAL) measured in the same run.

    .venv/bin/python bench/store_bench.py [--repeats 5] [--batches 200] [--rows 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from controller.dbmanager import DBManagerClient, make_dbmanager_server
from controller.store_sqlite import SQLiteStore


def _write(path: str, synchronous: str, trial: str, batches: int, rows: int,
           ready: object = None) -> None:
    store = SQLiteStore(path, synchronous=synchronous)
    if ready is not None:  # start the clock after every process has started and opened
        ready.wait()  # type: ignore[attr-defined]
    for i in range(batches):
        store.report(trial, [(f"m{j}", f"{i}.{j}", "") for j in range(rows)])
    store.close()


def processes(n: int, synchronous: str) -> Callable[[Path, int, int], float]:
    def run(db: Path, batches: int, rows: int) -> float:
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Barrier(n + 1)
        procs = [ctx.Process(target=_write,
                             args=(str(db), synchronous, f"p{p}", batches, rows, ready))
                 for p in range(n)]
        for proc in procs:
            proc.start()
        ready.wait()
        start = time.perf_counter()
        for proc in procs:
            proc.join()
            assert proc.exitcode == 0
        return time.perf_counter() - start

    return run


def threads(n: int, synchronous: str) -> Callable[[Path, int, int], float]:
    def run(db: Path, batches: int, rows: int) -> float:
        ready = threading.Barrier(n + 1)
        workers = [threading.Thread(target=_write,
                                    args=(str(db), synchronous, f"t{t}", batches, rows, ready))
                   for t in range(n)]
        for worker in workers:
            worker.start()
        ready.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        return time.perf_counter() - start

    return run


def grpc_clients(n: int) -> Callable[[Path, int, int], float]:
    def run(db: Path, batches: int, rows: int) -> float:
        store = SQLiteStore(db)
        server, port = make_dbmanager_server(store, port=0)
        start = time.perf_counter()

        def push(t: int) -> None:
            with DBManagerClient(f"127.0.0.1:{port}") as client:
                for i in range(batches):
                    client.report(f"g{t}", [(f"m{j}", f"{i}.{j}", "") for j in range(rows)])

        workers = [threading.Thread(target=push, args=(t,)) for t in range(n)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        server.stop(None).wait()
        store.close()
        return elapsed

    return run


CASES: dict[str, tuple[int, Callable[[Path, int, int], float]]] = {
    "1 writer, NORMAL (baseline)": (1, threads(1, "NORMAL")),
    "1 writer, FULL": (1, threads(1, "FULL")),
    "4 threads, NORMAL": (4, threads(4, "NORMAL")),
    "4 processes, NORMAL": (4, processes(4, "NORMAL")),
    "4 processes, FULL": (4, processes(4, "FULL")),
    "4 gRPC clients -> DBManager, NORMAL": (4, grpc_clients(4)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rows", type=int, default=10)
    args = parser.parse_args()
    results: dict[str, float] = {}
    for name, (writers, case) in CASES.items():
        rates = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                db = Path(tmp) / "bench.db"
                SQLiteStore(db).close()
                elapsed = case(db, args.batches, args.rows)
                with SQLiteStore(db) as check:  # nothing lost
                    total = sum(len(check.get(trial)) for trial in
                                [f"{p}{i}" for p in "ptg" for i in range(writers)])
                assert total == writers * args.batches * args.rows, (name, total)
            rates.append(total / elapsed)
        results[name] = statistics.median(rates)
    baseline = results["1 writer, NORMAL (baseline)"]
    print(f"python {platform.python_version()}, {args.repeats} repeats, {args.batches} batches x "
          f"{args.rows} rows per writer; median rows/s (batches/s = rows/s / {args.rows})\n")
    print("| case | rows/s | batches/s | vs baseline |")
    print("| --- | ---: | ---: | ---: |")
    for name, rate in results.items():
        print(f"| {name} | {rate:,.0f} | {rate / args.rows:,.0f} | {rate / baseline:.2f}x |")


if __name__ == "__main__":
    main()
