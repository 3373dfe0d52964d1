"""A reduced end-to-end reproduction (both electrode modes) and the target evaluation."""
import json
import math


import pytest

from halide_ionics.coupling.coefficients import CoefficientConfig
from halide_ionics.coupling.reproduce import ReproduceConfig, reproduce
from halide_ionics.coupling.targets import KINDS, evaluate_targets, linear_fit, paper_slope_um_per_V_per_um

SMALL = CoefficientConfig(compositions=6, onsager_cells=4, onsager_replicas=3, onsager_hops_per_replica=20_000,
                          onsager_equilibration_hops=500, electrode_cells=4, electrode_replicas=2,
                          electrode_events_per_replica=4000, transfer_compositions=(0.0, 0.6))
RUN = ReproduceConfig(fields_V_per_um=(0.0, 1.5, 2.0, 3.0, 4.0, -2.0, -4.0), uncertainty_samples=3,
                      uncertainty_samples_calibrated=2, nodes=300, rtol=1e-5)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    cache = tmp_path_factory.mktemp("cache")
    s = reproduce(out, workers=1, cache_dir=cache, config=RUN, coefficient_config=SMALL)
    return out, cache, s


def test_outputs_strict_json_with_kinds_and_both_modes(run):
    out, _, s = run
    for name in ("summary.json", "report.md", "coefficients.nc", "migration.nc", "fig1c_junction.png",
                 "fig1e_migration_vs_field.png", "fig2_composition_profiles.png", "fig3_vacancy_profiles.png",
                 "fig3_vacancy_profiles_paper_linear.png", "figS10_no_sources.png", "coefficients.png",
                 "sensitivity_tornado.png"):
        p = out / name
        assert p.exists() and p.stat().st_size > 0, name
        if name.endswith(".png"):
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # strict JSON (RFC 8259): a bare NaN/Infinity is an error
    on_disk = json.loads((out / "summary.json").read_text(),
                         parse_constant=lambda name: pytest.fail(f"summary.json holds {name}"))
    for key in ("rectification_ratio_4V", "migration_length_um", "forward_slope_um_per_V_per_um", "forward_r2",
                "no_source_migration_um", "electrode_mode", "max_x_v", "targets", "calibrated", "sensitivity",
                "modes"):
        assert key in on_disk, key
    assert on_disk["electrode_mode"] == "kmc" and set(on_disk["modes"]) == {"kmc", "paper_linear"}
    for m in on_disk["modes"].values():
        for k in ("rectification_ratio_4V", "migration_length_um", "forward_slope_um_per_V_per_um", "forward_r2",
                  "no_source_migration_um", "max_x_v", "targets", "calibrated", "sensitivity"):
            assert k in m, k
        for t in m["targets"]:
            assert set(t) >= {"name", "value", "accept", "pass", "kind"} and t["kind"] in KINDS
    assert on_disk["provenance"]["seed"] == RUN.seed and on_disk["provenance"]["version"]
    rep = (out / "report.md").read_text()
    assert "Where the predictions depart from the paper" in rep and "fig1e_migration_vs_field.png" in rep


def test_kmc_mode_has_no_calibrated_constant_and_stays_dilute(run):
    _, _, s = run
    k = s["modes"]["kmc"]
    assert k["calibrated"] == {}
    assert all(t["kind"] == "prediction" for t in k["targets"])
    assert k["max_x_v"] <= 1e-2
    validity = next(t for t in k["targets"] if t["name"].startswith("model validity"))
    assert validity["pass"]
    # physics nothing was fitted to: forward moves the front toward the Br end, reverse far less
    m = k["migration_length_um"]
    assert m["4"] > 1.5 * m["2"] > 0 and abs(m["-4"]) < 0.2 * m["4"]
    assert s["no_source_migration_um"] == pytest.approx(0.0, abs=0.02)


def test_paper_linear_is_calibrated_implied_and_trips_the_validity_guard(run):
    """The paper's pump meets its calibration points, labels what follows from them, and floods
    the contacts: its model-validity target fails (x_V → ½ fixed point)."""
    _, _, s = run
    p = s["modes"]["paper_linear"]
    assert set(p["calibrated"]) == {"lambda_per_s_per_V", "delta_el_eV"}
    assert all(c["fitted_to"] for c in p["calibrated"].values())
    kinds = {t["name"]: t["kind"] for t in p["targets"]}
    assert kinds["forward slope (um per V/um)"] == "implied"
    assert kinds["rectification ratio at +-4 V/um (forward/|reverse|)"] == "implied"
    assert "calibrated" in kinds.values()
    m = p["migration_length_um"]
    assert m["2"] == pytest.approx(paper_slope_um_per_V_per_um() * 2.0, rel=3e-3)
    validity = next(t for t in p["targets"] if t["name"].startswith("model validity"))
    assert validity["value"] > 1e-2 and not validity["pass"]


def test_propagated_errors_and_sensitivity(run):
    _, _, s = run
    for key, m in s["modes"].items():
        u = m["uncertainty"]
        assert u["draws_used"] >= 2
        se = [v for v in m["migration_length_se_um"].values() if v is not None]
        assert se and all(v >= 0 for v in se) and max(se) > 0
        rows = m["sensitivity"]
        assert rows[0]["input"] == "baseline" and rows[0]["scale"] == 1.0
        names = {r["input"] for r in rows}
        used = {"onsager", "x_v_eq", "exchange", "rate_ratio", "vacancy_level"}
        assert used | ({"split", "beta", "contact_mode", "split_rule"} if key == "kmc" else {"delta_el"}) == names - {"baseline"}
    # the ℓ_ij scaling matters in the kmc mode (the multiscale chain carries the result)
    rows = s["modes"]["kmc"]["sensitivity"]
    base = rows[0]["forward_um"]
    half = next(r for r in rows if r["input"] == "onsager" and r["scale"] == 0.5)["forward_um"]
    assert half < 0.9 * base


def test_same_seed_same_numbers_from_cache(run, tmp_path):
    _, cache, s = run
    s2 = reproduce(tmp_path, workers=1, cache_dir=cache, config=RUN, coefficient_config=SMALL)
    assert s2["migration_length_um"] == s["migration_length_um"]
    assert s2["modes"]["paper_linear"]["calibrated"] == s["modes"]["paper_linear"]["calibrated"]
    assert s2["timings_s"]["total_s"] < s["timings_s"]["total_s"]


# ------------------------------------------------------------------------------ targets alone
FIELDS = [0, 1.5, 2, 2.5, 3, 3.5, 4, -1.5, -2, -2.5, -3, -3.5, -4]


def _run(m, status="ok", end=14400.0, max_x_v=1e-6, **kw):
    r = {"final_migration_length_um": m, "status": status, "end_time_s": end, "max_x_v": max_x_v,
         "ion_conservation_error": 1e-12, "vacancy_ledger_error": 1e-6, "cl_tail": 0.06, "cl_tail_initial": 0.0,
         "x_v_front_over_eq": 0.5, "site_conservation_error": 1e-12}
    r.update(kw)
    return r


def _synthetic(slope=None, over=None):
    slope = slope or paper_slope_um_per_V_per_um()
    runs = {float(f): _run(slope * f if f > 0 else (0.005 if f == 0 else -0.04 - 0.0005 * abs(f))) for f in FIELDS}
    runs[-4.0]["x_v_front_over_eq"] = 1e-3
    runs.update(over or {})
    nosrc = {4.0: _run(1e-4), -4.0: _run(-1e-4)}
    fine = {f: dict(r) for f, r in runs.items()}
    return runs, nosrc, fine


def test_targets_on_synthetic_data_pass_and_can_fail():
    runs, nosrc, fine = _synthetic()
    t = evaluate_targets("kmc", runs, nosrc, fine, 4.0)
    assert t["all_targets_pass"], [r for r in t["targets"] if not r["pass"]]
    assert t["forward_r2"] == pytest.approx(1.0)
    # a symmetric (non-rectifying) model fails the reverse, ratio and bias-dependence targets
    sym = {f: _run(paper_slope_um_per_V_per_um() * f) for f in FIELDS}
    bad = evaluate_targets("kmc", sym, nosrc, {f: dict(r) for f, r in sym.items()}, 4.0)
    failed = {r["name"] for r in bad["targets"] if not r["pass"]}
    assert {"reverse migration, -1.5 to -4 V/um (max |.|, um)",
            "rectification ratio at +-4 V/um (forward/|reverse|)",
            "reverse: bias dependence |d m/dE| relative to forward slope"} <= failed
    # the validity guard and the mesh check
    runs2, nosrc2, fine2 = _synthetic()
    runs2[4.0]["max_x_v"] = 0.4
    fine2[2.0] = _run(runs2[2.0]["final_migration_length_um"] * 1.02)
    t2 = evaluate_targets("kmc", runs2, nosrc2, fine2, 4.0)
    failed = {r["name"].split(":")[0] for r in t2["targets"] if not r["pass"]}
    assert failed == {"model validity", "numerics"}
    fit = linear_fit([1, 2, 3], [2, 4.1, 5.9])
    assert fit.slope == pytest.approx(1.95) and 0.99 < fit.r2 < 1


def test_a_failed_run_fails_its_targets_and_feeds_no_number():
    """A run that stopped early (status not ok, or short of its end time) never feeds a target."""
    for bad in (_run(0.5, status="failed"), _run(0.98, end=9000.0)):
        runs, nosrc, fine = _synthetic(over={4.0: bad})
        t = evaluate_targets("kmc", runs, nosrc, fine, 4.0)
        rows = {r["name"]: r for r in t["targets"]}
        assert math.isnan(t["migration_length_um"]["4"])
        for name in ("every device run finished (status ok, end time reached)",
                     "forward slope (um per V/um)", "rectification ratio at +-4 V/um (forward/|reverse|)",
                     "forward 4 V/um: Cl entering the Br segment above its initial background"):
            assert not rows[name]["pass"], name
        assert math.isnan(rows["rectification ratio at +-4 V/um (forward/|reverse|)"]["value"])
