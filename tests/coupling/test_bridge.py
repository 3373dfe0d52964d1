"""The bridge: units, smooth PSD Onsager fits, rate-law fits recovering known synthetic rates."""
import numpy as np
import pytest

from halide_ionics.coupling.bridge import (
    PAIRS,
    fit_log_polynomial,
    fit_onsager,
    fit_rate_law,
    physical_onsager,
)
from halide_ionics.continuum import manning_maa
from halide_ionics.coupling.materials import CSPB_BR_CL_298K, E_CHARGE_C



def maa(c, w_br=1.0, w_cl=0.1):
    """Manning/MAA closed form (model.md §3) with w_Br = 1, w_Cl = 0.1; c = x_Cl."""
    return manning_maa(np.asarray(c, float), w_br, w_cl)


def test_physical_onsager_reproduces_calibrated_mobility():
    m = CSPB_BR_CL_298K
    L = physical_onsager(m.w_br_Hz, m.vacancy_fraction_br, m.lattice_constant_A, m.temperature_K)
    mobility_m2_per_Vs = L * E_CHARGE_C / m.site_density_per_m3
    assert mobility_m2_per_Vs == pytest.approx(m.ionic_mobility_cm2_per_Vs * 1e-4, rel=1e-9)


def test_onsager_fit_recovers_smooth_truth_within_band_and_is_psd():
    rng = np.random.default_rng(5)
    c = np.linspace(0, 1, 21)

    def truth(x):  # a KMC-like correction to MAA: a few % trapping, smooth in c
        bb, bc, cc = maa(x)
        x = np.asarray(x)
        return bb * (1 - 0.04 * x), bc * (1 + 0.08 * x * (1 - x)), cc * (1 + 0.03 * (1 - x))

    true = dict(zip(PAIRS, truth(c)))
    se = {p: 0.01 * np.abs(true[p]) + 1e-6 for p in PAIRS}
    noisy = {p: true[p] + se[p] * rng.standard_normal(c.size) for p in PAIRS}
    fit = fit_onsager(c, noisy, se, reference=maa)
    grid_truth = dict(zip(PAIRS, truth(fit.c)))
    for p in PAIRS:
        inner = (fit.c > 0.02) & (fit.c < 0.98)
        err = np.abs(fit.l[p] - grid_truth[p])[inner]
        band = fit.se[p][inner]
        assert np.all(err <= 4 * band + 1e-9), p  # 4σ pointwise on a correlated band
    assert fit.min_eigenvalue() >= -1e-12
    bb, bc, cc = fit([0.0, 1.0])
    assert cc[0] == pytest.approx(0.0, abs=1e-12) and bb[1] == pytest.approx(0.0, abs=1e-12)
    assert bc[0] == pytest.approx(0.0, abs=1e-12) and bc[1] == pytest.approx(0.0, abs=1e-12)


def test_onsager_fit_projects_indefinite_input_onto_psd_cone():
    c = np.linspace(0, 1, 11)
    bb, bc, cc = maa(c)
    bad = {"brbr": bb, "brcl": 3.0 * np.sqrt(bb * cc) + bc, "clcl": cc}  # |ℓ_BrCl| > sqrt(ℓ_BrBr ℓ_ClCl)
    se = {p: 0.01 * np.abs(v) + 1e-6 for p, v in bad.items()}
    fit = fit_onsager(c, bad, se, reference=maa)
    assert fit.psd_projection_max > 0
    assert fit.min_eigenvalue() >= -1e-12


def test_rate_law_fit_recovers_known_synthetic_rates():
    rng = np.random.default_rng(11)
    kT = 0.02568
    c = np.repeat(np.linspace(0, 1, 11), 3)
    eta = np.tile([-0.05, 0.0, 0.05], 11)
    true_logp = lambda x: np.log(2.0e3) - 3.1 * x + 0.7 * x**2  # noqa: E731
    beta = 0.5
    rate = np.exp(true_logp(c) + beta * eta / kT)
    se = 0.02 * rate
    meas = rate * (1 + 0.02 * rng.standard_normal(rate.size))
    fit = fit_rate_law(c, eta, meas, se, kT_eV=kT)
    assert abs(fit.beta - beta) < 3 * fit.beta_se
    grid = np.linspace(0, 1, 51)
    err = np.abs(np.log(fit(grid)) - true_logp(grid))
    assert np.all(err < 3 * fit.log_se(grid) + 1e-12)


def test_log_polynomial_fit_of_binomial_vacancy_fraction():
    rng = np.random.default_rng(3)
    c = np.linspace(0, 1, 21)
    g = np.exp(-0.12 / 0.02568 / 8)
    y = (1 - c + c * g) ** 8
    se = 0.01 * y
    fit = fit_log_polynomial(c, y * (1 + 0.01 * rng.standard_normal(c.size)), se)
    assert np.all(np.abs(np.log(fit(c)) - np.log(y)) < 3 * fit.log_se(c) + 0.005)
