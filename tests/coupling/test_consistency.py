"""Multiscale consistency (issue #6): mean-field Poisson of the KMC wire, Poisson–Boltzmann, and a
reduced end-to-end run of ``halide-ionics consistency`` (KMC junction vs continuum)."""
import json
import math

import numpy as np
import pytest

from halide_ionics.coupling import consistency as C


@pytest.fixture(scope="module")
def tiny():
    return C.ConsistencyConfig.tiny()


def test_wire_poisson_linear_and_sheet(tiny):
    """No charge: ψ linear between the contact edges; one sheet: the kink of Gauss's law."""
    npl = 2 * tiny.length_cells
    P = C.WirePoisson(tiny, 0.2, np.zeros(npl))
    psi = P.solve(np.zeros(npl))
    a = tiny.lattice_constant_A
    w, L = tiny.contact_cells * a, tiny.length_cells * a
    z = P.z_A[P.free]
    np.testing.assert_allclose(psi[P.free], 0.1 - 0.2 * (z - w) / (L - 2 * w), atol=1e-12)
    assert np.all(psi[P.low] == 0.1) and np.all(psi[P.high] == -0.1)
    n = np.zeros(npl)
    k = int(np.flatnonzero(P.free)[5])
    n[k] = 1.0
    P0 = C.WirePoisson(tiny, 0.0, np.zeros(npl))
    p1 = P0.solve(n)
    d1, d2 = (P0.z_A[k] - w) * 1e-10, (L - w - P0.z_A[k]) * 1e-10
    # sheet σ between grounded planes: ψ = σ d1 d2 / (ε (d1 + d2))
    assert p1[k] == pytest.approx(P0.q_scale * d1 * d2 / (d1 + d2), rel=1e-10)


def test_front_position_estimator():
    x = np.array([1.0, 1.0, 0.9, 0.2, 0.1])
    # crossing of 0.55 between slab centres 2.5 a and 3.5 a, halfway
    assert C.front_position(x, 2.0) == pytest.approx(2.0 * 3.0)
    assert math.isnan(C.front_position(np.full(4, 0.1), 2.0))


def test_tiny_run_same_seed_same_numbers(tiny):
    tables = C.continuum_tables(C.coefficient_table(tiny, cache_dir=_cache()), tiny)
    ss = np.random.SeedSequence(7)
    task = dict(config=tiny.to_dict(), tables=tables.to_dict(), sources=True, bias_V=tiny.bias_V, times_s=[0.5],
                average_from_s=None, refresh_events=200, seed_seq=ss)
    a, b = C.run_replica(task), C.run_replica(task)
    np.testing.assert_array_equal(a["fractions"], b["fractions"])
    assert a["steps"] == b["steps"] and a["refreshes"] >= a["steps"] // 200
    # zero bias, no sources: PB is the neutral background
    pb = C.poisson_boltzmann(tiny, tables, 0.0)
    xeq = tables.vacancy()(np.array([tiny.cl_fraction_br_segment, tiny.cl_fraction_cl_segment]))
    half = tiny.length_cells // 2
    np.testing.assert_allclose(pb["x_v_slab"][:half], xeq[0], rtol=1e-8)
    np.testing.assert_allclose(pb["x_v_slab"][half:], xeq[1], rtol=1e-8)


_CACHE = {}


def _cache():
    import tempfile

    if "dir" not in _CACHE:
        _CACHE["dir"] = tempfile.mkdtemp(prefix="hi-consistency-cache-")
    return _CACHE["dir"]


def test_consistency_cli_reduced(tmp_path, monkeypatch, capsys, tiny):
    """The reduced ``consistency --quick`` (tiny sizes): outputs, and acceptance checks whose
    tolerances come from standard errors alone (Student-t at the 3σ-equivalent level, Bonferroni
    over the slabs for the profiles; no added lattice spacing, no fixed L2 limit)."""
    from scipy.stats import t as student_t

    from halide_ionics.coupling import cli

    monkeypatch.setattr(C.ConsistencyConfig, "quick", classmethod(lambda cls: tiny))
    out = tmp_path / "out"
    rc = cli.main(["consistency", "--quick", "--out", str(out), "--seed", "2020", "--cache-dir", _cache(), "--workers", "1",
                   "--sensitivity", "refresh", "--json"])
    brief = json.loads(capsys.readouterr().out)
    for f in ("consistency.json", "equilibrium_vacancy.png", "forward_profiles.png", "reverse_profiles.png"):
        assert (out / f).stat().st_size > 0
    full = json.loads((out / "consistency.json").read_text())
    assert full["provenance"]["seed"] == 2020
    eq = brief["equilibrium"]
    assert eq["bins_compared"] >= 3
    # sources off: the pass flag is the KMC vacancy profile vs the continuum steady state within the
    # Bonferroni Student-t band of the replica SE in every counted bin
    crit = student_t.isf(0.0027 / (2 * eq["bins_compared"]), tiny.replicas - 1)
    assert full["metrics"]["equilibrium"]["critical_t"] == pytest.approx(crit, rel=1e-12)
    assert eq["pass"] == (eq["max_abs_z_continuum"] <= crit)
    t_front = student_t.isf(0.0027 / 2, tiny.replicas - 1)
    for name in ("forward", "reverse"):
        for r in brief[name]["times"]:
            assert r["front_tolerance_A"] == pytest.approx(t_front * r["front_kmc_se_A"], rel=1e-12)
            assert r["pass"] == (abs(r["front_diff_A"]) <= r["front_tolerance_A"]
                                 and r["max_abs_z_composition"] <= r["critical_t_composition"])
            assert r["l2_rel_step"] <= 0.1  # the same law on both scales: profiles close (diagnostic)
    # the rectification block restates the fronts' migrations on both scales (per-replica
    # differences for the KMC: their mean is the difference of the mean fronts)
    for rr, rf, rv in zip(brief["rectification"]["times"], brief["forward"]["times"], brief["reverse"]["times"]):
        assert rr["time_s"] == rf["time_s"] == rv["time_s"]
        assert rr["migration_forward_continuum_A"] == pytest.approx(rf["migration_continuum_A"], rel=1e-12, abs=1e-12)
        assert rr["migration_reverse_continuum_A"] == pytest.approx(rv["migration_continuum_A"], rel=1e-12, abs=1e-12)
        assert rr["migration_forward_kmc_A"] == pytest.approx(rf["migration_kmc_A"], rel=1e-9, abs=1e-9)
        assert rr["migration_reverse_kmc_A"] == pytest.approx(rv["migration_kmc_A"], rel=1e-9, abs=1e-9)
    s = brief["sensitivity"]["refresh_half_forward"]
    assert s["refresh_events"] == [tiny.refresh_events, tiny.refresh_events // 2]
    assert rc == (0 if brief["pass"] else 1)


def test_consistency_cli_text_report(tmp_path, monkeypatch, capsys, tiny):
    """Without --json the command prints one line per comparison, the rectification diagnostic
    included, and the exit status follows the overall verdict."""
    from halide_ionics.coupling import cli

    monkeypatch.setattr(C.ConsistencyConfig, "quick", classmethod(lambda cls: tiny))
    rc = cli.main(["consistency", "--quick", "--out", str(tmp_path / "o"), "--seed", "2020", "--cache-dir", _cache(),
                   "--workers", "1", "--sensitivity", "none"])
    lines = capsys.readouterr().out.splitlines()
    assert sum(ln.startswith("rectification t=") for ln in lines) == len(tiny.transient_times_s)
    verdict = [ln for ln in lines if ln.startswith("overall: ")]
    assert len(verdict) == 1 and rc == (0 if verdict[0].startswith("overall: PASS") else 1)


def test_comparison_can_fail(tiny):
    """A continuum with the wrong physics fails: transport ×20 moves its front far beyond the
    KMC's SE band, and a vacancy level ×3 fails the equilibrium comparison."""
    import dataclasses

    tables = C.continuum_tables(C.coefficient_table(tiny, cache_dir=_cache()), tiny)
    kmc = C.run_kmc(tiny, tables, sources=True, bias_V=tiny.bias_V, times_s=[3.0], spawn_key=(1,))
    wrong = dataclasses.replace(tables, l_brbr_Hz=20 * tables.l_brbr_Hz, l_brcl_Hz=20 * tables.l_brcl_Hz,
                                l_clcl_Hz=20 * tables.l_clcl_Hz)
    bad = C.compare_transient(tiny, kmc, C.run_continuum(tiny, wrong, sources=True, bias_V=tiny.bias_V,
                                                         times_s=[3.0]))
    assert not bad["pass"]
    eq_kmc = C.run_kmc(tiny, tables, sources=False, bias_V=tiny.equilibrium_bias_V,
                       times_s=[tiny.equilibrium_time_s], average_from_s=tiny.equilibrium_average_from_s,
                       spawn_key=(0,))
    times = np.linspace(tiny.equilibrium_average_from_s, tiny.equilibrium_time_s, 4).tolist()
    lvl = dataclasses.replace(tables, x_v_eq=3 * tables.x_v_eq)
    cont = C.run_continuum(tiny, lvl, sources=False, bias_V=tiny.equilibrium_bias_V, times_s=times)
    pb = C.poisson_boltzmann(tiny, lvl, tiny.equilibrium_bias_V)
    assert not C.compare_equilibrium(tiny, eq_kmc, cont, pb)["pass"]


@pytest.mark.parametrize("n, ny, replicas, expect", [(6, None, 8, 5), (4, None, 6, 3), (3, 5, 4, 2), (3, 5, 9, 4), (6, None, 2, 2)])
def test_wider_cross_section_keeps_the_standard_error(n, ny, replicas, expect):
    """Replica variance of a slab fraction ∝ 1/area: the wider run gets the fewest replicas R'
    with R'·A' ≥ R·A (SE no larger than the base run's), and never fewer than 2."""
    cfg = C.ConsistencyConfig().replace(cross_section_cells=n, cross_section_cells_y=ny, replicas=replicas)
    w = C.wider_cross_section(cfg)
    a, wa = cfg.cells[0] * cfg.cells[1], w.cells[0] * w.cells[1]
    assert (w.cells[0], w.cells[1]) == (cfg.cells[0] + 2, cfg.cells[1] + 2)
    assert w.replicas == expect
    assert w.replicas * wa >= replicas * a or w.replicas == 2
    assert w.replicas == 2 or (w.replicas - 1) * wa < replicas * a
    assert w.length_cells == cfg.length_cells and w.seed == cfg.seed


def _fronts(mig):
    """kmc dict with per-replica fronts: 100 Å at t = 0 plus the given migrations at t = 1 s."""
    mig = np.asarray(mig, float)
    return {"times_s": np.array([0.0, 1.0]), "front_A_replicas": np.stack([np.full(mig.size, 100.0), 100.0 + mig], 1)}


def test_rectification_ratio_and_its_standard_error():
    """Forward/reverse migration ratio with a delta-method SE: exact on a case with a noiseless
    reverse run, None where the reverse migration is not resolved, and calibrated (its z-scores
    over 4000 synthetic 8-replica experiments have the tails of a Student-t with 7 degrees of
    freedom, the reference for a mean over 8 replicas, within 3 binomial SEs)."""
    from scipy.stats import t as student_t

    cont = lambda m: {"times_s": np.array([0.0, 1.0]), "front_A": np.array([50.0, 50.0 + m])}  # noqa: E731
    r = C.compare_rectification(_fronts([2, 3, 4, 3]), _fronts([0.5] * 4), cont(3.0), cont(0.5))["times"][0]
    sf = np.std([2, 3, 4, 3], ddof=1) / 2
    assert r["ratio_kmc"] == pytest.approx(6.0) and r["ratio_kmc_se"] == pytest.approx(sf / 0.5)
    assert r["ratio_continuum"] == pytest.approx(6.0) and r["ratio_z"] == pytest.approx(0.0, abs=1e-12)
    assert r["drift_kmc_A"] == pytest.approx(1.25) and r["drift_kmc_se_A"] == pytest.approx(sf / 2)
    assert r["interdiffusion_kmc_A"] == pytest.approx(1.75) and r["interdiffusion_continuum_A"] == pytest.approx(1.75)
    assert r["drift_z"] == pytest.approx(0.0, abs=1e-12) and r["interdiffusion_z"] == pytest.approx(0.0, abs=1e-12)
    r = C.compare_rectification(_fronts([2, 3, 4, 3]), _fronts([0.1, -0.1, 0.2, -0.2]), cont(3.0), cont(0.5))["times"][0]
    assert not r["reverse_resolved"] and r["ratio_kmc"] is None and r["ratio_z"] is None
    with pytest.raises(C.InputError, match="kmc_rev.times_s"):
        C.compare_rectification(_fronts([1, 2]), {"times_s": np.array([0.0, 2.0]), "front_A_replicas": np.zeros((2, 2))},
                                cont(1.0), cont(1.0))
    rng = np.random.default_rng(11)
    n, R = 4000, 8
    z = []
    for _ in range(n):
        r = C.compare_rectification(_fronts(rng.normal(2.0, 0.5, R)), _fronts(rng.normal(0.5, 0.05, R)),
                                    cont(4.0), cont(1.0))["times"][0]
        z.append(r["ratio_z"])
    z = np.abs(np.array(z, float))
    for k in (1.0, 2.0, 3.0):
        p = 2 * student_t.sf(k, R - 1)
        assert abs(np.mean(z > k) - p) <= 3 * math.sqrt(p * (1 - p) / n), (k, np.mean(z > k), p)
