"""Electrode laws of the device model: the KMC-derived default and the paper's linear pump.

Two named modes (``--electrode``, TOML ``[electrode] mode``):

``kmc`` (default) — the KMC's own rate law, carried to the continuum
=====================================================================

The KMC contact (:func:`halide_ionics.kmc.electrode_rates`, grand-canonical box: every site
exchanges vacancies with an electrode reservoir) measures, at each composition c of the contact
and electrode overpotential η (electrode potential over the lattice's):

* r_c^K(c, η): vacancy creation rate per ion site (an ion leaves into the electrode),
* r_a^K(c, η): annihilation rate per vacancy (a vacancy is filled from the electrode),
* φ_Br(c): the share of Br among the ions removed (a creation split; see *species split*),
* x^K(c): the steady vacancy fraction of the box, at the KMC's own (countable) vacancy level.

Detailed balance of every electrode event makes the box's steady state the equilibrium of the
exchange, r_c^K (1 − x^K) = r_a^K x^K, i.e. r_a^K/r_c^K = 1/o^K with the odds o = x/(1 − x); and
the rate law is ln r_c^K(c, η) = p(c) + β eη/kT with transfer coefficient β (measured, ≈ ½).

*Level shift.* The KMC runs at o^K(0) ≈ 2e-3, the material at o^M(0) (3.3e-8 per site). Both
levels come from the reservoir's vacancy chemical potential, which enters every electrode event
exactly as an overpotential does (the energy of the "vacancy in the electrode" state), so moving
the level by Δ = ln(o^M/o^K) is an overpotential of kTΔ/e:

    r_c(c) = r_c^K(c, 0) · (o^M/o^K)^β,       r_a(c) = r_c(c) / o_eq(c),

with o_eq(c) = x_V^eq(c)/(1 − x_V^eq(c)) the material's equilibrium odds. Because x_V^eq(c) is
the material level times the KMC's composition dependence, o^M/o^K is the same at every c.

*Continuum source* (per site per second, on every node inside a contact, η = ψ_el − ψ(z)):

    S_V = r_c(c) e^{βeη/kT} (1 − x_V) − r_a(c) e^{−(1−β)eη/kT} x_V,
    S_Br = −φ_Br(c) S_V,      S_Cl = −(1 − φ_Br(c)) S_V.

Checks built into the form: at η = 0 the fixed point is x_V/(1 − x_V) = o_eq(c), i.e.
x_V = x_V^eq(c) — a contact at equilibrium stays there (tested); S_V/[r_c (1 − x_V)] at a
given η reproduces the KMC's creation law e^{βeη/kT} and the ratio of the two terms at the
fixed point is e^{eη/kT}, the Nernst factor (tested).

*Species split.* Both directions exchange ions with the same split φ_Br(c): that is the condition
for each species to be in detailed balance on its own (microscopic reversibility: filling a
vacancy with s is the reverse of creating it by removing s), so the contact's composition has a
true equilibrium (a removal split different from the refill split would pump the contact's
composition at zero net vacancy flux, at the gross exchange rate ~1e4 s⁻¹ per site). Against a
reservoir of the contact's own composition — the KMC's grand-canonical electrode — the
equilibrium split is that composition, φ_Br = 1 − c: the default (``split="composition"``, the
paper's rule too). The KMC table also records the creation split its boxes showed, φ_Br(0.5) ≈ 0.8
rather than 0.5: the boxes start as random alloys and vacancies form preferentially in Br-rich
shells, so that split is a transient of a box not yet in compositional equilibrium with its
reservoir, not an equilibrium property. Carried to the continuum (``split="kmc"``) it makes the
negative, Cl-rich contact inject Br-rich ions and, in the direct KMC junction of ``consistency``
(whose reservoir then refills with the same split), pumps the contact's composition: the
front moved 49 Å in 3 s in the KMC against 1 Å in the continuum (tiny wire), while with the
composition split the two agree to 4 % of the step. The sensitivity table reports the KMC-split
alternative and ×½/×2 on the split's Cl:Br odds.

*Which potential drop.* η is the potential of the electrode over that of the lattice where the
exchange happens. The default contact model (``contact_mode="region"``) pins the lattice to the
electrode potential over the whole contact — the wire lies on the Au pad over its full 1.5 µm,
and the contact is then an ideal reversible reservoir: η = 0 and x_V = x_V^eq(c) there. The
paper instead imposes the voltage at the contact lines; ``contact_mode="line"`` does that, the
lattice inside the contact floats, and η ≠ 0 enters through β. The reproduction reports both
(the sensitivity table's "contact model" row) so the answer does not hinge on the choice.

No constant of this mode is fitted: everything above is KMC output or material data. Exchange
is fast (r_a ~ 1e10 s⁻¹ per vacancy), so the contact acts as an equilibrium reservoir of
vacancies at x_V^eq of its composition; the rectification then follows from the much lower
x_V^eq of a Cl-rich contact (the formation-energy difference) — the injecting contact under
reverse bias is the Cl-rich one.

``paper-linear`` — the paper's phenomenological pump (two calibrated constants)
================================================================================

S_V = k(1 − x_V) − k x_V with k = λ ĝ(c) |ΔV| (the paper's r_c = r_d = α|Δψ|/2), ĝ(c) the
KMC's composition dependence of creation with δ_el the Cl–Br difference of the electrode-transfer
barrier; λ and δ_el are fitted on the ±2 V/µm data (see :mod:`.calibration`). Its fixed point is
x_V = ½: held for hours it floods the contacts far outside the dilute regime in which every
KMC-derived input holds. It is kept only as the paper's model, labelled as such.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from halide_ionics.errors import InputError

#: the electrode models ``reproduce`` and the device runs know
ELECTRODE_MODES = ("kmc", "paper-linear")
DEFAULT_ELECTRODE_MODE = "kmc"
#: rules for the species split of the exchanged ions (see the module docstring)
SPLIT_RULES = ("composition", "kmc")


def check_mode(mode) -> str:
    if mode not in ELECTRODE_MODES:
        raise InputError("electrode.mode", mode, f"must be one of {', '.join(ELECTRODE_MODES)}")
    return str(mode)


def _odds(x):
    x = np.asarray(x, float)
    return x / (1.0 - x)


@dataclass(frozen=True)
class KMCElectrodeLaw:
    """The KMC electrode law at the material's vacancy level, on a composition grid.

    ``creation_Hz``: r_c(c) per ion site at η = 0; ``annihilation_Hz``: r_a(c) = r_c/o_eq per
    vacancy; ``br_fraction``: φ_Br(c); ``beta``: transfer coefficient; ``level_shift``: the
    factor (o^M/o^K)^β applied to the KMC's creation rate.
    """

    c: np.ndarray
    creation_Hz: np.ndarray
    annihilation_Hz: np.ndarray
    br_fraction: np.ndarray
    beta: float
    level_shift: float

    def rates(self, c, eta_kT=0.0):
        """(creation per ion site, annihilation per vacancy) at compositions c, overpotential η (kT/e)."""
        c = np.asarray(c, float)
        kc = np.exp(np.interp(c, self.c, np.log(self.creation_Hz))) * np.exp(self.beta * eta_kT)
        ka = np.exp(np.interp(c, self.c, np.log(self.annihilation_Hz))) * np.exp(-(1.0 - self.beta) * eta_kT)
        return kc, ka


def kmc_law(creation_br, creation_cl, x_v_eq, grid, beta: float, kmc_odds0: float, material_odds0: float,
            exchange_scale: float = 1.0, split_scale: float = 1.0, split: str = "composition") -> KMCElectrodeLaw:
    """Build the KMC law on ``grid`` from the bridge's fits.

    ``creation_br/cl(c)``: fitted per-species KMC creation rates per ion site at η = 0 (Hz);
    ``x_v_eq(c)``: the material's equilibrium vacancy fraction; ``kmc_odds0``/``material_odds0``:
    the vacancy odds of pure CsPbBr3 in the KMC box and in the material. ``split``: the Br share
    of the exchanged ions, ``"composition"`` (the default: the equilibrium split against a
    reservoir of the contact's own composition) or ``"kmc"`` (the KMC box's measured creation
    split; see the module docstring). ``exchange_scale`` and ``split_scale`` (a factor on the
    split's Cl:Br odds) exist for the sensitivity study only.
    """
    grid = np.asarray(grid, float)
    if not (0.0 <= beta <= 1.0):
        raise InputError("electrode.transfer_coefficient", beta, "must lie in [0, 1]")
    if split not in SPLIT_RULES:
        raise InputError("electrode.split", split, f"must be one of {', '.join(SPLIT_RULES)}")
    br = np.where(grid < 1.0, creation_br(np.minimum(grid, 1.0)), 0.0)
    cl = np.where(grid > 0.0, creation_cl(np.maximum(grid, 0.0)), 0.0)
    shift = (material_odds0 / kmc_odds0) ** beta
    kc = (br + cl) * shift * exchange_scale
    if not np.all(np.isfinite(kc) & (kc > 0)):
        raise InputError("electrode.creation", float(np.min(kc)), "KMC creation law is not positive on [0, 1]")
    if split == "kmc":
        odds_cl_br = cl / np.maximum(br, 1e-300)
    else:
        odds_cl_br = grid / np.maximum(1.0 - grid, 1e-300)
    phi = np.where(grid < 1.0, 1.0 / (1.0 + split_scale * odds_cl_br), 0.0)
    ka = kc / _odds(x_v_eq(grid))
    return KMCElectrodeLaw(grid, kc, ka, np.clip(phi, 0.0, 1.0), float(beta), float(shift))
