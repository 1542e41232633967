"""Independent jobs (a codec's bands) on several CPU cores, in forked worker processes.

Forked, not spawned: a forked child starts in milliseconds with the parent's modules, model and
inputs already in memory, where a spawned one spends about 2.5 s importing torch. A forked child
must run torch on one thread: OpenMP's thread pool does not survive ``fork`` (a child that uses
two threads hangs), so every worker sets one thread before it does anything else, as PyTorch's
DataLoader workers do. numpy's BLAS is not limited that way: a numpy matrix product in a worker
runs on OpenBLAS's own threads, which fight the other workers for the cores (the encoder once
lost a quarter of its speed to one), so the codec's numpy code uses none. Where ``fork`` is not
available (or not safe: outside Linux) the jobs run one after another in this process.
(Python 3.12 and later warn that forking a process with threads may deadlock: the idle OpenMP
threads count. The workers take no lock those threads could hold; they only run the job.)
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import torch

from .errors import PxcError

R = TypeVar("R")
#: A job: ``job(i, report)`` does job ``i`` and may call ``report(units_done_so_far)``.
Job = Callable[[int, Callable[[int], None]], R]

#: Seconds between progress reports while waiting for workers.
POLL = 0.2

_lock = threading.Lock()
_job: Job | None = None
_done = None  # a shared array of units done per job, inherited by the workers


def can_fork() -> bool:
    """Whether jobs can run in forked workers here."""
    return sys.platform.startswith("linux")


def run(job: Job[R], count: int, workers: int, progress: Callable[[int], None] | None = None) -> list[R]:
    """``job(i, report)`` for i in range(count), results in order.

    With ``workers`` > 1 the jobs run in that many forked processes with one torch thread each;
    ``progress(total units done)`` is called in this process as workers report. A job's error
    (a ``PxcError``) is raised here with its own type.
    """
    if workers <= 1 or count <= 1 or not can_fork():
        done = [0] * count

        def serial(i: int) -> R:
            def report(units: int) -> None:
                done[i] = units
                if progress:
                    progress(sum(done))
            return job(i, report)
        return [serial(i) for i in range(count)]
    global _job, _done
    with _lock:  # the job reaches the workers as a module global, so one run at a time
        _job, _done = job, multiprocessing.get_context("fork").RawArray("q", count)
        try:
            with concurrent.futures.ProcessPoolExecutor(min(workers, count),
                                                        mp_context=multiprocessing.get_context("fork"),
                                                        initializer=torch.set_num_threads,
                                                        initargs=(1,)) as pool:
                futures = [pool.submit(_in_worker, i) for i in range(count)]
                pending: set = set(futures)
                while pending:
                    finished, pending = concurrent.futures.wait(pending, POLL, concurrent.futures.FIRST_EXCEPTION)
                    failed = [f.exception() for f in finished if f.exception()]
                    if failed:
                        for f in pending:
                            f.cancel()
                        raise failed[0]
                    if progress:
                        progress(sum(_done))
                return [f.result() for f in futures]
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise PxcError(f"a worker process died: {exc}") from exc
        finally:
            _job = _done = None


def _in_worker(i: int) -> object:
    """Job ``i`` in a worker, reporting its units done through the shared array."""
    def report(units: int) -> None:
        _done[i] = units
    return _job(i, report)
