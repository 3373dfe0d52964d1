"""The paper's supplementary studies (S11-S16), low field and temperature: reduced runs that
check outputs, kinds, and the physics each study is about."""
import json
import math

import numpy as np
import pytest

from halide_ionics.coupling import studies as S
from halide_ionics.coupling.coefficients import CoefficientConfig
from halide_ionics.coupling.materials import CSPB_BR_CL_298K, K_B_EV
from halide_ionics.coupling.reproduce import ReproduceConfig
from halide_ionics.errors import InputError

SMALL = CoefficientConfig(compositions=6, onsager_cells=4, onsager_replicas=3, onsager_hops_per_replica=20_000,
                          onsager_equilibration_hops=500, electrode_cells=4, electrode_replicas=2,
                          electrode_events_per_replica=4000, transfer_compositions=(0.0, 0.6))
RUN = ReproduceConfig(fields_V_per_um=(0.0, 2.0, 4.0, -2.0, -4.0), uncertainty_samples=2, nodes=200, rtol=1e-4)
TINY = S.StudyConfig(quick=True, run=RUN, coefficients=SMALL, temperatures_K=(290.0, 325.0, 360.0),
                     interdiffusion_draws=32)
KINDS = {"calibrated", "implied", "prediction", "input"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("studies-cache")


@pytest.fixture(scope="module")
def ran(cache, tmp_path_factory):
    """Every study in paper-linear mode, sharing one cache (the way ``reproduce --studies all`` runs)."""
    out = tmp_path_factory.mktemp("studies-out")
    index = S.run_all_studies(out, mode="paper-linear", cache_dir=cache, config=TINY)
    recs = {n: json.loads((out / "studies" / n / f"{n}.json").read_text()) for n in S.STUDIES}
    return out, index, recs


@pytest.fixture(scope="module")
def ran_kmc(cache, tmp_path_factory):
    """Every study in the default mode (the KMC-derived electrode law; nothing calibrated)."""
    out = tmp_path_factory.mktemp("studies-kmc")
    index = S.run_all_studies(out, mode="kmc", cache_dir=cache, config=TINY)
    recs = {n: json.loads((out / "studies" / n / f"{n}.json").read_text()) for n in S.STUDIES}
    return out, index, recs


def _numbers_carry_kinds(obj, in_scope=False, path="results"):
    """Every number under a study's results sits in a dict that states its kind."""
    if isinstance(obj, dict):
        scope = in_scope or ("kind" in obj)
        if "kind" in obj:
            assert obj["kind"] in KINDS, f"{path}: kind {obj['kind']!r}"
        for k, v in obj.items():
            _numbers_carry_kinds(v, scope, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _numbers_carry_kinds(v, in_scope, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        assert in_scope, f"{path}: a number without a kind"


def test_every_study_writes_netcdf_png_json_with_kinds(ran):
    out, index, recs = ran
    assert set(index) == set(S.STUDIES)
    for name, rec in recs.items():
        d = out / "studies" / name
        assert (d / f"{name}.nc").stat().st_size > 0
        for png in rec["files"]["figures"]:
            assert (d / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert not list(d.glob(".*.part*")), "temporary files left behind"
        assert rec["electrode"] == "paper-linear" and rec["provenance"]["version"]
        assert rec["targets"], name
        for t in rec["targets"]:
            assert t["kind"] in {"calibrated", "implied", "prediction"}, (name, t)
            assert isinstance(t["pass"], bool)
        _numbers_carry_kinds(rec["results"])
        for v in rec["calibrated"].values():
            assert v["kind"] == "calibrated" and v["fitted_to"]
    import xarray as xr

    with xr.open_dataset(out / "studies" / "s11" / "s11.nc", engine="h5netcdf") as ds:
        assert ds.attrs["study"] == "s11" and ds["z"].attrs["units"] == "um"
        assert ds["x_v"].dims == ("field", "profile_time", "z")
    links = S.render_study_links(index)
    for name in S.STUDIES:
        assert f"studies/{name}/{name}.json" in links
    rows = [r for r in links.splitlines() if r.startswith("| ") and "](studies/" in r]
    assert len(rows) == len(S.STUDIES)
    for r in rows:  # a markdown row with exactly three cells (a '|' inside a target name is escaped)
        assert len(r.replace("\\|", "").strip("|").split("|")) == 3, r


def test_no_sources_no_motion_wherever_the_front_starts_and_whatever_the_vacancy_amount(ran):
    """Figs. S12, S14: without sources nothing moves (<= 0.02 um in 4 h) for any variant."""
    _, _, recs = ran
    for name in ("s12", "s14"):
        for f, v in recs[name]["results"]["migration_length_um"].items():
            assert np.nanmax(np.abs(v["value"])) <= S.NO_MOTION_UM, (name, f, v["value"])
    # ... and with sources the front moves in forward bias at every variant (Figs. S13, S15); a run of
    # the paper's pump that floods a contact (x_V -> 1, docs/model.md §4) stops, is NaN, never partial
    for name in ("s13", "s15"):
        fwd = np.asarray(recs[name]["results"]["migration_length_um"]["+4"]["value"], float)
        rev = np.asarray(recs[name]["results"]["migration_length_um"]["-4"]["value"], float)
        done = np.isfinite(fwd) & np.isfinite(rev)
        assert done.sum() >= 2, name
        assert np.all(fwd[done] > 10 * S.NO_MOTION_UM) and np.all(fwd[done] > 3 * np.abs(rev[done])), name


def test_the_positive_contact_controls_the_rate(ran):
    """Fig. S16: varying the positive contact's rate changes migration; the negative one's does not.
    The positive contact is the Br-side one in forward bias and the Cl-side one in reverse."""
    _, _, recs = ran
    sens = recs["s16"]["results"]["sensitivity_dlnm_dlnk"]
    assert sens["+4"]["br_side"]["value"] > 0.5 and abs(sens["+4"]["cl_side"]["value"]) < 0.05
    assert sens["-4"]["cl_side"]["value"] > 0.5 and abs(sens["-4"]["br_side"]["value"]) < 0.05
    ctl = recs["s16"]["results"]["controlling"]
    assert ctl["+4"]["controlling_contact"].startswith("positive contact (Br")
    assert ctl["-4"]["controlling_contact"].startswith("positive contact (Cl")


def test_low_field_reports_the_end_of_the_linear_law_and_the_zero_bias_shift(ran):
    _, _, recs = ran
    r = recs["low-field"]["results"]
    m = {float(k): v["value"] for k, v in r["migration_length_um"].items()}
    assert set(m) >= {0.0, 0.5, -0.5, 1.0, 1.5, 4.0}
    assert m[4.0] > m[1.5] > m[0.5]
    assert math.isfinite(r["zero_bias_shift_um"]["value"]) and abs(m[0.0]) < S.NO_MOTION_UM
    t = {x["target"]: x for x in recs["low-field"]["targets"]}
    assert t["zero-bias front shift direction"]["pass"] == (m[0.0] > 0)
    # the sign follows the interdiffusion asymmetry: the front drifts toward the slower side
    assert (r["zero_bias_interdiffusion_ratio"]["value"] > 1) == (m[0.0] < 0)


def test_s11_profiles_cover_every_bias_in_both_polarities(ran):
    _, _, recs = ran
    f = [float(k) for k in recs["s11"]["results"]["migration_length_um"]]
    pos = [x for x in f if x > 0]
    assert sorted(-x for x in f if x < 0) == sorted(pos) and 0.0 in f


def test_temperature_both_populations_two_interdiffusion_estimates_agree(ran):
    _, _, recs = ran
    rec = recs["temperature"]
    assert rec["temperatures_K"] == list(TINY.temperatures_K)
    assert max(rec["temperatures_K"]) < S.PHASE_TRANSITION_K
    for pop in ("fixed", "thermal"):
        p = rec["vacancy_population"][pop]
        assert p["interdiffusion_activation_energy_eV_se"] > 0
        d = p["interdiffusion_m2_per_s"]
        a, sa = np.asarray(d["front_growth"]["value"]), np.asarray(d["front_growth"]["se"])
        b, sb = np.asarray(d["kmc_onsager"]["value"]), np.asarray(d["kmc_onsager"]["se"])
        assert np.all(np.abs(a - b) <= 2.0 * np.hypot(sa, sb)), (pop, a, b)
        assert np.all(np.diff(a) > 0)  # thermally activated
    fx, th = rec["vacancy_population"]["fixed"], rec["vacancy_population"]["thermal"]
    # the thermal population adds the Br formation energy (1.32 eV) to the activation energy
    e_fx, e_th = fx["interdiffusion_activation_energy_eV"], th["interdiffusion_activation_energy_eV"]
    se = math.hypot(fx["interdiffusion_activation_energy_eV_se"], th["interdiffusion_activation_energy_eV_se"])
    assert e_th - e_fx > 1.32 - 0.5 and 0.2 < e_fx < 0.6, (e_fx, e_th, se)
    assert rec["results"]["supported_population"]["population"] == "fixed"


# ------------------------------------------------------------------------------ units of the analysis
def test_arrhenius_fit_recovers_a_known_barrier_within_its_se():
    rng = np.random.default_rng(7)
    T = np.array([280.0, 300.0, 320.0, 340.0, 360.0])
    E, rel = 0.31, 0.05
    hits, n = 0, 200
    for _ in range(n):
        D = 1e-6 * np.exp(-E / (K_B_EV * T)) * np.exp(rel * rng.standard_normal(T.size))
        e, se, _ = S.arrhenius_fit(T, D, rel * D)
        hits += abs(e - E) <= se
    # the SE is honest: about 68 % of the synthetic fits lie within one SE (binomial 3-sigma band)
    assert abs(hits / n - 0.683) <= 3 * math.sqrt(0.683 * 0.317 / n)


def test_interdiffusion_equal_rates_is_the_tracer_coefficient():
    """Equal Br and Cl rates: D~ = x_V z s^2 w f0 / 6 at every composition (vacancy-flux-free)."""
    f0, w, xv, a = 0.68891612, 3.0e7, 1e-7, 5.8
    for c in (0.1, 0.45, 0.8):
        ca, cb = 1 - c, c
        bb, cc, bc = ca * w * (ca + cb * f0), cb * w * (cb + ca * f0), ca * cb * w * (1 - f0)
        d = S.interdiffusion_kmc(c, xv, a, bb, bc, cc)
        assert d == pytest.approx(xv * 8 * (a * 1e-10) ** 2 / 2 * w * f0 / 6, rel=1e-12)


def test_kirkendall_factor_is_one_for_equal_rates_and_below_one_when_br_is_faster():
    from halide_ionics.continuum import manning_maa

    eq = S.kirkendall_factor(lambda c: manning_maa(np.asarray(c), 1.0, 1.0), 0.45)
    slow_cl = S.kirkendall_factor(lambda c: manning_maa(np.asarray(c), 1.0, 0.1), 0.45)
    assert eq == pytest.approx(1.0, abs=1e-9)
    assert 0.3 < slow_cl < 0.95


def test_boltzmann_matano_recovers_a_constant_coefficient():
    from scipy.special import erf

    D, t = 2e-20, 7200.0
    z = np.linspace(4.0, 6.0, 4001)
    c = 0.001 + (0.9 - 0.001) * 0.5 * (1 + erf((z - 5.0) * 1e-6 / (2 * np.sqrt(D * t))))
    assert S.interdiffusion_matano(z, c, t, 0.45) == pytest.approx(D, rel=1e-3)


def test_material_at_temperature_keeps_barriers_and_scales_vacancies():
    m = CSPB_BR_CL_298K
    for T in (280.0, 340.0):
        f = m.at_temperature(T, "fixed")
        th = m.at_temperature(T, "thermal")
        for x in (f, th):
            assert x.barrier_br_eV == pytest.approx(m.barrier_br_eV, abs=1e-12)
            assert x.barrier_cl_eV == pytest.approx(m.barrier_cl_eV, abs=1e-12)
            assert x.w_br_Hz == pytest.approx(m.attempt_frequency_Hz * math.exp(-m.barrier_br_eV / (K_B_EV * T)))
        assert f.vacancy_fraction_br == m.vacancy_fraction_br
        ratio = th.vacancy_fraction_br / m.vacancy_fraction_br
        assert ratio == pytest.approx(math.exp(-m.vacancy_formation_br_eV * (1 / (K_B_EV * T) - 1 / m.kT_eV)))
        assert th.w_cl_Hz / th.w_br_Hz == pytest.approx(math.exp(-(m.barrier_cl_eV - m.barrier_br_eV) / (K_B_EV * T)))
    with pytest.raises(InputError, match="temperature_K"):
        m.at_temperature(361.0)
    with pytest.raises(InputError, match="vacancy_population"):
        m.at_temperature(300.0, "schottky")


# ------------------------------------------------------------------------------ device overrides
def test_overrides_default_is_bitwise_the_plain_run_and_uniform_contact_scale_equals_scaled_rates(ran, cache):
    """contact_source_scale=(1, 1) and x_v_scale=1 change nothing; (2, 2) equals doubling the
    electrode rate table (paper-linear: source linear in the rate constants)."""
    from dataclasses import replace

    from halide_ionics.coupling.device_runs import device_task

    prep = S._prepare("paper-linear", CSPB_BR_CL_298K, TINY, cache)
    inp = prep.inputs
    sol = {"nodes": 120, "rtol": 1e-4}
    ph = (0.0, 0.5, 1.0)
    base = device_task(None, inp.to_dict(), 3.0, 1.0, True, sol, profile_hours=ph)
    same = device_task(None, inp.to_dict(), 3.0, 1.0, True, sol, profile_hours=ph,
                       overrides={"contact_source_scale": [1.0, 1.0], "x_v_scale": 1.0})
    assert np.array_equal(base["migration_length_um"], same["migration_length_um"])
    assert np.array_equal(base["x_v"], same["x_v"])
    two = device_task(None, inp.to_dict(), 3.0, 1.0, True, sol, profile_hours=ph,
                      overrides={"contact_source_scale": [2.0, 2.0]})
    dbl = replace(inp, k_create0_per_s=tuple(2 * np.asarray(inp.k_create0_per_s)),
                  k_annihilate0_per_s=tuple(2 * np.asarray(inp.k_annihilate0_per_s)))
    ref = device_task(None, dbl.to_dict(), 3.0, 1.0, True, sol, profile_hours=ph)
    assert two["final_migration_length_um"] == pytest.approx(ref["final_migration_length_um"], rel=1e-6)
    assert two["final_migration_length_um"] > 1.2 * base["final_migration_length_um"]
    with pytest.raises(ValueError, match="unknown device overrides"):
        device_task(None, inp.to_dict(), 3.0, 0.1, True, sol, profile_hours=(0.0, 0.1), overrides={"bogus": 1})


# ------------------------------------------------------------------------------ input errors and CLI
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    from halide_ionics.coupling.cli import main

    for argv, field in ((["study", "s99", "--out", str(tmp_path / "a")], "study"),
                        (["study", "s12", "--electrode", "linear", "--out", str(tmp_path / "b")], "electrode"),
                        (["study", "s12", "--workers", "0", "--out", str(tmp_path / "c")], "workers"),
                        (["study", "--out", str(tmp_path / "d")], "study")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{field}=" in err, err
    assert not any(tmp_path.iterdir())
    with pytest.raises(InputError, match="temperatures_K"):
        S.StudyConfig(temperatures_K=(300.0, 330.0, 370.0))


def test_cli_list_and_a_warm_study_from_the_cli(ran, cache, tmp_path, capsys, monkeypatch):
    from halide_ionics.coupling.cli import main

    assert main(["study", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in S.STUDIES:
        assert name in listed
    # the CLI's --quick sizes replaced by the test's, so the warm cache of the fixture is reused
    monkeypatch.setattr(S.StudyConfig, "quick_config", classmethod(lambda cls: TINY))
    out = tmp_path / "s12"
    assert main(["study", "s12", "--electrode", "paper-linear", "--quick", "--json", "--out", str(out),
                 "--cache-dir", str(cache), "--workers", "1"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["study"] == "s12" and rec["wall_seconds"] < 30.0
    assert (out / "s12.nc").exists() and (out / "s12.json").exists()


def test_kmc_mode_every_study(ran_kmc):
    """The default electrode mode: every study writes its outputs; the no-source claims hold; nothing
    is calibrated or implied (the KMC law has no fitted constant and no built-in linear law)."""
    out, index, recs = ran_kmc
    assert set(index) == set(S.STUDIES)
    for name, rec in recs.items():
        assert rec["electrode"] == "kmc"
        assert (out / "studies" / name / f"{name}.nc").exists()
        _numbers_carry_kinds(rec["results"])
        for t in rec["targets"]:
            assert t["kind"] == "prediction", (name, t)
        assert rec["calibrated"] == {}
    for name in ("s12", "s14"):
        for v in recs[name]["results"]["migration_length_um"].values():
            assert np.nanmax(np.abs(v["value"])) <= S.NO_MOTION_UM, (name, v)
    for f, v in recs["s11"]["results"]["migration_length_um"].items():
        assert v["kind"] == "prediction", f
    # s16 names a contact only where its rate matters; the KMC law's contacts may be exchange-equilibrium
    # limited (then neither rate controls, and the paper's claim is reported as failed, not passed)
    s16 = recs["s16"]
    for f, c in s16["results"]["controlling"].items():
        sig = abs(c["controlling_sensitivity"]["value"]) >= S.SIGNIFICANT_SENSITIVITY
        assert c["controlling_contact"].startswith("neither") != sig, (f, c)
    if not abs(s16["results"]["controlling"]["+4"]["controlling_sensitivity"]["value"]) >= S.SIGNIFICANT_SENSITIVITY:
        assert not s16["targets"][0]["pass"]
    for pop in ("fixed", "thermal"):
        d = recs["temperature"]["vacancy_population"][pop]["interdiffusion_m2_per_s"]
        a, sa = np.asarray(d["front_growth"]["value"]), np.asarray(d["front_growth"]["se"])
        b, sb = np.asarray(d["kmc_onsager"]["value"]), np.asarray(d["kmc_onsager"]["se"])
        assert np.all(np.abs(a - b) <= 2.0 * np.hypot(sa, sb)), (pop, a, b)


@pytest.mark.slow
def test_quick_studies_from_the_cli_both_modes(tmp_path):
    from halide_ionics.coupling.cli import main

    for mode in ("paper-linear", "kmc"):
        for name in S.STUDIES:
            assert main(["study", name, "--electrode", mode, "--quick", "--out", str(tmp_path / mode / name),
                         "--cache-dir", str(tmp_path / "cache"), "--workers", "1"]) == 0
            assert (tmp_path / mode / name / f"{name}.json").exists()


def test_kinds_of_migration_values_follow_the_calibration():
    """paper-linear: +-2 V/um calibrated (lambda, delta_el), other fields implied; kmc: nothing calibrated."""
    assert [S._kind_at("paper-linear", f, 2.0) for f in (0.0, 2.0, -2.0, 3.0, -4.0)] == \
        ["prediction", "calibrated", "calibrated", "implied", "implied"]
    assert [S._kind_at("kmc", f, 2.0) for f in (0.0, 2.0, -2.0, 3.0, -4.0)] == ["prediction"] * 5
