"""Process pools that die with their parent, and worker-count capping.

:func:`process_pool` returns a ``concurrent.futures.ProcessPoolExecutor`` whose workers

* ask the kernel to kill them when the parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on
  Linux), so a ``kill -9`` of the parent leaves no orphan computing forever;
* exit at once if the parent is already gone when they start;
* ignore SIGINT (Ctrl-C goes to the whole process group: the parent handles it, tears the pool
  down and prints one line, the workers print no traceback), and die quietly on SIGTERM.

:func:`terminate_pool` kills a pool's workers and cancels what is queued (for interrupts);
:func:`cap_workers` caps a requested worker count at the number of tasks and CPUs.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort; the parent still terminates the pool
        pass


def worker_init(parent_pid: int | None = None) -> None:
    """Initializer of every pool worker (module level so any start method can run it)."""
    _set_pdeathsig(signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:  # parent died before prctl
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A process pool whose workers die with the parent and ignore Ctrl-C (see module docstring)."""
    return cf.ProcessPoolExecutor(max_workers=int(workers), initializer=worker_init, initargs=(os.getpid(),))


@contextlib.contextmanager
def pool_scope(workers: int):
    """A :func:`process_pool` for a ``with`` block: shut down cleanly when the block ends, its
    workers killed at once (no waiting for running tasks) when it ends by an error or interrupt."""
    ex = process_pool(workers)
    ok = False
    try:
        yield ex
        ok = True
    finally:
        if ok:
            ex.shutdown()
        else:
            terminate_pool(ex)


def terminate_pool(ex: cf.Executor) -> None:
    """Cancel queued work and kill the workers of a local process pool now (no waiting)."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    for p in procs:
        try:
            p.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass
    try:
        ex.shutdown(wait=False, cancel_futures=True)
    except Exception:  # noqa: BLE001
        pass
    for p in procs:
        try:
            p.join(timeout=5)
        except Exception:  # noqa: BLE001
            pass


def cap_workers(requested: int, n_tasks: int, what: str = "tasks") -> int:
    """``min(requested, n_tasks, CPUs)`` (at least 1), with a log message when capped."""
    req = max(1, int(requested))
    cpus = available_cpus()
    w = max(1, min(req, max(1, int(n_tasks)), cpus))
    if w < req:
        # said once per requested count and process (a pipeline runs many small sweeps)
        level = logging.INFO if req in _WARNED else logging.WARNING
        _WARNED.add(req)
        log.log(level, "using %d worker process%s instead of %d (%d %s, %d CPUs available)",
                w, "" if w == 1 else "es", req, n_tasks, what, cpus)
    return w


_WARNED: set = set()


def kill_children() -> None:
    """Terminate every ``multiprocessing`` child of this process (last-resort cleanup)."""
    import multiprocessing

    kids = multiprocessing.active_children()
    for p in kids:
        try:
            p.terminate()
        except Exception:  # noqa: BLE001
            pass
    for p in kids:
        try:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        except Exception:  # noqa: BLE001
            pass
