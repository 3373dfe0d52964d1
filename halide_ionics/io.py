"""Atomic writes and provenance shared by every layer.

Outputs are written to a temporary file in the destination directory and renamed into place,
so an interrupted or failed run never leaves a partial file behind.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
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
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


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
        if isinstance(v, (str, int, float)):
            out[k] = v
        else:
            out[k] = json.dumps(v, sort_keys=True, default=_json_default)
    return out


def json_safe(obj: Any) -> Any:
    """Strict-JSON copy: numpy scalars/arrays → Python, NaN/±inf → None (JSON has no NaN)."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
