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
