"""Atomic writes, output-path checks, strict JSON and provenance shared by every layer.

Outputs are written to a temporary file in the destination directory and renamed into place,
so an interrupted or failed run never leaves a partial file behind. NetCDF files are serialised
in memory first and then written with plain ``os.write`` calls (:func:`write_netcdf_atomic`), so
a full disk or a read-only file system surfaces as an ``OSError`` (never as a crash inside the
HDF5 library). JSON is written strictly (RFC 8259: NaN and infinities become ``null``).
:func:`check_output_path` validates an output path *before* any work starts.
"""
from __future__ import annotations

import contextlib
import errno
import math
import datetime as _dt
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file keeps the destination's suffix (or ``suffix``) so that writers that pick
    a format from the file name (ASE, matplotlib, xarray) behave as for the real name.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sfx = suffix if suffix is not None else "".join(dest.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part" + sfx, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would (umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write ``data`` atomically with plain ``os.write`` calls (ENOSPC/EROFS raise ``OSError``)."""
    # no destination suffix on the temporary name: globs such as "*.pkl" never see a partial file
    try:
        with atomic_path(path, suffix="") as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
            try:
                view = memoryview(data).cast("B")
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        if exc.filename is None:  # os.write/fsync errors name no file: name the destination
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def write_netcdf_atomic(ds, path: str | os.PathLike) -> None:
    """Write an xarray Dataset as NetCDF-4 (h5netcdf): serialised in memory, then written atomically.

    Serialising in memory keeps HDF5 away from the file system, so a full disk or a read-only
    folder ends in an ``OSError`` and leaves no file (writing through h5py can crash the process).
    """
    try:  # an active dask.distributed client would make xarray take a cluster lock on the buffer
        import dask

        ctx = dask.config.set(scheduler="synchronous")
    except ImportError:  # pragma: no cover - dask is optional
        ctx = contextlib.nullcontext()
    with ctx:
        data = ds.to_netcdf(engine="h5netcdf")
    write_bytes_atomic(path, data)


def json_safe(obj: Any) -> Any:
    """A strict-JSON copy of ``obj``: numpy scalars/arrays → Python, NaN/±inf → ``None``.

    Dict keys become strings, tuples/sets lists, paths strings. The one converter of the package.
    """
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (via :func:`json_safe`; ``allow_nan=False``)."""
    return json.dumps(json_safe(obj), indent=indent, sort_keys=True, allow_nan=False)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write strict JSON (NaN/inf → null, numpy → Python) atomically."""
    write_text_atomic(path, dumps_json(obj) + "\n")


def _json_default(o):
    """``json.dumps(default=...)`` hook kept for callers outside this module; prefer :func:`json_safe`."""
    v = json_safe(o)
    if v is o:
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")
    return v


# ------------------------------------------------------------------------------ output paths
#: Free space required on the output file system before a run starts (bytes), on top of the
#: caller's size estimate.
MIN_FREE_BYTES = 8 * 1024 * 1024


def _first_existing(p: Path) -> Path:
    q = p
    while not q.exists() and not q.is_symlink():
        if q.parent == q:
            break
        q = q.parent
    return q


def check_output_path(field: str, path, kind: str = "file", suffixes=None, expected_bytes: int = 0) -> Path:
    """Validate an output path before any work starts; returns it as a ``Path``.

    ``kind="file"``: must not be a directory, its folder must be creatable and writable;
    ``kind="dir"``: must be (or become) a writable directory. The nearest existing ancestor must be
    a directory (not a regular file) with write permission on a writable file system with at
    least ``expected_bytes`` + :data:`MIN_FREE_BYTES` free. Nothing is created. Raises
    :class:`~halide_ionics.errors.InputError` naming ``field``.
    """
    from .errors import InputError

    if path is None or (isinstance(path, str) and path.strip() == ""):
        raise InputError(field, path, "must be a non-empty path")
    if "\0" in str(path):
        raise InputError(field, str(path), "must not contain NUL characters")
    p = Path(path)
    if kind == "file":
        if suffixes is not None and p.suffix.lower() not in suffixes:
            raise InputError(field, str(path), f"file name must end in one of {list(suffixes)}")
        if p.is_dir():
            raise InputError(field, str(path), "is a directory (give a file name)")
        if p.exists() and not os.access(p, os.W_OK):
            raise InputError(field, str(path), "exists and is not writable")
        start = p.parent
    else:
        if p.exists() and not p.is_dir():
            raise InputError(field, str(path), "exists and is not a directory")
        start = p
    anc = _first_existing(start.absolute())
    if not anc.is_dir():
        raise InputError(field, str(path), f"{str(anc)!r} is not a directory")
    try:
        read_only = bool(os.statvfs(anc).f_flag & getattr(os, "ST_RDONLY", 1))
    except OSError:  # pragma: no cover - exotic file systems
        read_only = False
    if read_only:
        raise InputError(field, str(path), f"{str(anc)!r} is on a read-only file system")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise InputError(field, str(path), f"no write permission in {str(anc)!r}")
    try:
        free = shutil.disk_usage(anc).free
    except OSError:  # pragma: no cover - exotic file systems
        return p
    need = int(expected_bytes) + MIN_FREE_BYTES
    if free < need:
        raise InputError(field, str(path), f"only {free / 1e6:.1f} MB free in {str(anc)!r} "
                                           f"(need about {need / 1e6:.1f} MB)")
    return p


@contextlib.contextmanager
def removed_on_failure(folder: str | os.PathLike) -> Iterator[Path]:
    """Remove ``folder`` if the block fails and the folder did not exist before it.

    For commands that fill an output folder: a failed or interrupted run leaves no new, partial
    folder behind (a folder that existed before is left alone; its files are replaced atomically).
    """
    p = Path(folder)
    existed = p.exists()
    try:
        yield p
    except BaseException:
        if not existed and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        raise


def describe_os_error(exc: OSError) -> str:
    """One line for an I/O failure: what failed and on which path."""
    what = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        what = "no space left on device"
    elif exc.errno == errno.EROFS:
        what = "read-only file system"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = "permission denied"
    where = exc.filename if exc.filename is not None else ""
    return f"{what}: {where}" if where else what


def provenance(config: Any = None, seed: Any = None, **extra: Any) -> dict:
    """A provenance record: package version, config, seed, time, host and library versions."""
    from . import __version__
    import numpy
    import numba

    rec = {
        "package": "halide-ionics",
        "version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }
    if config is not None:
        rec["config"] = config
    if seed is not None:
        rec["seed"] = seed
    rec.update(extra)
    return rec


def provenance_attrs(config: Any = None, seed: Any = None, **extra: Any) -> dict:
    """Provenance flattened to string/number attributes for NetCDF/HDF5 files."""
    rec = provenance(config=config, seed=seed, **extra)
    out = {}
    for k, v in rec.items():
        if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
            out[k] = str(v)  # NetCDF attributes hold at most 64-bit integers
        elif isinstance(v, (str, int, float)):
            out[k] = v
        else:
            out[k] = json.dumps(json_safe(v), sort_keys=True, allow_nan=False)
    return out
