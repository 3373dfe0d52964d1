"""The KMC-derived electrode law in the continuum (coupling/electrode.py, issue #9).

References not computed by the code under test: the KMC's dilute closed form of its own electrode
events (:func:`halide_ionics.kmc.electrode_reference`, evaluated at the material's reservoir level
and at an overpotential) and detailed balance (a contact at x_V^eq(c) stays there).
"""
import numpy as np
import pytest

from halide_ionics.continuum import DeviceModel
from halide_ionics.coupling.coefficients import kmc_rate_model
from halide_ionics.coupling.device_runs import ContinuumInputs
from halide_ionics.coupling.electrode import kmc_law
from halide_ionics.coupling.materials import CSPB_BR_CL_298K
from halide_ionics.kmc import electrode_reference

M = CSPB_BR_CL_298K
X_KMC = 2e-3  # the electrode KMC box's level (as in CoefficientConfig)
GRID = np.linspace(0.0, 1.0, 41)


def _reference_at(level, c, eta=0.0):
    rm = kmc_rate_model(M).reservoir_for_vacancy_fraction(level, "Br")
    return electrode_reference(float(c), float(eta), rm, electrode_rate_Hz=M.w_br_Hz)


def _law(split=None, beta=0.5):
    """The continuum law built from KMC-level rates (what the coefficient table measures);
    ``split``: a Br-share function carried as the KMC's creation split (``split="kmc"``), else
    the default composition split."""
    kc = np.array([_reference_at(X_KMC, c)["creation_rate_Hz"] for c in GRID])
    xeq = np.array([_reference_at(M.vacancy_fraction_br, c)["vacancy_fraction"] for c in GRID])
    phi = split or (lambda c: 1.0 - np.asarray(c))
    br = lambda c: np.interp(c, GRID, kc) * phi(np.asarray(c))  # noqa: E731
    cl = lambda c: np.interp(c, GRID, kc) * (1.0 - phi(np.asarray(c)))  # noqa: E731
    odds = lambda x: x / (1 - x)  # noqa: E731
    law = kmc_law(br, cl, lambda c: np.interp(c, GRID, xeq), GRID, beta, odds(X_KMC), odds(M.vacancy_fraction_br),
                  split="kmc" if split is not None else "composition")
    return law, xeq


def _model(law, xeq, transfer=0.5):
    inp = ContinuumInputs(
        c=tuple(GRID), l_brbr_Hz=tuple(np.full(41, M.w_br_Hz)), l_brcl_Hz=tuple(np.zeros(41)),
        l_clcl_Hz=tuple(np.full(41, M.w_cl_Hz)), x_v_eq=tuple(xeq), k_create0_per_s=tuple(law.creation_Hz),
        k_annihilate0_per_s=tuple(law.annihilation_Hz), temperature_K=M.temperature_K,
        lattice_constant_A=M.lattice_constant_A, permittivity_rel=M.epsilon_r, voltage_exponent=0.0,
        br_fraction=tuple(law.br_fraction), transfer_coefficient=transfer, electrode_mode="kmc")
    return DeviceModel(inp.device_config(0.0, 1.0, True, nodes=60))


def _uniform_state(model, c, x_v, eta_kT):
    """Uniform composition c, vacancy fraction x_v, lattice potential -eta (electrodes at 0 V)."""
    y = np.empty(3 * model.n)
    y[0::3] = (1 - x_v) * (1 - c)
    y[1::3] = x_v
    y[2::3] = -eta_kT
    return y


def test_law_matches_kmc_closed_form_at_material_level():
    """Level shift (o^M/o^K)^beta: the KMC's rates at its own level, carried to the material's
    level, equal the closed form evaluated directly at the material's reservoir."""
    law, xeq = _law()
    for c in (0.0, 0.3, 0.7, 0.9, 1.0):
        ref = _reference_at(M.vacancy_fraction_br, c)
        kc, ka = law.rates(c)
        assert kc == pytest.approx(ref["creation_rate_Hz"], rel=1e-9)
        assert ka == pytest.approx(ref["annihilation_rate_Hz"], rel=1e-9)


@pytest.mark.parametrize("c", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("eta_V", [-0.05, 0.0, 0.04])
def test_continuum_source_matches_kmc_law(c, eta_V):
    """The kernel's S_V at a contact node equals creation(η)(1 − x_V) − annihilation(η) x_V of the
    KMC closed form at that composition and overpotential, and S_Br = −φ_Br S_V."""
    law, xeq = _law()
    model = _model(law, xeq)
    x_v = 3e-8
    kT = M.kT_eV
    y = _uniform_state(model, c, x_v, eta_V / kT)
    tB, tC, tV = model.source_totals(y, 0.0)
    L = model.srclen.sum()
    ref = _reference_at(M.vacancy_fraction_br, c, eta_V)
    expect = ref["creation_rate_Hz"] * (1 - x_v) - ref["annihilation_rate_Hz"] * x_v
    assert tV / L == pytest.approx(expect, rel=1e-5)
    assert -tB / tV == pytest.approx(1.0 - c, abs=1e-6)  # the split given to the law
    assert tB + tC + tV == pytest.approx(0.0, abs=1e-12 * abs(tV) + 1e-300)


def test_equilibrium_contact_stays_at_x_v_eq():
    """Detailed balance: at zero overpotential S_V vanishes at x_V = x_V^eq(c) for every c, and a
    contact held at equilibrium for hours under zero bias stays there."""
    law, xeq = _law()
    model = _model(law, xeq)
    for k, c in enumerate(GRID[::5]):
        xe = float(np.interp(c, GRID, xeq))
        _, _, tV = model.source_totals(_uniform_state(model, c, xe, 0.0), 0.0)
        gross = model.srclen.sum() * float(law.rates(c)[0])
        assert abs(tV) <= 1e-6 * gross
    # the whole device at zero bias (step junction): contact nodes keep x_V^eq of their composition
    from halide_ionics.continuum import simulate

    r = simulate(model.config)
    assert r.status == "ok"
    for name in ("electrode_low", "electrode_high"):
        m = model.mesh.mask(name)
        c_end = r.x_cl[-1][m] / (r.x_br[-1][m] + r.x_cl[-1][m])
        xe = model.config.vacancy(c_end)  # the model's x_V^eq(c) (pchip of the table in ln x)
        np.testing.assert_allclose(r.x_v[-1][m], xe, rtol=1e-6)


def test_overpotential_ratio_is_nernst_and_split_is_the_kmc_one():
    """At the source's fixed point under an overpotential η the odds rise by e^{eη/kT} (the
    Nernst factor, whatever β), and a non-trivial split φ_Br(c) (``split="kmc"``) is carried to
    S_Br/S_V; the default split is the contact's composition."""
    law0, _ = _law()
    np.testing.assert_allclose(law0.br_fraction[:-1], 1.0 - GRID[:-1], rtol=1e-12)
    phi = lambda c: 1.0 / (1.0 + 0.3 * np.asarray(c) / np.maximum(1.0 - np.asarray(c), 1e-300))  # noqa: E731
    for beta in (0.3, 0.5):
        law, xeq = _law(split=phi, beta=beta)
        model = _model(law, xeq, transfer=beta)
        c, eta = 0.4, 2.0  # kT/e
        kc, ka = law.rates(c, eta)
        x_star = kc / (kc + ka)
        xe = float(np.interp(c, GRID, xeq))
        assert (x_star / (1 - x_star)) / (xe / (1 - xe)) == pytest.approx(np.exp(eta), rel=1e-6)
        tB, _, tV = model.source_totals(_uniform_state(model, c, 0.5 * x_star, eta), 0.0)
        assert -tB / tV == pytest.approx(float(phi(c)), rel=1e-4)


@pytest.mark.parametrize("field", [4.0, -4.0])
def test_default_mesh_converged_forward_and_reverse(field):
    """Mesh refinement with the KMC law: the reproduction's default mesh gives the 4 h migration
    within 1 % of a run on twice the nodes, forward and reverse (the reverse front moves only
    nanometres and converges slowly, about N^-1.3)."""
    from halide_ionics.coupling.device_runs import device_task
    from halide_ionics.coupling.reproduce import ReproduceConfig

    law, xeq = _law()
    inp = ContinuumInputs(
        c=tuple(GRID), l_brbr_Hz=tuple(np.full(41, M.w_br_Hz)), l_brcl_Hz=tuple(np.zeros(41)),
        l_clcl_Hz=tuple(np.full(41, M.w_cl_Hz)), x_v_eq=tuple(xeq), k_create0_per_s=tuple(law.creation_Hz),
        k_annihilate0_per_s=tuple(law.annihilation_Hz), temperature_K=M.temperature_K,
        lattice_constant_A=M.lattice_constant_A, permittivity_rel=M.epsilon_r, voltage_exponent=0.0,
        br_fraction=tuple(law.br_fraction), transfer_coefficient=0.5, electrode_mode="kmc")
    cfg = ReproduceConfig()
    a = device_task(None, inp.to_dict(), field, 4.0, True, cfg.solver())
    b = device_task(None, inp.to_dict(), field, 4.0, True, cfg.fine_solver())
    assert a["status"] == b["status"] == "ok"
    ma, mb = a["final_migration_length_um"], b["final_migration_length_um"]
    assert (ma > 0.1) if field > 0 else (abs(ma) < 0.05 * 0.98)
    assert abs(ma - mb) <= 0.01 * abs(mb)
    assert max(a["max_x_v"], b["max_x_v"]) <= 1e-2
