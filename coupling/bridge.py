"""The bridge: KMC estimates (with standard errors) → smooth continuum inputs (with uncertainty).

* :func:`fit_onsager` — smooth, symmetric, positive-semidefinite ℓ_ij(c) from per-composition KMC
  estimates. The fit is a weighted least-squares correction to a closed-form reference (the
  Manning/MAA random-alloy form), ℓ_ij(c) = ℓ_ij^ref(c)·(1 + Σ_k a_k P_k(2c − 1)) with Legendre
  polynomials P_k; the reference carries the exact end-point behaviour (ℓ_BrBr → 0 as c → 1,
  ℓ_BrCl → 0 at both ends), the correction is what the KMC adds (e.g. vacancy trapping by the
  composition-dependent formation energy). The correction is cubic by default (a fixed degree, so
  a smooth correction is not biased by model selection); the coefficient covariance gives a 1σ band. PSD is checked on a fine grid and, where a fitted matrix is indefinite within its
  noise, it is projected onto the PSD cone (the projection size is reported).
* :func:`fit_log_polynomial` — a smooth fit of ln y(c) (used for x_V^eq(c)).
* :func:`fit_rate_law` — the electrode rate law ln r(c, η) = p(c) + β·eη/kT, a polynomial in the
  contact composition plus a transfer coefficient β for the potential, by weighted least squares.

Units: ℓ_ij are per-vacancy rates in Hz (or in units of w_Br when the input is); the physical
coefficient is L_ij = c_s x_V z s² ℓ_ij /(6kT) (see :func:`physical_onsager`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import legendre

PAIRS = ("brbr", "brcl", "clcl")


def _wls(design: np.ndarray, y: np.ndarray, se: np.ndarray):
    """Weighted least squares; returns coefficients, covariance, chi²."""
    w = 1.0 / se
    A = design * w[:, None]
    b = y * w
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    resid = A @ coef - b
    chi2 = float(resid @ resid)
    cov = np.linalg.pinv(A.T @ A)
    dof = max(len(y) - design.shape[1], 1)
    # inflate by the reduced chi² when the scatter exceeds the quoted errors (Birge ratio)
    cov = cov * max(1.0, chi2 / dof)
    return coef, cov, chi2


def _legendre_design(c: np.ndarray, degree: int) -> np.ndarray:
    return legendre.legvander(2.0 * np.asarray(c) - 1.0, degree)


@dataclass(frozen=True)
class CorrectionFit:
    """ℓ(c) = ref(c)·(1 + Σ a_k P_k(2c−1)) for one Onsager component."""

    degree: int
    coef: np.ndarray
    cov: np.ndarray
    chi2: float
    n_points: int

    def factor(self, c) -> np.ndarray:
        return 1.0 + _legendre_design(c, self.degree) @ self.coef

    def factor_se(self, c) -> np.ndarray:
        D = _legendre_design(c, self.degree)
        return np.sqrt(np.einsum("ij,jk,ik->i", D, self.cov, D))


def _fit_correction(c, ratio, ratio_se, degree: int) -> CorrectionFit:
    deg = min(degree, len(c) - 2)
    coef, cov, chi2 = _wls(_legendre_design(c, deg), ratio - 1.0, ratio_se)
    return CorrectionFit(deg, coef, cov, chi2, len(c))


@dataclass(frozen=True)
class OnsagerFit:
    """Smooth ℓ_ij(c) tables on a fine grid, with 1σ bands and the PSD projection record."""

    c: np.ndarray
    l: dict  # pair -> values on c
    se: dict  # pair -> 1σ band on c
    fits: dict = field(repr=False)  # pair -> CorrectionFit
    psd_projection_max: float = 0.0  # largest |negative eigenvalue| removed (same units as ℓ)

    def __call__(self, c):
        c = np.asarray(c, dtype=float)
        return tuple(np.interp(c, self.c, self.l[p]) for p in PAIRS)

    def matrix(self, c) -> np.ndarray:
        bb, bc, cc = self(c)
        return np.stack([np.stack([bb, bc], -1), np.stack([bc, cc], -1)], -2)

    def min_eigenvalue(self) -> float:
        return float(np.linalg.eigvalsh(self.matrix(self.c)).min())


def fit_onsager(
    c: np.ndarray,
    l: dict,
    se: dict,
    reference,
    degree: int = 3,
    n_grid: int = 201,
) -> OnsagerFit:
    """Fit per-composition KMC estimates ``l[pair]`` (± ``se[pair]``) as a correction to ``reference``.

    ``reference(c) -> (l_brbr, l_brcl, l_clcl)`` in the same units as ``l`` (e.g. the Manning/MAA
    closed form with the same jump frequencies). Points where the reference vanishes (pure end
    members for the cross/foreign terms) carry no information on the ratio and are skipped.
    """
    c = np.asarray(c, dtype=float)
    grid = np.linspace(0.0, 1.0, n_grid)
    ref_pts = dict(zip(PAIRS, reference(c)))
    ref_grid = dict(zip(PAIRS, reference(grid)))
    fits, vals, bands = {}, {}, {}
    for p in PAIRS:
        y = np.asarray(l[p], dtype=float)
        s = np.asarray(se[p], dtype=float)
        r = np.asarray(ref_pts[p], dtype=float)
        ok = (np.abs(r) > 1e-12 * np.max(np.abs(r))) & np.isfinite(y) & (s > 0)
        if ok.sum() < 2:
            raise ValueError(f"too few usable points to fit l_{p}")
        fit = _fit_correction(c[ok], y[ok] / r[ok], s[ok] / np.abs(r[ok]), degree)
        fits[p] = fit
        vals[p] = ref_grid[p] * fit.factor(grid)
        bands[p] = np.abs(ref_grid[p]) * fit.factor_se(grid)
    # PSD projection on the grid (convex cone: linear interpolation between PSD nodes stays PSD)
    M = np.stack([np.stack([vals["brbr"], vals["brcl"]], -1), np.stack([vals["brcl"], vals["clcl"]], -1)], -2)
    evals, evecs = np.linalg.eigh(M)
    neg = np.clip(-evals, 0.0, None)
    proj = float(neg.max())
    if proj > 0:
        evals = np.clip(evals, 0.0, None)
        M = np.einsum("nij,nj,nkj->nik", evecs, evals, evecs)
        vals = {"brbr": M[:, 0, 0], "brcl": 0.5 * (M[:, 0, 1] + M[:, 1, 0]), "clcl": M[:, 1, 1]}
    return OnsagerFit(c=grid, l=vals, se=bands, fits=fits, psd_projection_max=proj)


@dataclass(frozen=True)
class LogPolyFit:
    """ln y(c) = Σ b_k P_k(2c−1), with covariance."""

    degree: int
    coef: np.ndarray
    cov: np.ndarray
    chi2: float

    def __call__(self, c):
        return np.exp(_legendre_design(np.asarray(c, float), self.degree) @ self.coef)

    def log_se(self, c):
        D = _legendre_design(np.asarray(c, float), self.degree)
        return np.sqrt(np.einsum("ij,jk,ik->i", D, self.cov, D))


def fit_log_polynomial(c, y, se, max_degree: int = 4) -> LogPolyFit:
    """Smooth positive fit of ``y(c)`` in log space (``se`` is the SE of ``y``), degree by AIC."""
    c = np.asarray(c, float)
    y = np.asarray(y, float)
    s = np.asarray(se, float) / y
    best = None
    for deg in range(0, min(max_degree, len(c) - 2) + 1):
        coef, cov, chi2 = _wls(_legendre_design(c, deg), np.log(y), s)
        aic = chi2 + 2 * (deg + 1)
        if best is None or aic < best[0] - 1e-9:
            best = (aic, LogPolyFit(deg, coef, cov, chi2))
    return best[1]


@dataclass(frozen=True)
class RateLawFit:
    """ln r(c, η) = Σ_k b_k P_k(2c−1) + β·η/kT  (η: electrode overpotential in V, kT in eV)."""

    degree: int
    coef: np.ndarray  # Legendre coefficients of the composition part
    beta: float  # transfer coefficient
    cov: np.ndarray  # covariance of (coef..., beta)
    chi2: float
    kT_eV: float

    def __call__(self, c, eta_V=0.0):
        c = np.asarray(c, float)
        return np.exp(_legendre_design(c, self.degree) @ self.coef + self.beta * np.asarray(eta_V) / self.kT_eV)

    @property
    def beta_se(self) -> float:
        return float(np.sqrt(self.cov[-1, -1]))

    def log_se(self, c, eta_V=0.0):
        c = np.atleast_1d(np.asarray(c, float))
        D = np.column_stack([_legendre_design(c, self.degree), np.broadcast_to(np.asarray(eta_V) / self.kT_eV, c.shape)])
        return np.sqrt(np.einsum("ij,jk,ik->i", D, self.cov, D))


def fit_rate_law(c, eta_V, rate, rate_se, kT_eV: float, max_degree: int = 4) -> RateLawFit:
    """Fit measured electrode rates ``rate(c, η) ± rate_se`` to ln r = p(c) + β η/kT (degree by AIC)."""
    c = np.asarray(c, float)
    eta = np.asarray(eta_V, float)
    r = np.asarray(rate, float)
    s = np.asarray(rate_se, float) / r
    best = None
    for deg in range(0, min(max_degree, len(np.unique(c)) - 1) + 1):
        D = np.column_stack([_legendre_design(c, deg), eta / kT_eV])
        coef, cov, chi2 = _wls(D, np.log(r), s)
        aic = chi2 + 2 * (deg + 2)
        if best is None or aic < best[0] - 1e-9:
            best = (aic, RateLawFit(deg, coef[:-1], float(coef[-1]), cov, chi2, kT_eV))
    return best[1]


def physical_onsager(l_Hz, vacancy_fraction, lattice_constant_A: float, temperature_K: float, z: int = 8):
    """L_ij = c_s x_V z s² ℓ_ij/(6kT) in m⁻¹ s⁻¹ J⁻¹ (sites per m² per s per J/m of driving force)."""
    from halide_ionics.constants import K_B_J_PER_K as k_B
    a = lattice_constant_A * 1e-10
    c_s = 3.0 / a**3
    s2 = a * a / 2.0
    return c_s * np.asarray(vacancy_fraction) * z * s2 * np.asarray(l_Hz) / (6.0 * k_B * temperature_K)


def sample_correction(fit: CorrectionFit, rng: np.random.Generator) -> CorrectionFit:
    """A draw of the correction coefficients from their fitted normal distribution."""
    coef = rng.multivariate_normal(fit.coef, fit.cov, method="eigh")
    return CorrectionFit(fit.degree, coef, fit.cov, fit.chi2, fit.n_points)


def sample_onsager(fit: OnsagerFit, reference, rng: np.random.Generator) -> OnsagerFit:
    """A draw of ℓ_ij(c) consistent with the KMC standard errors (PSD-projected like the fit)."""
    ref = dict(zip(PAIRS, reference(fit.c)))
    vals = {}
    fits = {}
    for p in PAIRS:
        fits[p] = sample_correction(fit.fits[p], rng)
        vals[p] = ref[p] * fits[p].factor(fit.c)
    M = np.stack([np.stack([vals["brbr"], vals["brcl"]], -1), np.stack([vals["brcl"], vals["clcl"]], -1)], -2)
    evals, evecs = np.linalg.eigh(M)
    if evals.min() < 0:
        M = np.einsum("nij,nj,nkj->nik", evecs, np.clip(evals, 0.0, None), evecs)
        vals = {"brbr": M[:, 0, 0], "brcl": 0.5 * (M[:, 0, 1] + M[:, 1, 0]), "clcl": M[:, 1, 1]}
    return OnsagerFit(c=fit.c, l=vals, se=fit.se, fits=fits, psd_projection_max=fit.psd_projection_max)


def sample_log_polynomial(fit: LogPolyFit, rng: np.random.Generator) -> LogPolyFit:
    coef = rng.multivariate_normal(fit.coef, fit.cov, method="eigh")
    return LogPolyFit(fit.degree, coef, fit.cov, fit.chi2)


def onsager_with_reference(fit: OnsagerFit, reference) -> OnsagerFit:
    """The same KMC correction factors on another closed-form reference (e.g. another w_Cl/w_Br)."""
    ref = dict(zip(PAIRS, reference(fit.c)))
    vals = {p: ref[p] * fit.fits[p].factor(fit.c) for p in PAIRS}
    M = np.stack([np.stack([vals["brbr"], vals["brcl"]], -1), np.stack([vals["brcl"], vals["clcl"]], -1)], -2)
    evals, evecs = np.linalg.eigh(M)
    if evals.min() < 0:
        M = np.einsum("nij,nj,nkj->nik", evecs, np.clip(evals, 0.0, None), evecs)
        vals = {"brbr": M[:, 0, 0], "brcl": 0.5 * (M[:, 0, 1] + M[:, 1, 0]), "clcl": M[:, 1, 1]}
    return OnsagerFit(c=fit.c, l=vals, se=fit.se, fits=fit.fits, psd_projection_max=fit.psd_projection_max)


# ------------------------------------------------------------------------------ a whole table
@dataclass(frozen=True)
class BridgeFits:
    """All smooth fits of one KMC coefficient table (see :func:`fit_table`)."""

    onsager: OnsagerFit
    x_v_eq: LogPolyFit  # x_V^eq(c) at the material level (the table's)
    creation_br: LogPolyFit  # Br-removal creation rate per ion site at η = 0 (Hz, KMC level)
    creation_cl: LogPolyFit  # Cl-removal creation rate per ion site at η = 0 (Hz, KMC level)
    transfer: RateLawFit | None  # rate-law fit with the overpotential (transfer coefficient)
    delta_kmc_eV: float  # E_a,Cl − E_a,Br of the KMC's electrode transfer (= the hop barriers')
    kT_eV: float
    kmc_odds0: float  # vacancy odds x/(1 − x) of the pure-CsPbBr3 electrode KMC box
    material_odds0: float  # vacancy odds of pure CsPbBr3 in the material

    @property
    def beta(self) -> float:
        """KMC transfer coefficient (½, the Brønsted value, if the table has no overpotentials)."""
        return 0.5 if self.transfer is None else float(self.transfer.beta)


def manning_reference(w_br_Hz: float, w_cl_Hz: float):
    """ℓ_ij(c) of the Manning/MAA closed form (the fits' reference)."""
    from halide_ionics.continuum import manning_maa

    return lambda c: manning_maa(np.asarray(c, float), w_br_Hz, w_cl_Hz)


def fit_table(table, material) -> BridgeFits:
    """All smooth fits of a coefficient table (``material``: the one the table was computed for)."""
    c = table.composition.values
    l = {p: table[f"l_{p}"].values for p in PAIRS}
    se = {p: np.maximum(table[f"l_{p}_se"].values, 1e-12 * np.abs(table[f"l_{p}"].values).max()) for p in PAIRS}
    ons = fit_onsager(c, l, se, reference=manning_reference(material.w_br_Hz, material.w_cl_Hz))
    xv = fit_log_polynomial(c, table.x_v_eq.values, np.maximum(table.x_v_eq_se.values, 1e-6 * table.x_v_eq.values))
    eta = table.overpotential.values
    j0 = int(np.argmin(np.abs(eta)))
    cr = table.creation_rate.values[:, j0]
    cr_se = table.creation_rate_se.values[:, j0]
    split = table.creation_species_fraction.values[:, j0]
    fits = []
    for s in (0, 1):
        part = cr * split[:, s]
        ok = part > 0
        rel = cr_se[ok] / cr[ok]
        fits.append(fit_log_polynomial(c[ok], part[ok], part[ok] * np.maximum(rel, 1e-4)))
    mask = np.isfinite(table.creation_rate.values)
    cc, ee = np.meshgrid(c, eta, indexing="ij")
    transfer = None
    if (mask & (ee != 0)).any():
        transfer = fit_rate_law(cc[mask], ee[mask], table.creation_rate.values[mask],
                                table.creation_rate_se.values[mask], kT_eV=material.kT_eV)
    xk = float(table.kmc_vacancy_fraction.values[0, j0])
    xm = float(material.vacancy_fraction_br)
    return BridgeFits(ons, xv, fits[0], fits[1], transfer, material.barrier_cl_eV - material.barrier_br_eV,
                      material.kT_eV, xk / (1 - xk), xm / (1 - xm))


def creation_law(fits: BridgeFits, c, delta_el_eV: float, cr_br=None, cr_cl=None):
    """ĝ(c) = r_c(c; δ_el)/r_c(0; δ_el): composition dependence of the creation rate per ion site
    with the Cl–Br electrode-transfer barrier difference set to ``delta_el_eV`` (paper-linear mode)."""
    c = np.asarray(c, float)
    fb = cr_br or fits.creation_br
    fc = cr_cl or fits.creation_cl
    scale = np.exp(-(delta_el_eV - fits.delta_kmc_eV) / fits.kT_eV)

    def total(x):
        x = np.asarray(x, float)
        br = np.where(x < 1.0, fb(np.minimum(x, 1.0)), 0.0)
        cl = np.where(x > 0.0, fc(np.maximum(x, 0.0)), 0.0)
        return br + scale * cl

    return total(c) / total(0.0)
