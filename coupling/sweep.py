"""Resumable, executor-agnostic parameter sweeps with a verified content-hash cache.

A sweep is a list of :class:`Task` objects: a module-level function (given by its import path so
that any ``concurrent.futures.Executor`` — a local process pool or a Dask distributed cluster —
can run it), its keyword arguments, and a stable ``key`` that names the task inside the sweep.
Each task's random stream is ``numpy.random.SeedSequence(root_seed, spawn_key=task.spawn_key)``,
keyed by the task's identity rather than by scheduling order, so results do not depend on the
number of workers or the order in which tasks finish.

Cache keys
    The task digest covers the function path, the arguments, the seed, the spawn key, the package
    version and a hash of the *code* that produces the result (:func:`code_hash`: the source of
    the function's module and, transitively, of every ``halide_ionics`` module it imports). A code
    change therefore invalidates the affected entries by itself; there is no schema number to bump.

Entries
    Every finished task is written atomically to ``<workdir>/<digest>.pkl`` as a record carrying
    its digest, key, root seed, configuration hash and code hash, the pickled result and the
    SHA-256 of those bytes. On reading, all of them are verified; a damaged (truncated, garbage)
    or mismatched entry is reported with a warning and recomputed — a cache entry never lies.

Concurrency and interruptions
    Before computing a task the sweep takes an exclusive ``fcntl`` lock on ``<digest>.lock``
    (released by the kernel when the process dies, so a killed run leaves no stale claim). A task
    locked by another run is not computed twice: this run waits for it and reads the other run's
    result. Holding the lock, the sweep removes stale ``.part`` files a killed run left behind.
    Local pools come from :func:`halide_ionics.parallel.process_pool` (workers die with the parent)
    and are capped at the number of tasks and CPUs.
"""
from __future__ import annotations

import ast
import concurrent.futures as cf
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from halide_ionics import __version__
from halide_ionics.errors import InputError
from halide_ionics.io import write_bytes_atomic
from halide_ionics.parallel import cap_workers, pool_scope

log = logging.getLogger(__name__)

#: Format of a task record on disk (the layout of the record, not the meaning of results: that is
#: covered by the code hash).
RECORD_FORMAT = 2

#: Tasks claimed (and run) at a time; each claim holds an open lock file.
CLAIM_BATCH = 256


def default_cache_dir() -> Path:
    """``$HALIDE_IONICS_CACHE_DIR``, else ``$XDG_CACHE_HOME/halide-ionics``, else ``~/.cache/halide-ionics``."""
    env = os.environ.get("HALIDE_IONICS_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # XDG: a relative path counts as unset
        return Path(xdg) / "halide-ionics"
    try:
        home = Path.home()
    except RuntimeError:
        raise InputError("HOME", os.environ.get("HOME"),
                         "no home folder: set HALIDE_IONICS_CACHE_DIR or pass --cache-dir") from None
    return home / ".cache" / "halide-ionics"


def resolve_cache_dir(cache_dir=None, field: str = "--cache-dir") -> Path:
    """The cache folder to use, validated before any work (``cache_dir`` else the environment).

    Raises :class:`InputError` naming ``field`` (or ``HALIDE_IONICS_CACHE_DIR``) when the folder
    is empty, not a directory or not writable. Nothing is created.
    """
    from halide_ionics.io import check_output_path

    if cache_dir is not None:
        return check_output_path(field, cache_dir, kind="dir")
    env = os.environ.get("HALIDE_IONICS_CACHE_DIR")
    if env is not None and env.strip() == "" and env != "":
        raise InputError("HALIDE_IONICS_CACHE_DIR", env, "must be a path (or unset)")
    name = "HALIDE_IONICS_CACHE_DIR" if env else "cache folder (XDG_CACHE_HOME or ~/.cache)"
    return check_output_path(name, default_cache_dir(), kind="dir")


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
    """SHA-256 (hex, ``length`` digits) of ``obj`` in canonical JSON, with the package version."""
    blob = canonical_json({"version": __version__, "payload": obj})
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# ------------------------------------------------------------------------------ code hashing
def _module_file(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return spec.origin


def _imports_of(name: str, source: str, is_pkg: bool) -> set[str]:
    """Names of the ``halide_ionics`` modules imported anywhere in ``source`` (static, with submodules)."""
    out: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # pragma: no cover
        return out
    pkg = name if is_pkg else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "halide_ionics")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "halide_ionics":
                continue
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # "from pkg import submodule"
    return out


@functools.lru_cache(maxsize=None)
def code_hash(module: str) -> str:
    """SHA-256 of the source of ``module`` and of every ``halide_ionics`` module it imports, transitively.

    The cache key of a result includes this hash, so editing any code a task runs (the task's
    module, the kernels it calls, their helpers) invalidates the cached result.
    """
    seen: dict[str, str] = {}
    stack = [module]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            seen[name] = ""
            continue
        with open(path, "rb") as fh:
            src = fh.read()
        seen[name] = hashlib.sha256(src).hexdigest()
        is_pkg = os.path.basename(path) == "__init__.py"
        parts = name.split(".")
        # a submodule's package __init__ runs first on import: include the parents
        stack.extend(".".join(parts[:i]) for i in range(2, len(parts)))
        stack.extend(_imports_of(name, src.decode("utf-8", "replace"), is_pkg))
    h = hashlib.sha256()
    for name in sorted(seen):
        h.update(f"{name}:{seen[name]}\n".encode())
    return h.hexdigest()


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

    def config_hash(self) -> str:
        """Hash of what the task computes (function, arguments, spawn key), without seed or code."""
        return content_hash({"func": self.func, "kwargs": self.kwargs, "spawn_key": list(self.spawn_key)})

    def code_hash(self) -> str:
        return code_hash(self.func.partition(":")[0])

    def digest(self, root_seed: int) -> str:
        return content_hash(
            {"func": self.func, "kwargs": self.kwargs, "seed": int(root_seed), "spawn_key": list(self.spawn_key),
             "code": self.code_hash(), "record_format": RECORD_FORMAT}
        )


def _resolve(path: str) -> Callable:
    mod, _, name = path.partition(":")
    return getattr(importlib.import_module(mod), name)


class CacheEntryError(Exception):
    """A cache entry that is damaged or does not belong to the task that asked for it."""


def _encode_record(task: Task, root_seed: int, digest: str, result: Any) -> bytes:
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    record = {"format": RECORD_FORMAT, "digest": digest, "key": task.key, "func": task.func,
              "root_seed": int(root_seed), "config_hash": task.config_hash(), "code_hash": task.code_hash(),
              "package_version": __version__, "checksum": hashlib.sha256(payload).hexdigest(), "payload": payload}
    return pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)


def read_entry(path: str | os.PathLike, task: Task, root_seed: int) -> Any:
    """The verified result stored at ``path`` for ``task``; :class:`CacheEntryError` if it is not."""
    try:
        with open(path, "rb") as fh:
            record = pickle.load(fh)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/garbage files raise anything
        raise CacheEntryError(f"unreadable ({type(exc).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise CacheEntryError("unknown record format")
    expect = {"digest": task.digest(root_seed), "key": task.key, "func": task.func, "root_seed": int(root_seed),
              "config_hash": task.config_hash(), "code_hash": task.code_hash()}
    for k, v in expect.items():
        if record.get(k) != v:
            raise CacheEntryError(f"{k} mismatch (stored {record.get(k)!r}, expected {v!r})")
    payload = record.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != record.get("checksum"):
        raise CacheEntryError("checksum mismatch")
    try:
        return pickle.loads(payload)
    except Exception as exc:  # noqa: BLE001
        raise CacheEntryError(f"payload unreadable ({type(exc).__name__})") from None


def run_task(task: Task, root_seed: int, out_path: str) -> str:
    """Run one task and write its verified record atomically (module level: every executor can pickle it)."""
    out = Path(out_path)
    if out.exists():
        try:
            read_entry(out, task, root_seed)
            return out_path
        except (CacheEntryError, FileNotFoundError):
            pass
    fn = _resolve(task.func)
    ss = np.random.SeedSequence(int(root_seed), spawn_key=tuple(task.spawn_key))
    result = fn(seed=ss, **task.kwargs)
    write_bytes_atomic(out, _encode_record(task, root_seed, out.stem, result))
    return out_path


@contextlib.contextmanager
def _claims(paths: dict[str, Path]):
    """Exclusive non-blocking ``flock`` claims on ``<digest>.lock``: yields (claimed keys, busy keys)."""
    import fcntl

    held, busy = {}, []
    try:
        for key, p in paths.items():
            lock = p.with_suffix(".lock")
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                busy.append(key)
                continue
            held[key] = fd
        yield set(held), busy
    finally:
        for fd in held.values():
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _wait_for_claim(path: Path) -> None:
    import fcntl

    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the other run has finished (or died)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_stale_parts(path: Path) -> None:
    for part in path.parent.glob(f".{path.name}.*.part*"):
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
            log.info("removed a partial file left by an interrupted run: %s", part)


def _check_entry(path: Path, task: Task, root_seed: int, description: str) -> bool:
    """True when ``path`` holds a valid entry for ``task``; a bad one is reported and removed."""
    if not path.exists():
        return False
    try:
        read_entry(path, task, root_seed)
        return True
    except FileNotFoundError:
        return False
    except CacheEntryError as exc:
        log.warning("%s: cache entry %s for task %r is damaged or mismatched (%s); recomputing",
                    description, path.name, task.key, exc)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False


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

    With ``executor=None`` a local process pool of ``workers`` processes is used (``workers=1``
    runs in-process), capped at the number of tasks to run and the CPUs available. Any
    ``concurrent.futures.Executor`` works, e.g. a Dask ``Client(...).get_executor(pure=False)``.
    Every entry read back is verified (see the module docstring).
    """
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {t.key: workdir / f"{t.digest(root_seed)}.pkl" for t in tasks}
    results: dict[str, Any] = {}
    for _attempt in range(3):
        todo = [t for t in tasks if t.key not in results and not _check_entry(paths[t.key], t, root_seed, description)]
        log.info("%s: %d tasks, %d cached, %d to run", description, len(tasks), len(tasks) - len(todo), len(todo))
        busy_all: list[str] = []
        for i in range(0, len(todo), CLAIM_BATCH):  # claims hold a file descriptor each: batches
            chunk = todo[i:i + CLAIM_BATCH]
            with _claims({t.key: paths[t.key] for t in chunk}) as (mine, busy):
                run = [t for t in chunk if t.key in mine]
                # a task finished by another run between the check and the claim is not redone
                run = [t for t in run if not _check_entry(paths[t.key], t, root_seed, description)]
                for t in run:
                    _remove_stale_parts(paths[t.key])
                if busy:
                    log.info("%s: %d tasks are being computed by another run; waiting for them", description,
                             len(busy))
                _execute(run, paths, root_seed, executor, workers, progress, description)
            busy_all += busy
        for key in busy_all:
            _wait_for_claim(paths[key])
        missing = []
        for t in tasks:
            if t.key in results:
                continue
            try:
                results[t.key] = read_entry(paths[t.key], t, root_seed)
            except (CacheEntryError, FileNotFoundError):
                missing.append(t.key)
        if not missing:
            return {k: results[k] for k in keys}
        log.warning("%s: %d entries missing or damaged after the run (another run failed?); retrying",
                    description, len(missing))
    raise RuntimeError(f"{description}: could not obtain valid results for {sorted(set(keys) - set(results))}")


def _submit_all(ex, run, paths, root_seed, bar) -> list:
    futs = [ex.submit(run_task, t, root_seed, str(paths[t.key])) for t in run]
    for f in cf.as_completed(futs):
        f.result()
        bar.update()
    return futs


def _execute(run, paths, root_seed, executor, workers, progress, description) -> None:
    if not run:
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=len(run), desc=description, disable=not progress, leave=False)
    try:
        if executor is None:
            workers = cap_workers(workers, len(run)) if workers > 1 else 1
        if executor is None and workers <= 1:
            for t in run:
                run_task(t, root_seed, str(paths[t.key]))
                bar.update()
            return
        if executor is None:
            with pool_scope(workers) as ex:
                _submit_all(ex, run, paths, root_seed, bar)
            return
        futs = []
        try:
            futs = _submit_all(executor, run, paths, root_seed, bar)
        except BaseException:
            for f in futs:  # a foreign executor is not ours to kill: cancel what has not started
                f.cancel()
            raise
    finally:
        bar.close()


_SCHEDULER_PROTOCOLS = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def check_scheduler_address(address: str, field: str = "--scheduler") -> str:
    """Validate a Dask scheduler address (``[PROTOCOL://]HOST:PORT``) without connecting."""
    from urllib.parse import urlsplit

    a = str(address).strip() if address is not None else ""
    if not a:
        raise InputError(field, address, "must be a scheduler address such as tcp://HOST:8786")
    if "://" not in a:
        a = "tcp://" + a
    proto = a.split("://", 1)[0]
    if proto not in _SCHEDULER_PROTOCOLS:
        raise InputError(field, address, f"unknown protocol {proto!r}; use one of {list(_SCHEDULER_PROTOCOLS)}")
    if proto == "inproc":
        return a
    try:
        u = urlsplit(a)
        port = u.port
    except ValueError:
        raise InputError(field, address, "must look like tcp://HOST:PORT (PORT in 1..65535)") from None
    if not u.hostname or port is None or not 0 < port < 65536 or u.path not in ("", "/"):
        raise InputError(field, address, "must look like tcp://HOST:PORT (PORT in 1..65535)")
    return a


def dask_executor(scheduler_address: str, timeout_s: float = 10.0):
    """(client, ``concurrent.futures.Executor``) on a Dask distributed cluster (optional dependency).

    The address is validated first; a scheduler that cannot be reached within ``timeout_s`` is an
    :class:`InputError` naming ``--scheduler``.
    """
    addr = check_scheduler_address(scheduler_address)
    try:
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise InputError("--scheduler", scheduler_address,
                         "needs the optional extra: pip install 'halide-ionics[cluster]'") from None
    try:
        client = Client(addr, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError, ... from distributed
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError("--scheduler", scheduler_address, f"cannot connect ({msg[:160]})") from None
    return client, client.get_executor(pure=False)
