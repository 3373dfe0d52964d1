"""Resumable, executor-agnostic parameter sweeps with a content-hash cache.

A sweep is a list of :class:`Task` objects: a module-level function (given by its import path so
that any ``concurrent.futures.Executor`` — a local process pool or a Dask distributed cluster —
can run it), its keyword arguments, and a stable ``key`` that names the task inside the sweep.
Each task's random stream is ``numpy.random.SeedSequence(root_seed, spawn_key=task.spawn_key)``,
keyed by the task's identity rather than by scheduling order, so results do not depend on the
number of workers or the order in which tasks finish.

Every finished task is written atomically to ``<workdir>/<task-hash>.pkl``; an interrupted sweep
started again only runs the tasks whose files are missing. The task hash covers the function
path, the arguments, the seed, the spawn key, the package version and ``SCHEMA_VERSION`` (bump it
whenever a kernel's meaning changes).
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib
import json
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from halide_ionics import __version__
from halide_ionics.io import atomic_path

log = logging.getLogger(__name__)

#: Bump by hand whenever the meaning of a cached result changes (kernel semantics, estimators).
SCHEMA_VERSION = 5


def default_cache_dir() -> Path:
    """``$HALIDE_IONICS_CACHE_DIR``, else ``$XDG_CACHE_HOME/halide-ionics``, else ``~/.cache/halide-ionics``."""
    env = os.environ.get("HALIDE_IONICS_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "halide-ionics"


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, exact float repr, arrays by dtype/shape/bytes hash)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_canon_default)


def _canon_default(o):
    if isinstance(o, np.ndarray):
        return {
            "__ndarray__": hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest(),
            "dtype": str(o.dtype),
            "shape": list(o.shape),
        }
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"cannot hash object of type {type(o).__name__}")


def content_hash(obj: Any, length: int = 20) -> str:
    blob = canonical_json({"schema": SCHEMA_VERSION, "version": __version__, "payload": obj})
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Task:
    """One unit of sweep work.

    ``func`` is ``"package.module:function"``; the function is called as
    ``func(seed=SeedSequence, **kwargs)`` and must return a picklable result.
    """

    key: str
    func: str
    kwargs: dict = field(default_factory=dict)
    spawn_key: tuple[int, ...] = ()

    def digest(self, root_seed: int) -> str:
        return content_hash(
            {"func": self.func, "kwargs": self.kwargs, "seed": int(root_seed), "spawn_key": list(self.spawn_key)}
        )


def _resolve(path: str) -> Callable:
    mod, _, name = path.partition(":")
    return getattr(importlib.import_module(mod), name)


def run_task(task: Task, root_seed: int, out_path: str) -> str:
    """Run one task and write its result atomically (module-level so every executor can pickle it)."""
    out = Path(out_path)
    if out.exists():
        return out_path
    fn = _resolve(task.func)
    ss = np.random.SeedSequence(int(root_seed), spawn_key=tuple(task.spawn_key))
    result = fn(seed=ss, **task.kwargs)
    record = {"key": task.key, "task": task, "root_seed": int(root_seed), "result": result}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(record, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return out_path


def run_sweep(
    tasks: Sequence[Task],
    workdir: str | os.PathLike,
    root_seed: int,
    executor: cf.Executor | None = None,
    workers: int = 1,
    progress: bool = False,
    description: str = "sweep",
) -> dict[str, Any]:
    """Run ``tasks`` (skipping those already finished in ``workdir``) and return ``{key: result}``.

    With ``executor=None`` a local ``ProcessPoolExecutor(workers)`` is used (``workers=1`` runs
    in-process). Any ``concurrent.futures.Executor`` works, e.g. a Dask
    ``Client(...).get_executor(pure=False)``.
    """
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {t.key: workdir / f"{t.digest(root_seed)}.pkl" for t in tasks}
    todo = [t for t in tasks if not paths[t.key].exists()]
    log.info("%s: %d tasks, %d cached, %d to run", description, len(tasks), len(tasks) - len(todo), len(todo))

    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=description, disable=not progress, leave=False)
        try:
            if executor is None and (workers <= 1 or len(todo) == 1):  # no pool for a single task
                for t in todo:
                    run_task(t, root_seed, str(paths[t.key]))
                    bar.update()
            else:
                own = executor is None
                ex = executor or cf.ProcessPoolExecutor(max_workers=workers)
                try:
                    futs = [ex.submit(run_task, t, root_seed, str(paths[t.key])) for t in todo]
                    for f in cf.as_completed(futs):
                        f.result()
                        bar.update()
                finally:
                    if own:
                        ex.shutdown(cancel_futures=True)
        finally:
            bar.close()

    results = {}
    for t in tasks:
        with open(paths[t.key], "rb") as fh:
            results[t.key] = pickle.load(fh)["result"]
    return results


def dask_executor(scheduler_address: str):
    """A ``concurrent.futures.Executor`` on a Dask distributed cluster (optional dependency)."""
    try:
        from dask.distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError(
            "the Dask scheduler needs the optional extra: pip install 'halide-ionics[cluster]'"
        ) from exc
    client = Client(scheduler_address)
    return client, client.get_executor(pure=False)
