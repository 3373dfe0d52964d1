"""The research scripts in examples/ run, in their quick form, and write what they say."""
import json
import runpy
import subprocess
import sys
from pathlib import Path


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [name, "--quick", *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_junction(tmp_path, monkeypatch):
    run_example("01_junction.py", monkeypatch, "--out", str(tmp_path))
    from ase.io import read

    atoms = read(tmp_path / "junction.extxyz")
    symbols = set(atoms.get_chemical_symbols())
    assert {"Cs", "Pb", "Br", "Cl"} <= symbols
    assert (tmp_path / "junction.png").read_bytes()[:4] == b"\x89PNG"


def test_onsager_against_manning(tmp_path, monkeypatch):
    import numpy as np

    from halide_ionics.continuum import manning_maa

    run_example("02_onsager_vs_manning.py", monkeypatch, "--out", str(tmp_path))
    rows = np.loadtxt(tmp_path / "onsager.csv", delimiter=",")
    c, l_bb, se_bb = rows[:, 0], rows[:, 1], rows[:, 2]
    ref = manning_maa(c, 1.0, 0.1)[0]
    # the KMC agrees with Manning's closed form (~1 % accurate at this ratio) within 4 SE + 2 %
    assert np.all(np.abs(l_bb - ref) <= 4 * se_bb + 0.02 * ref)
    assert (tmp_path / "onsager_vs_manning.png").exists()


def test_device_from_toml(tmp_path, monkeypatch, capsys):
    import xarray as xr

    run_example("03_device_from_toml.py", monkeypatch, "--out", str(tmp_path))
    assert "status ok" in capsys.readouterr().out
    assert (tmp_path / "device.png").exists()
    with xr.open_dataset(tmp_path / "device.nc", engine="h5netcdf") as ds:
        assert ds.sizes["z"] > 100


def test_study_from_python(tmp_path, monkeypatch, capsys):
    from halide_ionics.coupling import studies
    from tests.coupling.test_studies import TINY

    monkeypatch.setattr(studies.StudyConfig, "quick_config", classmethod(lambda cls: TINY))  # test sizes
    run_example("04_study.py", monkeypatch, "--out", str(tmp_path / "s16"), "--cache-dir", str(tmp_path / "cache"))
    assert "positive contact (Br-rich side) controls" in capsys.readouterr().out
    rec = json.loads((tmp_path / "s16" / "s16.json").read_text())
    assert rec["study"] == "s16" and (tmp_path / "s16" / "s16.nc").exists()


def test_dask_sweep(tmp_path):
    """Runs as a user runs it (a separate process: the LocalCluster's workers import the script)."""
    import xarray as xr

    r = subprocess.run([sys.executable, str(EXAMPLES / "05_dask_sweep.py"), "--quick", "--out", str(tmp_path),
                        "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    with xr.open_dataset(tmp_path / "table.nc", engine="h5netcdf") as ds:
        assert ds.sizes["composition"] == 5
        assert (ds["l_brbr"].values[:-1] > 0).all() and (ds["l_clcl"].values[1:] > 0).all()  # none at c = 1 / 0
