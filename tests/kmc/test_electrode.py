"""Electrode rate-law / equilibrium-vacancy estimator against exact results.

Grand-canonical boxes whose every site is a contact with a fixed-composition electrode
(kmc/estimators.py): at zero overpotential the creation and annihilation fluxes balance, the
vacancy fraction follows the dilute random-alloy closed form for the linear-in-shell formation
energy, and the rates follow the transfer coefficient ½ in the overpotential. Tolerances are
3 standard errors from independent replicas (fixed seeds). The rate model has different
species barriers and environment shifts, so the species factors of the electrode events matter.
"""
import math
import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
import multiprocessing

import numpy as np
import pytest

from halide_ionics.errors import InputError
from halide_ionics.kmc import RateModel, electrode_rates, electrode_reference

MODEL = RateModel(barrier_cl_eV=0.46, barrier_shift_br_eV=0.01, barrier_shift_cl_eV=0.02,
                  field_V_per_A=1e-3).reservoir_for_vacancy_fraction(1e-3)  # the field is ignored
CELLS, REPLICAS, EVENTS = 8, 32, 20_000
ETA = 0.03  # V: e^{η/2kT} = 1.79


def run(x_cl, eta, key):
    return electrode_rates(x_cl, eta, MODEL, CELLS, REPLICAS, EVENTS, np.random.SeedSequence(2024, spawn_key=(key,)))


@pytest.fixture(scope="module")
def results():
    return {(0.0, 0.0): run(0.0, 0.0, 0), (0.25, 0.0): run(0.25, 0.0, 1), (0.5, 0.0): run(0.5, 0.0, 2),
            (0.25, ETA): run(0.25, ETA, 3), (0.25, -ETA): run(0.25, -ETA, 4)}


def odds_ratio_exact(c, model=MODEL, z=8):
    """⟨exp(−(E_V(env) − E_V,Br)/kT)⟩ over a binomial shell of z ions, linear E_V(n_Cl/z)."""
    d = (model.vacancy_formation_cl_eV - model.vacancy_formation_br_eV) / (z * model.kT_eV)
    return (1.0 - c + c * math.exp(-d)) ** z


def test_zero_overpotential_flux_balance(results):
    for c in (0.0, 0.25, 0.5):
        r = results[(c, 0.0)]
        x = r.vacancy_fraction
        lhs, rhs = r.creation_rate_Hz * (1 - x), r.annihilation_rate_Hz * x
        assert lhs == pytest.approx(r.creation_flux_Hz, rel=1e-12)
        assert rhs == pytest.approx(r.annihilation_flux_Hz, rel=1e-12)
        se = math.hypot(r.creation_flux_se_Hz, r.annihilation_flux_se_Hz)
        assert abs(lhs - rhs) < 3 * se, (c, lhs, rhs, se)
        # in a stationary state the difference is only Σ ΔN_vac/Σ N t (end effects): far below
        assert abs(r.balance_residual_Hz) < 0.1 * se
        assert r.balance_residual_Hz == pytest.approx(lhs - rhs, rel=1e-6, abs=1e-12 * lhs)
        # fixed-composition reservoir: both species' fluxes balance too (no drift of the box)
        n = r.counts
        for s in (0, 1):
            assert abs(n[0, s] - n[1, s]) <= 3 * math.sqrt(n[0, s] + n[1, s]) + 1, (c, n.tolist())
        assert abs(r.x_cl_end - c) < 0.03


def test_vacancy_fraction_follows_random_alloy(results):
    r0 = results[(0.0, 0.0)]
    # pure Br: vacancies do not interact, x_V/(1 − x_V) = exp(−(E_V,Br − μ_V)/kT) = 1e-3/(1 − 1e-3)
    assert abs(r0.vacancy_fraction - 1e-3) < 3 * r0.vacancy_fraction_se
    assert r0.vacancy_fraction_se < 0.01 * 1e-3
    for c in (0.25, 0.5):
        r = results[(c, 0.0)]
        ratio = r.vacancy_fraction / r0.vacancy_fraction
        se = ratio * math.hypot(r.vacancy_fraction_se / r.vacancy_fraction, r0.vacancy_fraction_se / r0.vacancy_fraction)
        exact = odds_ratio_exact(c) * (1 - r.vacancy_fraction) / (1 - r0.vacancy_fraction)
        assert abs(ratio - exact) < 3 * se, (c, ratio, se, exact)
        assert se < 0.03 * exact
        # resolved against the mean-field guess exp(−c ΔE_V/kT) (shell fluctuations matter)
        mean_field = math.exp(-c * (MODEL.vacancy_formation_cl_eV - MODEL.vacancy_formation_br_eV) / MODEL.kT_eV)
        assert abs(ratio - mean_field) > 5 * se
        assert electrode_reference(c, 0.0, MODEL)["vacancy_odds_ratio"] == pytest.approx(odds_ratio_exact(c), rel=1e-12)


def test_rates_match_dilute_closed_form(results):
    """Absolute creation (per ion site) and annihilation (per vacancy) rates, including the species
    factors exp(−(E_a,el(s,x) − E_a,Br)/kT) of the electrode events."""
    for key, r in results.items():
        ref = r.reference
        assert abs(r.creation_rate_Hz - ref["creation_rate_Hz"]) < 3 * r.creation_rate_se_Hz, (key, r.to_dict())
        assert abs(r.annihilation_rate_Hz - ref["annihilation_rate_Hz"]) < 3 * r.annihilation_rate_se_Hz, (key, r.to_dict())


def test_transfer_coefficient_one_half(results):
    kt = MODEL.kT_eV
    base = results[(0.25, 0.0)]
    for eta in (ETA, -ETA):
        r = results[(0.25, eta)]
        for name, sign in (("creation_rate", +1), ("annihilation_rate", -1)):
            a, a_se = getattr(r, name + "_Hz"), getattr(r, name + "_se_Hz")
            b, b_se = getattr(base, name + "_Hz"), getattr(base, name + "_se_Hz")
            ratio = a / b
            se = ratio * math.hypot(a_se / a, b_se / b)
            expect = math.exp(sign * eta / (2 * kt))
            assert abs(ratio - expect) < 3 * se, (eta, name, ratio, se, expect)
            assert abs(expect - 1) > 10 * se  # the dependence is resolved


def test_deterministic_picklable_and_executor_independent():
    ss = np.random.SeedSequence(7, spawn_key=(3,))
    kw = dict(x_cl=0.3, overpotential_V=0.01, rate_model=MODEL, cells=3, replicas=3, events_per_replica=3000)
    a = electrode_rates(seed=ss, **kw)
    ss.spawn(5)  # advancing the caller's SeedSequence must not change the result
    b = electrode_rates(seed=ss, **kw)
    with ThreadPoolExecutor(2) as ex:
        c = electrode_rates(seed=ss, executor=ex, **kw)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as ex:
        d = ex.submit(electrode_rates, seed=ss, **kw).result()
    e = electrode_rates(seed=11, **kw)
    da = a.to_dict()
    for r in (b, c, d):
        dr = r.to_dict()
        for k in da:
            if k != "wall_seconds":
                assert dr[k] == da[k], k
    assert e.to_dict()["creation_rate_Hz"] != da["creation_rate_Hz"]
    assert pickle.loads(pickle.dumps(a)).to_dict() == da
    assert a.counts.sum() > 0 and a.hops + a.counts.sum() == 3 * 3000


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(x_cl=1.5), "x_cl"),
        (dict(overpotential_V=float("nan")), "overpotential_V"),
        (dict(rate_model=None), "rate_model"),
        (dict(cells=2), "cells"),
        (dict(replicas=1), "replicas"),
        (dict(events_per_replica=0), "events_per_replica"),
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(electrode_rate_Hz=-1.0), "electrode_rate_Hz"),
        (dict(equilibration_events=-5), "equilibration_events"),
    ],
)
def test_electrode_rates_input_errors(kw, field):
    args = dict(x_cl=0.3, overpotential_V=0.0, rate_model=MODEL, cells=3, replicas=2, events_per_replica=10, seed=1)
    args.update(kw)
    with pytest.raises(InputError) as exc:
        electrode_rates(**args)
    assert exc.value.field == field


def test_cli_electrode_json_and_errors(capsys):
    import json

    from halide_ionics.coupling.cli import main

    argv = ["kmc", "electrode", "--x-cl", "0.3", "--overpotential", "0.01", "--cells", "3", "--replicas", "2",
            "--events-per-replica", "2000", "--seed", "4", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("creation_rate_Hz", "creation_rate_se_Hz", "annihilation_rate_Hz", "annihilation_rate_se_Hz",
              "vacancy_fraction", "vacancy_fraction_se", "creations_br", "annihilations_cl", "reference"):
        assert k in out
    assert out["x_cl"] == 0.3 and out["overpotential_V"] == 0.01
    for bad in (["--x-cl", "1.2"], ["--vacancy-fraction", "0"], ["--cells", "2"], ["--replicas", "1"]):
        assert main(["kmc", "electrode", "--events-per-replica", "10"] + bad) == 2
        assert "error" in capsys.readouterr().err
