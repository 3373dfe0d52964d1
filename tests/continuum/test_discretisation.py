"""Discrete operator: analytic Jacobian, exact equilibrium, conservation, positivity, mesh."""
import numpy as np
import pytest

from halide_ionics.continuum import DeviceConfig, DeviceModel, build_mesh, simulate
from halide_ionics.continuum import kernels as K

from .helpers import uniform_device


def _kmc_line_device():
    """The KMC electrode law's features: species-split table, transfer coefficient on the local
    overpotential (line contacts: the contact region's lattice floats, so eta != 0), exponent 0."""
    from dataclasses import replace

    from halide_ionics.continuum import ElectrodeKinetics, SolverOptions

    c = np.linspace(0.0, 1.0, 11)
    el = ElectrodeKinetics(c=tuple(c), k_create0_per_s=tuple(1e-3 * np.exp(-3 * c)),
                           k_annihilate0_per_s=tuple(2e-1 * np.exp(1 * c)), voltage_exponent=0.0,
                           br_fraction=tuple(1.0 / (1.0 + 0.4 * c / np.maximum(1 - c, 1e-9)) * (c < 1)),
                           transfer_coefficient=0.4)
    cfg = DeviceConfig.paper_device(4.0, 1.0, nodes=40)
    return replace(cfg, electrode=el, solver=SolverOptions(nodes=40, contact_mode="line"))


@pytest.fixture(scope="module", params=["paper", "kmc-line"])
def small_model(request):
    if request.param == "paper":
        return DeviceModel(DeviceConfig.paper_device(4.0, 1.0, nodes=40))
    return DeviceModel(_kmc_line_device())


def _random_state(m, rng):
    y = m.y_initial.copy()
    y[0::3] = rng.uniform(0.05, 0.9, m.n)
    y[1::3] = rng.uniform(1e-4, 5e-2, m.n)
    y[2::3] = rng.normal(0.0, 5.0, m.n)
    return y


def test_bernoulli_and_logmean_branches():
    """The flux kernels' Bernoulli pair and logarithmic mean, every branch, against closed forms."""
    for x in (-800.0, -30.0, -1e-2, -5e-4, 0.0, 3e-4, 2e-3, 1.0, 40.0, 750.0):
        bm, dbm, b, db = K._bern2(x, True)
        ref = 1.0 if x == 0 else x / np.expm1(x) if x < 700 else x * np.exp(-x)
        assert b == pytest.approx(ref, rel=1e-12, abs=1e-300)
        assert bm == pytest.approx(b + x, rel=1e-12, abs=1e-300)  # B(-x) = B(x) + x
        e = 1e-6 * max(1.0, abs(x))
        fd = (K._bern2(x + e, False)[2] - K._bern2(x - e, False)[2]) / (2 * e)
        assert db == pytest.approx(fd, rel=1e-6, abs=1e-9)
        assert dbm == pytest.approx(-1.0 - db, rel=1e-12, abs=1e-12)
    for a, b in ((0.3, 0.3 * (1 + 1e-5)), (0.3, 0.31), (1e-6, 0.9)):
        lam, da, dbb = K._logmean_r(a, b, np.log(a), np.log(b), 1 / a, 1 / b, True)
        assert lam == pytest.approx((b - a) / np.log(b / a) if b != a else a, rel=1e-10)
        assert lam * np.log(b / a) == pytest.approx(b - a, rel=1e-10)
        e = 1e-7 * a
        fd = (K._logmean_r(a + e, b, np.log(a + e), np.log(b), 1 / (a + e), 1 / b, False)[0]
              - K._logmean_r(a - e, b, np.log(a - e), np.log(b), 1 / (a - e), 1 / b, False)[0]) / (2 * e)
        assert da == pytest.approx(fd, rel=1e-5)


def test_analytic_jacobian_matches_finite_differences(small_model, rng):
    m = small_model
    y = _random_state(m, rng)
    hist = rng.normal(size=y.size)
    _, J = m.residual(y, 16.0, massc=2.0, hist=hist, jacobian=True)
    scale = np.where(np.arange(y.size) % 3 == 2, 1.0, np.abs(y) + 1e-3)
    Jfd = np.zeros_like(J)
    for j in range(y.size):
        e = 1e-6 * scale[j]
        yp, ym = y.copy(), y.copy()
        yp[j] += e
        ym[j] -= e
        Jfd[:, j] = (m.residual(yp, 16.0, 2.0, hist) - m.residual(ym, 16.0, 2.0, hist)) / (2 * e)
    # central differences: truncation ~ e^2 |R'''|, round-off ~ eps |R| / e; relative to each row
    row = np.abs(Jfd).max(axis=1, keepdims=True)
    assert np.max(np.abs(J - Jfd) / row) < 1e-6
    # the band structure is what the banded solver assumes
    i, j = np.nonzero(J)
    assert np.all(np.abs(i - j) <= K.KL)


def test_band_lu_solves_the_jacobian(small_model, rng):
    m = small_model
    y = _random_state(m, rng)
    R = np.empty(y.size)
    abT = np.zeros((y.size, K.LDAB))
    wk = K.block_workspace(m.n)
    K.assemble(y, 5.0, np.zeros(y.size), True, R, abT, wk, *m._args(16.0))
    _, J = m.residual(y, 16.0, massc=5.0, jacobian=True)
    b = rng.normal(size=y.size)
    ipiv = np.empty(y.size, np.int64)
    assert K.band_factor(abT, y.size, ipiv) == 0
    x = b.copy()
    K.band_solve(abT, y.size, ipiv, x)
    np.testing.assert_allclose(J @ x, b, rtol=0, atol=1e-9 * np.abs(J).max() * np.abs(x).max())


def test_fluxes_telescope_and_sources_sum_to_zero(small_model, rng):
    """Operator conservation: sum over boxes of the semi-discrete rhs = integrated sources."""
    m = small_model
    y = _random_state(m, rng)
    rhs = -m.residual(y, 16.0)
    S = m.source_totals(y, 16.0)
    assert S[0] + S[1] + S[2] == pytest.approx(0.0, abs=1e-15 * np.abs(S).max())
    FB, FC, FV = m.fluxes(y)
    scale = np.abs(FV).max() + np.abs(FB).max() + np.abs(S).max()  # round-off of the largest term
    assert rhs[0::3].sum() == pytest.approx(S[0], abs=1e-12 * scale)
    assert rhs[1::3].sum() == pytest.approx(S[2], abs=1e-12 * scale)
    np.testing.assert_allclose(FB + FC + FV, 0.0, atol=1e-15 * (np.abs(FV).max() + np.abs(FB).max()))


def test_discrete_equilibrium_has_zero_flux_on_every_face(rng):
    """Boltzmann vacancies in an arbitrary potential at uniform composition: every face flux is 0."""
    m = DeviceModel(uniform_device(c=0.3, nodes=120))
    c = 0.3
    psi = np.cumsum(rng.normal(0.0, 3.0, m.n))  # strongly varying, tens of kT across the wire
    g = np.log(m.config.vacancy(np.full(m.n, c)))
    E = np.exp(g - psi - 2.0)
    xv = (1 - c) * E / (1 + (1 - c) * E)
    y = np.empty(3 * m.n)
    y[0::3] = (1 - xv) * (1 - c)
    y[1::3] = xv
    y[2::3] = psi
    FB, FC, FV = m.fluxes(y)
    # scale: the drift flux the same vacancies would carry in this field
    scale = m.Kh * 1.946e7 * xv.max() * np.abs(np.diff(psi) / m.hface).max()
    assert np.abs(FV).max() < 1e-13 * scale
    assert np.abs(FB).max() < 1e-13 * scale


def test_equilibrium_state_does_not_move():
    cfg = uniform_device(c=0.4, nodes=120, duration_s=3600.0)
    m = DeviceModel(cfg)
    r = simulate(cfg, model=m)
    assert r.status == "ok"
    assert np.abs(r.x_br[-1] - r.x_br[0]).max() <= 1e-14
    assert np.abs(r.x_v[-1] / r.x_v[0] - 1).max() <= 1e-12
    assert np.abs(r.psi_V[-1]).max() <= 1e-12
    assert r.steps < 200


def test_mesh_regions_refinement_and_symmetry():
    mesh = build_mesh(10.0, 1.5, 4.0, 401, 0.0, 20.0)
    z = mesh.z_um
    assert z.size == 401 and z[0] == 0.0 and z[-1] == 10.0
    for name in ("electrode_low", "electrode_high", "gap"):
        a, b = mesh.regions[name]
        assert np.min(np.abs(z - a)) < 1e-12 and np.min(np.abs(z - b)) < 1e-12
    np.testing.assert_allclose(z, 10.0 - z[::-1], atol=1e-12)
    h = mesh.h_um
    assert h.max() / h.min() > 10  # graded
    assert np.all(h > 0)
    assert mesh.box_um.sum() == pytest.approx(10.0, rel=1e-14)
    assert mesh.overlap_um("electrode_low").sum() == pytest.approx(1.5, rel=1e-13)
    j = mesh.index_of(5.0)
    assert h[j] < 0.2 * h.max() and h[0] > h[mesh.index_of(1.5)]  # refined at junction and contact edge


def test_block_jacobian_and_block_lu_match_banded(small_model, rng):
    """The integrator's streaming block kernel reproduces the (finite-difference checked) banded one."""
    m = small_model
    y = _random_state(m, rng)
    y[3 * 10:3 * 14:3] = y[3 * 10]  # equal neighbours: series branches of the log mean and B(x)
    y[3 * 10 + 2:3 * 14:3] = y[3 * 10 + 2]
    hist = rng.normal(size=y.size)
    R1, J = m.residual(y, 16.0, massc=2.0, hist=hist, jacobian=True)
    n = m.n
    R2 = np.empty(y.size)
    Dg, Lo, Up, L, Dinv = (np.full((n, 3, 3), np.nan) for _ in range(5))
    args = m._args(16.0)
    assert K.assemble_blocks(y, 2.0, hist, True, R2, Dg, Lo, Up, *args) == 0
    J2 = np.zeros_like(J)
    for k in range(n):
        J2[3 * k:3 * k + 3, 3 * k:3 * k + 3] = Dg[k]
        if k > 0:
            J2[3 * k:3 * k + 3, 3 * k - 3:3 * k] = Lo[k]
        if k < n - 1:
            J2[3 * k:3 * k + 3, 3 * k + 3:3 * k + 6] = Up[k]
    np.testing.assert_allclose(R2, R1, rtol=0, atol=1e-13 * np.abs(R1).max())
    row = np.abs(J).max(axis=1, keepdims=True)
    assert np.max(np.abs(J2 - J) / row) < 1e-12
    # ... and converts to the band layout of the partial-pivoting fallback
    abT = np.empty((y.size, K.LDAB))
    abT_ref = np.zeros((y.size, K.LDAB))
    K.assemble(y, 2.0, hist, True, np.empty(y.size), abT_ref, K.block_workspace(n), *m._args(16.0))
    K.blocks_to_band(Dg, Lo, Up, abT)
    assert np.max(np.abs(abT - abT_ref)) <= 1e-12 * np.abs(abT_ref).max()
    # residual-only calls leave the blocks alone and give the same residual
    Dg0 = Dg.copy()
    R3 = np.empty(y.size)
    assert K.assemble_blocks(y, 2.0, hist, False, R3, Dg, Lo, Up, *args) == 0
    np.testing.assert_array_equal(R3, R2)
    np.testing.assert_array_equal(Dg, Dg0)
    # block LU (no pivoting across blocks) solves with a small componentwise backward error
    b = rng.normal(size=y.size)
    assert K.block_factor(Dg, Lo, Up, L, Dinv) == 0
    np.testing.assert_array_equal(Dg, Dg0)  # the matrix survives its factorisation
    x = b.copy()
    K.block_solve(L, Up, Dinv, x)
    assert np.max(np.abs(J @ x - b) / (np.abs(J) @ np.abs(x) + np.abs(b))) < 1e-12
    # a singular pivot block is reported (the integrator then uses the banded LU)
    K.assemble_blocks(y, 2.0, hist, True, R2, Dg, Lo, Up, *args)
    Dg[0, 1] = Dg[0, 0]
    assert K.block_factor(Dg, Lo, Up, L, Dinv) == 1
