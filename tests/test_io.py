"""Atomic writes: no partial file on failure, normal permissions on success."""
import os

import pytest

from halide_ionics.io import atomic_path, provenance, write_json_atomic


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    dest = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_success_has_umask_permissions(tmp_path):
    dest = tmp_path / "sub" / "out.json"
    write_json_atomic(dest, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in dest.parent.iterdir()] == ["out.json"]


def test_provenance_has_version_config_seed():
    rec = provenance(config={"x": 1}, seed=3)
    assert rec["package"] == "halide-ionics" and rec["version"]
    assert rec["config"] == {"x": 1} and rec["seed"] == 3


def _strict_loads(text):
    import json

    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def test_json_is_strict_nan_and_inf_become_null(tmp_path):
    import numpy as np

    dest = tmp_path / "s.json"
    write_json_atomic(dest, {"nan": float("nan"), "inf": np.float64("inf"), "arr": np.array([1.0, np.nan]),
                             "i": np.int64(3), "b": np.bool_(True), "t": (1, 2), "ok": 0.5})
    d = _strict_loads(dest.read_text())
    assert d == {"nan": None, "inf": None, "arr": [1.0, None], "i": 3, "b": True, "t": [1, 2], "ok": 0.5}


def test_json_safe_is_the_one_converter():
    import numpy as np

    from halide_ionics.io import json_safe

    assert json_safe({1: np.float32(np.nan), "x": [np.inf, -np.inf, np.float64(2.5)]}) == {"1": None,
                                                                                          "x": [None, None, 2.5]}


def _full_filesystem(tmp_path):
    """A 256 kB tmpfs when this process may mount one, else None."""
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    return mnt if r.returncode == 0 else None


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """NetCDF onto a full file system: exit 1, one line naming the file, no partial file (no h5py crash)."""
    import collections
    import errno
    import subprocess

    import halide_ionics.io as hio
    from halide_ionics.coupling.cli import main

    # the pre-flight free-space check would refuse the run: pretend the disk looks empty, so the
    # failure happens while writing, as when another process fills the disk during the run
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(hio.shutil, "disk_usage", lambda p: usage(1 << 40, 0, 1 << 40))
    mnt = _full_filesystem(tmp_path)
    if mnt is None:  # no tmpfs here: a patched writer raises what a full disk raises
        mnt = tmp_path / "out"
        mnt.mkdir()

        def full(fd, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(hio.os, "write", full)
    try:
        rc = main(["device", "--hours", "0.01", "--nodes", "2000", "--out", str(mnt / "run.nc")])
        err = capsys.readouterr().err.strip()
        assert rc == 1
        assert err.splitlines() == [err] and "no space left on device" in err and "run.nc" in err
        assert list(mnt.iterdir()) == []
    finally:
        if mnt.name == "tiny":
            subprocess.run(["umount", str(mnt)], check=False)


def test_output_path_checks():
    from halide_ionics.errors import InputError
    from halide_ionics.io import check_output_path

    with pytest.raises(InputError, match="--out=''"):
        check_output_path("--out", "")
    with pytest.raises(InputError, match="is not a directory"):
        check_output_path("--out", __file__ + "/x.nc")
    with pytest.raises(InputError, match="is a directory"):
        check_output_path("--out", os.path.dirname(__file__))
    with pytest.raises(InputError, match="not a directory"):
        check_output_path("--out", __file__, kind="dir")


def test_provenance_attrs_store_big_integers_as_text():
    from halide_ionics.io import provenance_attrs

    a = provenance_attrs(seed=2**64, config={"x": float("nan")})
    assert a["seed"] == str(2**64)
    assert _strict_loads(a["config"]) == {"x": None}


def test_read_only_file_system_is_refused_before_work(tmp_path, capsys):
    import subprocess

    from halide_ionics.coupling.cli import main

    mnt = tmp_path / "ro"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        rc = main(["device", "--hours", "0.01", "--out", str(mnt / "run.nc")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.splitlines() == [err] and "read-only file system" in err and "--out=" in err
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
