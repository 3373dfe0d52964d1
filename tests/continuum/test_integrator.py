"""The compiled NDF integrator against a tight-tolerance run and the Python BDF2 reference."""
import numpy as np
import pytest

from halide_ionics.continuum import DeviceConfig, DeviceModel, simulate
from halide_ionics.continuum import kernels as K
from halide_ionics.continuum import solver as S

HOURS, NODES = 0.5, 150


@pytest.fixture(scope="module")
def runs():
    cfg = DeviceConfig.paper_device(4.0, HOURS, nodes=NODES)
    ndf = simulate(cfg)
    tight = simulate(DeviceConfig.paper_device(4.0, HOURS, nodes=NODES, rtol=1e-9, atol=1e-9))
    bdf2 = S._BDF2Reference(DeviceModel(cfg), False).run()
    return ndf, tight, bdf2


def test_ndf_agrees_with_tight_run_within_tolerance(runs):
    ndf, tight, _ = runs
    assert ndf.status == tight.status == "ok"
    rtol = ndf.config.solver.rtol
    L = tight.final_migration_length_um
    assert L > 0.03
    # global error of the adaptive run: a few local tolerances, at every output time (dense output)
    assert abs(ndf.final_migration_length_um - L) <= 10 * rtol * L
    assert np.nanmax(np.abs(ndf.migration_length_um - tight.migration_length_um)) <= 10 * rtol * L
    assert np.abs(ndf.x_br - tight.x_br).max() <= 30 * rtol
    x_v_ref = tight.x_v[0].max()
    assert np.max(np.abs(ndf.x_v - tight.x_v) / (tight.x_v + ndf.config.solver.atol * x_v_ref)) <= 300 * rtol
    assert ndf.site_conservation_error <= 1e-12 and tight.site_conservation_error <= 1e-12


def test_ndf_agrees_with_bdf2_reference(runs):
    """The independent Python BDF2 path (global error ~50 rtol here) gives the same migration."""
    ndf, tight, bdf2 = runs
    assert bdf2.status == "ok"
    rtol = ndf.config.solver.rtol
    L = tight.final_migration_length_um
    assert abs(bdf2.final_migration_length_um - ndf.final_migration_length_um) <= 200 * rtol * L
    assert np.abs(bdf2.x_br - ndf.x_br).max() <= 300 * rtol
    # variable order pays: far fewer steps than BDF2 at the same tolerance
    assert ndf.steps < 0.6 * bdf2.steps


def test_step_record_buffer_and_progress_chunks_do_not_change_the_run(monkeypatch):
    cfg = DeviceConfig.paper_device(4.0, 0.05, nodes=80)
    a = simulate(cfg)
    monkeypatch.setattr(S._Integrator, "REC_CHUNK", 7)
    b = simulate(cfg)
    assert a.steps == b.steps and a.newton_iterations == b.newton_iterations
    np.testing.assert_array_equal(a.x_br, b.x_br)
    np.testing.assert_array_equal(a.step_conservation_error, b.step_conservation_error)
    assert b.step_times_s.size == b.steps and np.all(np.diff(b.step_times_s) > 0)


def test_banded_fallback_gives_the_same_run():
    """The banded LU with partial pivoting (the fallback of the block LU) reproduces the run."""
    cfg = DeviceConfig.paper_device(4.0, 0.1, nodes=120)
    a = S._Integrator(DeviceModel(cfg), False)
    ra = a.run()
    b = S._Integrator(DeviceModel(cfg), False)
    b.ctl[K.C_FORCE_BAND] = 1.0
    rb = b.run()
    assert a.stats["band_fallbacks"] == 0 and b.stats["band_fallbacks"] == b.stats["lu_factorizations"] > 0
    assert ra.status == rb.status == "ok"
    rtol = cfg.solver.rtol
    assert abs(ra.final_migration_length_um - rb.final_migration_length_um) <= rtol * abs(ra.final_migration_length_um)
    assert np.abs(ra.x_br - rb.x_br).max() <= 10 * rtol
