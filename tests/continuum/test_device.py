"""The built-in paper device, conservation ledger, config validation, CLI and outputs."""
import json
import subprocess
import sys

import numpy as np
import pytest

from halide_ionics import InputError
from halide_ionics.continuum import DeviceConfig, config_from_dict, load_config, simulate
from halide_ionics.continuum.config import BiasSchedule


@pytest.fixture(scope="module")
def forward():
    return simulate(DeviceConfig.paper_device(4.0, 4.0))


@pytest.fixture(scope="module")
def no_sources():
    return simulate(DeviceConfig.paper_device(4.0, 4.0, sources=False))


def test_forward_paper_run(forward):
    r = forward
    assert r.status == "ok", r.message
    assert r.mesh.n == 1000
    assert r.times_s[-1] == pytest.approx(4 * 3600.0)
    assert r.site_conservation_error <= 1e-10
    assert 0.3 <= r.final_migration_length_um <= 3.0
    # the front moves toward the Br end, steadily
    m = r.migration_length_um
    assert np.all(np.diff(m[len(m) // 4:]) > 0)
    # vacancies injected at the positive (Br-side) contact refill the depleted gap (Fig. 3a)
    assert r.x_v_gap_mean[-1] > 1e-8
    assert r.min_x_v >= -r.config.solver.atol * 1e-7
    assert np.all(r.x_br > 0) and np.all(r.x_cl > 0)


def test_conservation_per_step_and_ledger(forward):
    r = forward
    e = r.step_conservation_error
    assert e.size == r.steps
    assert np.max(np.abs(np.diff(np.concatenate([[0.0], e])))) <= 1e-12
    assert max(r.conservation_by_species.values()) <= 1e-10
    # the sources really did something, so the ledger is not trivially closed
    xv_total = np.dot(r.mesh.box_um, r.x_v[-1])
    assert xv_total > 100 * np.dot(r.mesh.box_um, r.x_v[0])


def test_no_sources_no_migration(no_sources):
    r = no_sources
    assert r.status == "ok", r.message
    assert abs(r.final_migration_length_um) <= 0.02
    assert r.site_conservation_error <= 1e-10
    # vacancies polarise: the gap is depleted
    assert r.x_v_gap_mean[-1] < 0.2 * r.x_v_gap_mean[0]


def test_bias_schedule_breakpoints():
    cfg = DeviceConfig.paper_device(nodes=150)
    cfg = cfg.replace(bias=BiasSchedule(steps=((0.0, 8.0), (30.0, -8.0), (60.0, 0.0)), duration_s=90.0))
    r = simulate(cfg)
    assert r.status == "ok"
    assert r.site_conservation_error <= 1e-10
    v = r.voltage_V
    assert v[0] == 8.0 and v[-1] == 0.0 and np.any(v == -8.0)


def test_step_failure_returns_partial_solution():
    cfg = DeviceConfig.paper_device(4.0, 1.0, nodes=120, max_steps=25)
    r = simulate(cfg)
    assert r.status == "max_steps"
    assert r.times_s[-1] < 3600.0 and np.isfinite(r.x_br[-1]).all()
    assert "max_steps" in r.message


BAD = [
    ({"geometry": {"gap_um": -4.0}}, "geometry.gap_um"),
    ({"geometry": {"width": 1.0}}, "geometry.width"),
    ({"geometry": {"electrode_width_um": "wide"}}, "geometry.electrode_width_um"),
    ({"solver": {"nodes": 10.5}}, "solver.nodes"),
    ({"solver": {"contact_mode": "point"}}, "solver.contact_mode"),
    ({"bias": {"field_V_per_um": 4.0, "schedule": [[0, 1]]}}, "bias.schedule"),
    ({"bias": {"schedule": [[1.0, 4.0]]}}, "bias.schedule"),
    ({"electrode": {"model": "table", "c": [0, 1], "k_create0_per_s": [1e-6, -1],
                    "k_annihilate0_per_s": [1, 1]}}, "electrode.k_create0_per_s"),
    ({"transport": {"model": "table", "c": [0, 0.5, 1], "l_brbr_Hz": [1, 0.5, 0], "l_brcl_Hz": [0, 9, 0],
                    "l_clcl_Hz": [0, 0.5, 1]}}, "transport.l_brcl_Hz"),
    ({"vacancy": {"x_v_pure_br": 2.0}}, "vacancy.x_v_pure_br"),
    ({"initial": {"cl_fraction_cl_segment": 1.0}}, "initial.cl_fraction_cl_segment"),
    ({"geomtry": {}}, "geomtry"),
]


@pytest.mark.parametrize("doc,key", BAD)
def test_malformed_config_names_the_key(doc, key):
    with pytest.raises(InputError) as ei:
        config_from_dict(doc)
    assert ei.value.field == key
    assert key in str(ei.value)


def test_toml_tables_roundtrip(tmp_path):
    p = tmp_path / "dev.toml"
    p.write_text("""
[geometry]
gap_um = 3.0
[transport]
model = "table"
c = [0.0, 0.25, 0.5, 0.75, 1.0]
l_brbr_Hz = [2e7, 1.4e7, 0.9e7, 0.45e7, 0.0]
l_brcl_Hz = [0.0, 1e5, 1.5e5, 1e5, 0.0]
l_clcl_Hz = [0.0, 0.05e7, 0.1e7, 0.15e7, 0.2e7]
[vacancy]
model = "table"
c = [0.0, 1.0]
x_v_eq = [1e-7, 1e-9]
[electrode]
model = "table"
c = [0.0, 1.0]
k_create0_per_s = [1e-6, 1e-8]
k_annihilate0_per_s = [1e-6, 1e-8]
[bias]
schedule = [[0.0, 6.0], [10.0, 0.0]]
duration_s = 20.0
[solver]
nodes = 120
output_times_s = [0.0, 5.0, 20.0]
""")
    cfg = load_config(p)
    assert cfg.geometry.gap_um == 3.0
    c = np.array([0.0, 0.25, 0.5, 1.0])
    aa, ab, bb = cfg.onsager(c)
    np.testing.assert_allclose(aa, [2e7, 1.4e7, 0.9e7, 0.0], rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(ab, [0.0, 1e5, 1.5e5, 0.0], rtol=1e-12, atol=1e-6)
    r = simulate(cfg)
    assert r.status == "ok" and r.times_s.tolist() == [0.0, 5.0, 20.0]
    assert cfg.to_dict()["bias"]["schedule"] == [[0.0, 6.0], [10.0, 0.0]]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "halide_ionics.coupling.cli", "device", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_bad_config_exit_2_no_output(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[geometry]\nelectrode_width_um = -1.5\n")
    out = tmp_path / "o.nc"
    res = _cli("--config", str(p), "--out", str(out), "--json", cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "geometry.electrode_width_um" in lines[0] and "-1.5" in lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [p]


def test_cli_json_and_netcdf(tmp_path):
    import xarray as xr

    out = tmp_path / "run.nc"
    res = _cli("--field", "-2", "--hours", "0.05", "--nodes", "150", "--rtol", "1e-5", "--out", str(out), "--json",
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    for k in ("migration_length_um", "site_conservation_error", "steps", "wall_seconds", "status",
              "front_position_um"):
        assert k in s
    assert s["field_V_per_um"] == -2.0 and s["status"] == "ok"
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["x_Br"].dims == ("time", "z") and ds["z"].attrs["units"] == "um"
    assert ds["time"].attrs["units"] == "s" and ds["psi"].attrs["units"] == "V"
    assert json.loads(ds.attrs["config"])["bias"]["schedule"][0][1] == pytest.approx(-8.0)
    assert float(ds["migration_length"][-1]) == pytest.approx(s["migration_length_um"])
    ds.close()


def test_plot_helpers_return_artists(forward):
    import matplotlib

    matplotlib.use("Agg")
    from halide_ionics.continuum.output import plot_migration, plot_profiles

    fig, axes, lines = plot_profiles(forward, times_s=[0.0, 7200.0, 14400.0])
    assert len(axes) == 2 and len(lines) == 9
    fig2, ax, line = plot_migration(forward)
    np.testing.assert_allclose(line.get_ydata(), forward.migration_length_um)
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)
