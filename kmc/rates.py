"""Rate model of the halide-vacancy lattice KMC (docs/model.md §3).

Energies in eV, temperature in K, frequencies in Hz, potentials in V, lengths in Å.

Hamiltonian
-----------
The rates obey detailed balance with respect to

    H = Σ_vacancies v [E_V(v) − μ_V] + Σ_ions i q ψ_i,      q = −e,

* ``E_V(v) = E_V,Br + (E_V,Cl − E_V,Br) · n_Cl(v) / n_ion(v)``: the formation energy of a
  vacancy interpolates linearly in the composition of its own neighbour shell (``n_Cl`` Cl ions
  among ``n_ion`` ions on the neighbour sites; a shell without ions uses the midpoint). Defaults
  1.32 and 1.44 eV (V_Br in CsPbBr3, V_Cl in CsPbCl3; Kong et al. 2020 citing Lai et al. 2018).
* ``μ_V`` (``vacancy_reservoir_eV``): the energy of the reservoir the electrodes exchange
  vacancies with. Only differences ``E_V − μ_V`` matter, so ``μ_V`` sets the absolute
  equilibrium vacancy fraction (``x_V ≈ exp(−(E_V − μ_V)/kT)`` at zero potential), see
  :meth:`RateModel.reservoir_for_vacancy_fraction`. Hops conserve the vacancy number and do
  not depend on it.
* ``ψ_i``: electrostatic potential of site i (V): per-site values (``set_site_potentials``)
  plus a uniform field ``E_z`` along the wire axis, ``ψ = ψ_site − E_z·z``. An ion carries −e, so
  its energy on site i is ``−ψ_i`` in eV.

Ion hop (ion of species s on site i into the vacancy on neighbour j)
    ``w = ν exp(−[E_a(s, env) + ΔE/2]/kT)`` with ``ΔE = H(after) − H(before)``, evaluated
    exactly: the vacancy's formation energy at its new site (whose shell now contains the moved
    ion) minus that at its old site, the formation-energy changes of every *other* vacancy
    whose shell contains i or j, and the field term ``ΔE_field = −(ψ_j − ψ_i)``.

Environment-dependent barrier (documented choice)
    ``E_a(s, env) = E_a,s + δ_s · (n_i + n_j)/2`` where ``n_i`` (``n_j``) is the number of Cl
    ions on the neighbour sites of i (of j), not counting the hop's own end sites. This count is
    the same before and after the hop (only sites i and j change), so the barrier is the same
    for a hop and its reverse and detailed balance holds for any δ.

Electrode events (site x inside an electrode with potential ψ_el and prefactor k_e)
    An ion entering or leaving the electrode crosses a saddle like a lattice hop, so it carries
    the kinetically-resolved barrier of its species (docs/model.md §3). Documented choice: the
    barrier includes the environment shift, with the Cl count of x's own neighbour shell,

        ``E_a,el(s, x) = E_a,s + δ_s · n_Cl(x)``,

    i.e. δ_s per Cl ion next to the one lattice end site of the event (a hop averages the two end
    sites' counts). ``n_Cl(x)`` counts the neighbours of x, which the event does not change, so
    creation and its reverse annihilation carry the same factor. The species factor is taken
    relative to a Br ion in a Cl-free shell,

        ``K_s(x) = exp(−(E_a,el(s, x) − E_a,Br)/kT)``,

    so ``k_e`` (``Electrode.rate_Hz``) is the prefactor of Br with no Cl neighbours (with
    ``δ_s = 0`` simply the prefactor for Br).

    Creation: the ion on x (species s) leaves into the electrode. Moving a charge −e from ψ_x
    to ψ_el changes its energy by ``−(ψ_el − ψ_x)`` eV, so
    ``ΔE_create = E_V(x) − μ_V − (ψ_el − ψ_x) + Σ_{vacancies w next to x} ΔE_V(w)``
    and ``w_create = k_e K_s(x) exp(−ΔE_create/2kT)``.
    Annihilation: a vacancy on x is filled from the electrode by species s with probability
    ``p_s`` = the fraction of s among the ions on x's neighbour sites (½ each if there are
    none), i.e. ions enter in proportion to the local composition (as the continuum's
    source term assumes), or, for an electrode of fixed composition (``Electrode.cl_fraction``
    given), ``p_Cl = cl_fraction``, ``p_Br = 1 − cl_fraction``; ``w_annihilate,s = p_s k_e K_s(x) exp(+ΔE_create,s/2kT)`` where
    ``ΔE_create,s`` is the creation energy of the state with s on x. Hence, for every pair of
    states, ``w_create/w_annihilate = exp(−(ΔE_create + kT ln p_s)/kT)``: detailed balance with
    an electrode that is an ion reservoir in local equilibrium with the contact, whose
    chemical potential for species s is the ideal-mixing value ``kT ln p_s``; and
    ``w_create·w_annihilate = p_s (k_e K_s(x))²`` fixes the kinetic prefactor. ``p_s`` and
    ``K_s`` depend only on x's neighbours, which the event does not change. The overpotential
    enters as ``exp(∓(ψ_el − ψ_x)/2kT)`` (transfer coefficient ½).

    The local rule is detailed balance pair by pair, but its reservoir chemical potential moves
    with the neighbourhood, so it is not an equilibrium with one global ion reservoir: when E_V
    depends on composition, vacancies sit (and are refilled) preferentially in Br-rich shells,
    and a contact region that is not fed by transport drifts towards pure Br (a 648-site box
    that is all contact goes from c = 0.5 to pure Br in ~2·10⁵ events with the defaults). An
    electrode of fixed composition (``cl_fraction``) is a true reservoir with
    ``μ_s = kT ln p_s``: the whole system then has the grand-canonical equilibrium
    ``P ∝ exp(−H/kT) Π_ions p_s``, which is what :func:`~halide_ionics.kmc.electrode_rates` uses.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from halide_ionics.errors import InputError, check_positive

from halide_ionics.constants import K_B_EV_PER_K as K_B_EV  # noqa: E402  (one source: halide_ionics.constants)
from halide_ionics.constants import T_ROOM_K  # noqa: E402


def _finite(field: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(field, value, "must be a number") from None
    if not np.isfinite(v):
        raise InputError(field, value, "must be finite")
    return v


@dataclass(frozen=True)
class RateModel:
    """Energies and frequencies of the hop and electrode events (see the module docstring).

    Defaults: T = 298.0 K (``halide_ionics.constants.T_ROOM_K``, the project's default); barriers 0.44 eV for both species (placeholder: the Cl–Br
    interdiffusion activation energy of CsPbBr3 nanowires, Pan et al., Nano Lett. 2018 — not a
    per-species hop barrier; calibrate); ν = 1e13 Hz (typical phonon attempt frequency,
    placeholder); formation energies 1.32/1.44 eV (Kong et al. 2020 citing Lai et al. 2018);
    ``μ_V = 0``; no environment shift; no field.
    """

    temperature_K: float = T_ROOM_K
    attempt_frequency_Hz: float = 1.0e13
    barrier_br_eV: float = 0.44
    barrier_cl_eV: float = 0.44
    barrier_shift_br_eV: float = 0.0
    barrier_shift_cl_eV: float = 0.0
    vacancy_formation_br_eV: float = 1.32
    vacancy_formation_cl_eV: float = 1.44
    vacancy_reservoir_eV: float = 0.0
    field_V_per_A: float = 0.0

    def __post_init__(self):
        check_positive("temperature_K", self.temperature_K)
        check_positive("attempt_frequency_Hz", self.attempt_frequency_Hz)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _finite(f.name, getattr(self, f.name)))

    @property
    def kT_eV(self) -> float:
        return K_B_EV * self.temperature_K

    def hop_rate_Hz(self, species: int) -> float:
        """Bare hop rate ``ν exp(−E_a,s/kT)`` of species 0 (Br) or 1 (Cl)."""
        ea = (self.barrier_br_eV, self.barrier_cl_eV)[int(species)]
        return self.attempt_frequency_Hz * float(np.exp(-ea / self.kT_eV))

    @classmethod
    def from_rate_ratio(cls, rate_ratio: float, temperature_K: float = T_ROOM_K, **kw) -> "RateModel":
        """Random-alloy model: ``w_Br = 1 Hz``, ``w_Cl = rate_ratio`` Hz, no site energies.

        Times are then in units of ``1/w_Br``; extra keyword arguments override fields.
        """
        r = check_positive("rate_ratio", rate_ratio)
        kt = K_B_EV * check_positive("temperature_K", temperature_K)
        base = dict(
            temperature_K=temperature_K,
            attempt_frequency_Hz=1.0,
            barrier_br_eV=0.0,
            barrier_cl_eV=-kt * float(np.log(r)),
            vacancy_formation_br_eV=0.0,
            vacancy_formation_cl_eV=0.0,
        )
        base.update(kw)
        return cls(**base)

    def reservoir_for_vacancy_fraction(self, x_v: float, composition: str = "Br") -> "RateModel":
        """Copy with ``μ_V`` set so that a pure-``composition`` lattice at zero potential has the
        equilibrium vacancy fraction ``x_v/(1 − x_v) = exp(−(E_V − μ_V)/kT)``."""
        x = float(x_v)
        if not 0.0 < x < 1.0:
            raise InputError("x_v", x_v, "must lie in (0, 1)")
        if composition not in ("Br", "Cl"):
            raise InputError("composition", composition, "must be 'Br' or 'Cl'")
        ev = self.vacancy_formation_br_eV if composition == "Br" else self.vacancy_formation_cl_eV
        mu = ev + self.kT_eV * float(np.log(x / (1.0 - x)))
        return dataclasses.replace(self, vacancy_reservoir_eV=mu)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # ---- tables for the kernels -------------------------------------------------------------
    def vacancy_energy_table(self, z: int) -> np.ndarray:
        """``E_V(n_Cl, n_ion)`` in eV, shape (z+1, z+1); entries with n_Cl > n_ion are unused."""
        ncl = np.arange(z + 1)[:, None].astype(float)
        nion = np.arange(z + 1)[None, :].astype(float)
        frac = np.where(nion > 0, ncl / np.maximum(nion, 1.0), 0.5)
        frac = np.where(ncl <= nion, frac, 0.0)
        d = self.vacancy_formation_cl_eV - self.vacancy_formation_br_eV
        return self.vacancy_formation_br_eV + d * frac

    def barrier_table(self, z: int) -> np.ndarray:
        """``ν exp(−(E_a,s + δ_s n/2)/kT)`` for s = Br, Cl and n = 0..2(z−1) Cl neighbours."""
        n = np.arange(2 * z - 1, dtype=float)
        ea = np.array([self.barrier_br_eV, self.barrier_cl_eV])[:, None]
        de = np.array([self.barrier_shift_br_eV, self.barrier_shift_cl_eV])[:, None]
        return self.attempt_frequency_Hz * np.exp(-(ea + de * n / 2.0) / self.kT_eV)

    def electrode_species_table(self, z: int) -> np.ndarray:
        """``K_s(n) = exp(−(E_a,s + δ_s n − E_a,Br)/kT)`` for s = Br, Cl and n = 0..z Cl ions next
        to the electrode site: the species factor of electrode events (module docstring)."""
        n = np.arange(z + 1, dtype=float)
        ea = np.array([self.barrier_br_eV, self.barrier_cl_eV])[:, None]
        de = np.array([self.barrier_shift_br_eV, self.barrier_shift_cl_eV])[:, None]
        return np.exp(-(ea + de * n - self.barrier_br_eV) / self.kT_eV)


@dataclass(frozen=True, eq=False)
class Electrode:
    """An electrode contact: the sites it touches, its potential (V) and rate prefactor k_e (Hz).

    ``rate_Hz`` is the prefactor of a Br ion with no Cl neighbours; other species and
    environments carry ``exp(−(E_a,el(s, x) − E_a,Br)/kT)`` (see the module docstring).
    ``cl_fraction``: None (default) fills vacancies in proportion to the ions next to the site;
    a number in [0, 1] makes the electrode a reservoir of that fixed Cl fraction."""

    mask: np.ndarray
    potential_V: float
    rate_Hz: float
    name: str = ""
    cl_fraction: float | None = None

    def __post_init__(self):
        m = np.asarray(self.mask)
        if m.ndim != 1 or m.dtype != bool:
            raise InputError("electrode.mask", getattr(m, "shape", m), "must be a 1-D boolean array over the sites")
        if not m.any():
            raise InputError("electrode.mask", self.name or "electrode", "selects no site")
        object.__setattr__(self, "mask", m.copy())
        object.__setattr__(self, "potential_V", _finite("electrode.potential_V", self.potential_V))
        object.__setattr__(self, "rate_Hz", check_positive("electrode.rate_Hz", self.rate_Hz))
        if self.cl_fraction is not None:
            c = _finite("electrode.cl_fraction", self.cl_fraction)
            if not 0.0 <= c <= 1.0:
                raise InputError("electrode.cl_fraction", self.cl_fraction, "must lie in [0, 1] (or be None)")
            object.__setattr__(self, "cl_fraction", c)
