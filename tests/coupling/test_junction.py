"""``halide-ionics kmc junction``: a biased, electrode-contacted KMC junction written as a
multi-frame extxyz trajectory, a per-layer NetCDF and an animation."""
import json

import numpy as np
import pytest

from halide_ionics.coupling.cli import main
from halide_ionics.coupling.junction import layers_path, run_junction
from halide_ionics.errors import InputError


def test_cli_writes_trajectory_layers_and_movie(tmp_path, capsys):
    import ase.io
    import xarray as xr
    from PIL import Image

    out, movie = tmp_path / "traj.extxyz", tmp_path / "traj.gif"
    rc = main(["kmc", "junction", "--cells", "3", "3", "12", "--bias", "0.25", "--time", "0.6", "--frames", "3",
               "--out", str(out), "--movie", str(movie), "--seed", "4", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    frames = ase.io.read(out, index=":")
    assert len(frames) == 4 == res["frames"]
    t = [f.info["time_s"] for f in frames]
    np.testing.assert_allclose(t, [0.0, 0.2, 0.4, 0.6], rtol=1e-12, atol=0)
    n_sites = 3 * 3 * 3 * 12
    for f, nv in zip(frames, res["n_vacancies"]):
        sym = np.array(f.get_chemical_symbols())
        assert (sym == "X").sum() == f.info["n_vacancies"] == nv
        assert ((sym == "Br") | (sym == "Cl") | (sym == "X")).sum() == n_sites
        assert (sym == "Cs").sum() == (sym == "Pb").sum() == 3 * 3 * 12
        np.testing.assert_array_equal(f.positions, frames[0].positions)
    # sources on: the contacts exchanged vacancies with the electrodes
    counts = np.array(res["electrode_counts"])
    assert counts[:, 0].sum() > 0 and counts[:, 1].sum() > 0
    created_minus_filled = counts[:, 0].sum() - counts[:, 1].sum()
    assert res["n_vacancies"][-1] - res["n_vacancies"][0] == created_minus_filled
    with xr.open_dataset(layers_path(out), engine="h5netcdf") as ds:
        np.testing.assert_allclose(ds.time.values, t)
        np.testing.assert_allclose((ds.x_br + ds.x_cl + ds.x_vac).values, 1.0, rtol=1e-12)
        np.testing.assert_allclose(ds.vacancies_plane.sum("plane").values, res["n_vacancies"])
        assert ds.psi_plane.values[0, 0] == pytest.approx(0.125) and ds.psi_plane.values[0, -1] == pytest.approx(-0.125)
        assert "version" in ds.attrs and "config" in ds.attrs
    with Image.open(movie) as im:
        assert im.n_frames == 4


def test_blocking_contacts_conserve_ions_and_same_seed_same_trajectory(tmp_path):
    import ase.io

    kw = dict(cells=(3, 4, 10), bias_V=-0.3, sources=False, time_s=0.3, frames=2, seed=9)
    a = run_junction(out=tmp_path / "a.extxyz", **kw)
    b = run_junction(out=tmp_path / "b.extxyz", **kw)
    assert a["kmc_steps"] == b["kmc_steps"] and a["kmc_steps"][-1] > 0
    fa, fb = ase.io.read(tmp_path / "a.extxyz", index=":"), ase.io.read(tmp_path / "b.extxyz", index=":")
    for x, y in zip(fa, fb):
        np.testing.assert_array_equal(x.numbers, y.numbers)
    # no sources: the vacancies and the Br/Cl inventory of the wire are conserved
    assert len(set(a["n_vacancies"])) == 1 and a["electrode_counts"] is None
    inv = [((f.numbers == 35).sum(), (f.numbers == 17).sum()) for f in fa]
    assert len(set(inv)) == 1
    assert a["cells"] == [3, 4, 10]


@pytest.mark.parametrize("argv, field", [
    (["--cells", "3", "3", "11"], "cells"),
    (["--cells", "2", "3", "12"], "cells"),
    (["--frames", "0"], "frames"),
    (["--time", "-1"], "time_s"),
    (["--movie", "m.avi"], "movie"),
    (["--out", "t.txt"], "out"),
    (["--bias", "nan"], "bias_V"),
])
def test_bad_input_exit_2_and_no_output(tmp_path, capsys, monkeypatch, argv, field):
    monkeypatch.chdir(tmp_path)
    base = {"--cells": ["3", "3", "12"], "--time": ["0.1"], "--frames": ["1"], "--out": ["t.extxyz"]}
    i = 0
    while i < len(argv):
        k = argv[i]
        n = 3 if k == "--cells" else 1
        base[k] = argv[i + 1:i + 1 + n]
        i += 1 + n
    rc = main(["kmc", "junction"] + [x for k, v in base.items() for x in [k, *v]])
    assert rc == 2
    err = capsys.readouterr().err
    assert field in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError) as exc:
        kw = {"cells": (3, 3, 12), "time_s": 0.1, "frames": 1, "out": "t.extxyz"}
        key = {"--cells": "cells", "--frames": "frames", "--time": "time_s", "--movie": "movie", "--out": "out",
               "--bias": "bias_V"}[argv[0]]
        val = base[argv[0]]
        kw[key] = tuple(int(x) for x in val) if key == "cells" else (val[0] if key in ("movie", "out") else float(val[0]))
        run_junction(**kw)
    assert exc.value.field == field
