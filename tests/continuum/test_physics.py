"""Analytic limits: Debye-Hueckel, Poisson-Boltzmann depletion, erfc interdiffusion, convergence, symmetry."""
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import erfc

from halide_ionics.continuum import DeviceModel, Geometry, simulate
from halide_ionics.continuum.coefficients import F0_PEROVSKITE_X

from .helpers import uniform_device

X_V = 1e-7


def _debye_length(m):
    return m.lam_um / math.sqrt(X_V * (1 - X_V))


def _dh_error(nodes, vbar=0.02):
    """Max error of the odd part of psi~ in the gap against the linear Debye-Hueckel profile."""
    cfg0 = uniform_device(nodes=nodes, duration_s=2000.0)
    kT = cfg0.material.kT_eV
    cfg = uniform_device(voltage_V=vbar * kT, nodes=nodes, duration_s=2000.0)
    m = DeviceModel(cfg)
    r = simulate(cfg, model=m)
    assert r.status == "ok"
    z = m.mesh.z_um
    a, b = m.mesh.regions["gap"]
    mid = 0.5 * (a + b)
    psi = r.psi_V[-1] / kT
    odd = 0.5 * (psi - psi[::-1])  # the mesh is mirror symmetric; the O(V^2) even part drops out
    g = m.mesh.mask("gap")
    LD = _debye_length(m)
    exact = -0.5 * vbar * np.sinh((z[g] - mid) / LD) / math.sinh(0.5 * (b - a) / LD)
    err = np.abs(odd[g] - exact).max() / (0.5 * vbar)
    return err, m.hface[(z[:-1] >= a) & (z[1:] <= b)].max(), LD


def test_debye_hueckel_profile_and_second_order_convergence():
    errs, hs = [], []
    for nodes in (61, 121, 241):
        e, h, LD = _dh_error(nodes)
        errs.append(e)
        hs.append(h)
    # leading truncation error of the 3-point Laplacian: (h^2/12) psi''''/psi'' = h^2 / (12 L_D^2)
    assert errs[-1] < hs[-1] ** 2 / (12 * LD ** 2) * 4
    orders = np.log(np.array(errs[:-1]) / np.array(errs[1:])) / np.log(np.array(hs[:-1]) / np.array(hs[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.2), orders


def test_large_bias_depletion_matches_poisson_boltzmann():
    """40 kT/e across a long gap: depletion layer at the positive contact vs the exact PB solution."""
    geom = Geometry(wire_length_um=30.0, electrode_width_um=2.0, gap_um=20.0)
    cfg0 = uniform_device(geometry=geom)
    kT = cfg0.material.kT_eV
    vbar = 40.0
    cfg = uniform_device(geometry=geom, voltage_V=vbar * kT, nodes=401, duration_s=5000.0)
    m = DeviceModel(cfg)
    r = simulate(cfg, model=m)
    assert r.status == "ok"
    z = m.mesh.z_um
    a, b = m.mesh.regions["gap"]
    psi = r.psi_V[-1] / kT
    xv = r.x_v[-1]
    g = np.nonzero(m.mesh.mask("gap"))[0]
    field = np.abs(np.diff(psi) / np.diff(z))
    # neutral bulk: zero field, x_V back at the background
    k_bulk = g[np.argmin(field[g[:-1]])]
    mu = psi[k_bulk]
    assert xv[k_bulk] == pytest.approx(X_V, rel=1e-3)
    ds = psi[g[0]] - mu
    assert ds > 20  # most of the bias drops across the depletion layer
    LD = _debye_length(m)
    F = lambda p: math.exp(-p) + p - 1.0  # noqa: E731
    # exact PB (first integral): distance from the contact edge at which psi~ - mu = d
    sel = [k for k in g if 2.0 <= psi[k] - mu <= ds - 0.5]
    assert len(sel) > 20
    zan = np.array([LD * quad(lambda p: 1.0 / math.sqrt(2.0 * F(p)), psi[k] - mu, ds)[0] for k in sel])
    W = LD * math.sqrt(2.0 * (ds - 1.0))  # Mott-Schottky width of the depletion approximation
    hmax = np.diff(z[g]).max()
    err = np.abs((z[sel] - a) - zan).max()
    assert err < W * (hmax / LD) ** 2, (err, W, hmax)
    # depletion approximation: vacancies gone from the inner half of W (psi~ - mu > ds/4 there)
    inside = (z > a) & (z < a + 0.5 * W)
    assert xv[inside].max() < 1e-2 * X_V


def test_erfc_interdiffusion_with_field_off():
    """Equal jump rates, constant x_V: linear diffusion with D = Kh x_V w f0 / (1 - x_V)."""
    w = 1e9
    cfg = uniform_device(nodes=401, duration_s=3000.0, w_Hz=w)
    cfg = cfg.replace(initial=type(cfg.initial)(cl_fraction_br_segment=0.1, cl_fraction_cl_segment=0.9))
    m = DeviceModel(cfg)
    r = simulate(cfg, model=m)
    assert r.status == "ok"
    D = m.Kh * X_V * w * F0_PEROVSKITE_X / (1 - X_V)
    z = m.mesh.z_um
    zj = m.mesh.junction_um
    ok = 0
    for i in (len(r.times_s) // 2, len(r.times_s) - 1):
        t = r.times_s[i]
        ell = 2 * math.sqrt(D * t)
        exact = (1 - X_V) * (0.1 + 0.8 * 0.5 * erfc((z - zj) / ell))
        near = np.abs(z - zj) < 3 * ell
        h = np.diff(z)[near[:-1]].max()
        err = np.abs(r.x_br[i] - exact)[near].max()
        # O(h^2) spatial error of the resolved profile plus the time integrator's tolerance
        tol = 0.8 * (h / ell) ** 2 + 100 * cfg.solver.rtol
        assert err < tol, (t, err, tol)
        ok += 1
    assert ok == 2
    # vacancies stay uniform, no charge, no field
    assert np.abs(r.x_v[-1] / X_V - 1).max() < 1e-9
    assert np.abs(r.psi_V[-1]).max() < 1e-9


def test_mirror_symmetry_under_reversed_bias():
    """A mirror-symmetric device under +V and -V gives mirrored solutions (sources on)."""
    kw = dict(c=0.5, nodes=161, duration_s=600.0, sources=True)
    fwd = simulate(uniform_device(voltage_V=8.0, **kw))
    rev = simulate(uniform_device(voltage_V=-8.0, **kw))
    assert fwd.status == rev.status == "ok"
    z = fwd.mesh.z_um
    np.testing.assert_allclose(z, z[-1] - z[::-1], atol=1e-12)
    # global error of the two independent adaptive runs is a few local tolerances
    tol = 1e3 * fwd.config.solver.rtol
    np.testing.assert_allclose(rev.x_br[-1], fwd.x_br[-1][::-1], rtol=tol, atol=0)
    np.testing.assert_allclose(rev.x_v[-1], fwd.x_v[-1][::-1], rtol=tol, atol=1e-6 * X_V)
    np.testing.assert_allclose(rev.psi_V[-1], fwd.psi_V[-1][::-1], rtol=tol, atol=1e-6)
    # and the field did something: vacancies piled toward the negative electrode
    assert fwd.x_v[-1][z > 7.0].mean() > 10 * fwd.x_v[-1][z < 3.0].mean()
