"""Coefficient-generation runs: worker-count independence, resume after a kill, table contents."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from halide_ionics.coupling.coefficients import CoefficientConfig, compute_table
from halide_ionics.coupling.materials import CSPB_BR_CL_298K

TINY = CoefficientConfig(compositions=5, onsager_cells=4, onsager_replicas=2, onsager_hops_per_replica=4000,
                         onsager_equilibration_hops=200, electrode_cells=4, electrode_replicas=2,
                         electrode_events_per_replica=1500, transfer_compositions=(0.0, 0.5))

TINY_ARGS = ["--compositions", "5", "--onsager-replicas", "2", "--onsager-hops", "4000",
             "--electrode-replicas", "2", "--electrode-events", "1500"]


def _values(ds):
    return {k: np.asarray(v.values) for k, v in ds.data_vars.items()}


def assert_tables_equal(a, b):
    va, vb = _values(a), _values(b)
    assert va.keys() == vb.keys()
    for k in va:
        np.testing.assert_array_equal(va[k], vb[k], err_msg=k)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("c1")


@pytest.fixture(scope="module")
def tiny_table(tiny_cache):
    return compute_table(CSPB_BR_CL_298K, TINY, seed=5, workers=1, cache_dir=tiny_cache)


def _tamper_attr(ds, **attrs):
    d = ds.copy()
    d.attrs.update(attrs)
    return d


def _tamper_value(ds):
    d = ds.copy(deep=True)
    d["l_brbr"].values[2] *= 1.0 + 1e-12
    return d


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-seed", "other-key", "changed-value"])
def test_damaged_or_foreign_cached_table_is_recomputed(tiny_table, tiny_cache, caplog, damage):
    """A cached table that is unreadable or belongs to another seed/key is never used as is."""
    import logging

    from halide_ionics.coupling.coefficients import table_key, write_table

    path = Path(tiny_cache) / f"coefficients-{table_key(CSPB_BR_CL_298K, TINY, 5)}.nc"
    good = path.read_bytes()
    try:
        if damage == "garbage":
            path.write_bytes(os.urandom(len(good)))
        elif damage == "truncated":
            path.write_bytes(good[: len(good) // 3])
        elif damage == "other-seed":
            write_table(_tamper_attr(tiny_table, seed=6), path)
        elif damage == "other-key":
            write_table(_tamper_attr(tiny_table, cache_key="0" * 20), path)
        else:
            write_table(_tamper_value(tiny_table), path)
        caplog.set_level(logging.WARNING)
        again = compute_table(CSPB_BR_CL_298K, TINY, seed=5, workers=1, cache_dir=tiny_cache)
        assert_tables_equal(again, tiny_table)
        assert any("recomputing" in r.getMessage() for r in caplog.records)
    finally:
        path.write_bytes(good)


def test_table_is_labelled_and_physical(tiny_table):
    ds = tiny_table
    assert ds.sizes["composition"] == 5
    for v in ("l_brbr", "l_brcl", "l_clcl", "x_v_eq", "creation_rate"):
        assert "units" in ds[v].attrs
    assert ds.attrs["package"] == "halide-ionics" and "config" in ds.attrs and ds.attrs["seed"] == 5
    # no Br, no Br transport; no Cl, no Cl transport
    assert ds.l_brbr.values[-1] == 0 and ds.l_clcl.values[0] == 0
    assert ds.l_brcl.values[0] == 0 and ds.l_brcl.values[-1] == 0
    # the equilibrium vacancy fraction falls with Cl content (higher formation energy)
    assert np.all(np.diff(ds.x_v_eq.values) < 0)
    assert ds.x_v_eq.values[0] == pytest.approx(CSPB_BR_CL_298K.vacancy_fraction_br, rel=1e-12)
    # the potential dependence was measured where asked, and only there
    assert np.isfinite(ds.creation_rate.sel(overpotential=0.05).values[[0, 2]]).all()
    assert np.isnan(ds.creation_rate.sel(overpotential=0.05).values[1])


def test_tables_identical_for_one_and_two_workers(tiny_table, tmp_path):
    two = compute_table(CSPB_BR_CL_298K, TINY, seed=5, workers=2, cache_dir=tmp_path)
    assert_tables_equal(tiny_table, two)


def test_cached_table_is_reused(tiny_table, tmp_path):
    t0 = time.perf_counter()
    a = compute_table(CSPB_BR_CL_298K, TINY, seed=6, workers=1, cache_dir=tmp_path)
    cold = time.perf_counter() - t0
    files = list((tmp_path / "tasks").rglob("*.pkl"))
    assert len(files) == 5 + 5 + 2 * 2  # Onsager and electrode (η=0) per composition, ±η at 2 compositions
    b = compute_table(CSPB_BR_CL_298K, TINY, seed=6, workers=1, cache_dir=tmp_path)
    assert_tables_equal(a, b)
    assert not np.array_equal(a.l_brbr.values, tiny_table.l_brbr.values)  # another seed, other numbers
    assert cold > 0


def test_killed_run_resumes_and_redoes_only_unfinished_tasks(tmp_path):
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "halide_ionics.coupling.cli", "coefficients", *TINY_ARGS, "--workers", "1",
           "--seed", "9", "--cache-dir", str(cache), "--out", str(tmp_path / "t.nc")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.rglob("*.pkl"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in cache.rglob("*.pkl")}
    assert 1 <= len(done) < 14, "the kill must land mid-run"
    assert not (tmp_path / "t.nc").exists()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    for p, m in done.items():
        assert p.stat().st_mtime_ns == m  # finished tasks were not recomputed
    resumed = xr.open_dataset(tmp_path / "t.nc", engine="h5netcdf").load()
    fresh_cmd = [a if a != str(cache) else str(tmp_path / "fresh") for a in cmd]
    fresh_cmd[-1] = str(tmp_path / "fresh.nc")
    subprocess.run(fresh_cmd, check=True, stdout=subprocess.DEVNULL)
    fresh = xr.open_dataset(tmp_path / "fresh.nc", engine="h5netcdf").load()
    assert_tables_equal(resumed, fresh)


def test_bad_coefficient_arguments_exit_2_without_output(tmp_path, capsys):
    from halide_ionics.coupling.cli import main

    out = tmp_path / "t.nc"
    assert main(["coefficients", "--compositions", "2", "--out", str(out), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "compositions=2" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_dask_distributed_executor_gives_the_same_table(tiny_table):
    """The cluster path: tasks on a Dask distributed cluster give the local table bit for bit."""
    import tempfile

    from distributed import Client, LocalCluster  # the 'cluster' extra, included in the 'test' extra

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            Client(lc) as client, tempfile.TemporaryDirectory() as d:
        table = compute_table(CSPB_BR_CL_298K, TINY, seed=5, executor=client.get_executor(pure=False), cache_dir=d)
    assert_tables_equal(tiny_table, table)


def test_onsager_budget_meets_the_se_it_promises():
    """A configuration built for a target SE delivers it: over five compositions the measured
    relative SE of ℓ_BrBr and ℓ_ClCl lies below the promise (an upper estimate) and not far
    below it (the promise is not padded), with the run's own SE-of-SE (8 replicas: ~27 %)."""
    from halide_ionics.coupling.coefficients import onsager_task

    cfg = CoefficientConfig.for_target_se(0.05, replicas=8)
    promised = cfg.promised_rel_se()
    assert promised["l_brbr"] <= 0.05 and promised["l_clcl"] <= 0.05
    mat = CSPB_BR_CL_298K.to_dict()
    ratios = []
    for i, c in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        r = onsager_task(np.random.SeedSequence(40 + i), c, mat, cfg.onsager_cells, cfg.onsager_replicas,
                         cfg.onsager_hops_per_replica, 2000)
        rel = r["l_se_Hz"] / np.abs(r["l_Hz"])
        ratios += [rel[0, 0] / promised["l_brbr"], rel[1, 1] / promised["l_clcl"]]
        assert rel[0, 0] < 0.05 * 1.6 and rel[1, 1] < 0.05 * 1.6, (c, rel)
    ratios = np.array(ratios)
    assert 0.4 < ratios.mean() < 1.0, ratios
    assert CoefficientConfig().promised_rel_se()["l_brbr"] == pytest.approx(50 / np.sqrt(8 * 400_000))
