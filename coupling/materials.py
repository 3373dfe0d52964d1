"""Material parameter sets: CsPbBr3–CsPbCl3 at 298 K.

Every number says where it comes from:

* ``[paper]``   Kong et al., Nano Lett. 20, 8151 (2020), arXiv:2007.07128 (main text);
* ``[lit]``     another literature source, named;
* ``[assumed]`` a modelling choice with no measured value behind it, stated as such;
* ``[calibrated: …]`` fitted, with the data it was fitted to.

Nothing here is fitted to the ±4 V/µm points that ``reproduce`` reports.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from halide_ionics.errors import InputError

from halide_ionics.constants import E_CHARGE_C, EPS0_F_PER_M, T_ROOM_K  # noqa: E402  (one source)
from halide_ionics.constants import K_B_EV_PER_K as K_B_EV  # noqa: E402

#: the two readings of the paper's "∼1e-7 per unit cell" (see :attr:`Material.vacancy_level_reading`)
VACANCY_LEVEL_READINGS = ("per-cell", "per-site")


@dataclass(frozen=True)
class Material:
    """Physical parameters of the mixed-halide perovskite wire (SI/eV units in the names)."""

    name: str = "CsPb(Br,Cl)3, 298 K"
    #: [paper] room temperature.
    temperature_K: float = T_ROOM_K
    #: [paper] the lattice spacing used in the paper's model and snapshot (CsPbBr3 pseudo-cubic
    #: 5.840 Å, cubic 5.874 Å; CsPbCl3 ≈ 5.61 Å — see halide_ionics.structures.cells).
    lattice_constant_A: float = 5.8
    #: [paper] relative permittivity used in the paper's Poisson equation ("ε = 250").
    epsilon_r: float = 250.0
    #: [paper, ref. 21 (Lai et al. PNAS 2018)] halide-vacancy formation energies in pure lattices.
    vacancy_formation_br_eV: float = 1.32
    vacancy_formation_cl_eV: float = 1.44
    #: [paper] halide-vacancy level of pure CsPbBr3: "∼1e-7 per unit cell". The paper does not
    #: say whether "per unit cell" means per ABX3 cell (3 halide sites) or per halide site; the
    #: reading is the named choice :attr:`vacancy_level_reading`. Sets the absolute vacancy
    #: level; x_V^eq(c) relative to it comes from the KMC.
    vacancy_level_paper: float = 1e-7
    #: ``"per-cell"`` (default: the paper's words taken literally, site fraction 1e-7/3 ≈ 3.3e-8,
    #: Debye length 0.83 µm at ε_r = 250) or ``"per-site"`` (site fraction 1e-7, 0.48 µm).
    vacancy_level_reading: str = "per-cell"
    #: [assumed] attempt frequency of a halide hop (optical-phonon scale, ~1 THz).
    attempt_frequency_Hz: float = 1.0e12
    #: [calibrated: paper's ionic mobility 1.7e-13 cm² V⁻¹ s⁻¹ at ``reference_temperature_K``]
    #: Br-vacancy exchange rate w_Br. Pure CsPbBr3 at the vacancy site fraction x_V:
    #: μ = x_V z s² w_Br e/(6kT) (ℓ_BrBr = w_Br in a pure lattice), so w_Br = 6kTμ/(e x_V z s²).
    #: Held as the barrier E_a,Br = kT ln(ν/w_Br) (≈ 0.250 eV at 3.3e-8 per site: consistent with
    #: the measured 0.25 eV of Mizusaki et al. 1983), which is then fixed at every temperature.
    ionic_mobility_cm2_per_Vs: float = 1.7e-13
    #: [paper] room temperature, where the mobility calibrates E_a,Br.
    reference_temperature_K: float = T_ROOM_K
    #: [lit: Mizusaki, Arai, Fueki, Solid State Ionics 11, 203 (1983), DOI
    #: 10.1016/0167-2738(83)90025-5] measured vacancy-migration barriers 0.25 eV (CsPbBr3) and
    #: 0.29 eV (CsPbCl3): E_a,Cl − E_a,Br = 0.04 eV, i.e. w_Cl/w_Br = e^{−0.04/kT} ≈ 0.21 at 298 K
    #: for equal attempt frequencies (replaces the earlier assumed ratio 0.1).
    barrier_difference_cl_br_eV: float = 0.04
    #: [assumed] environment dependence of the hop barrier (eV per Cl neighbour of the vacancy);
    #: no data, so off.
    barrier_shift_per_cl_eV: float = 0.0

    def __post_init__(self):
        for f in ("temperature_K", "lattice_constant_A", "epsilon_r", "vacancy_level_paper",
                  "attempt_frequency_Hz", "ionic_mobility_cm2_per_Vs", "reference_temperature_K"):
            v = getattr(self, f)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f, v, "must be a finite positive number")
        d = self.barrier_difference_cl_br_eV
        if isinstance(d, bool) or not (isinstance(d, (int, float)) and math.isfinite(d) and abs(d) < 1.0):
            raise InputError("barrier_difference_cl_br_eV", d, "must be a finite number of magnitude < 1 eV")
        if self.vacancy_level_reading not in VACANCY_LEVEL_READINGS:
            raise InputError("vacancy_level_reading", self.vacancy_level_reading,
                             f"must be one of {', '.join(VACANCY_LEVEL_READINGS)}")
        if not self.vacancy_fraction_br < 0.05:
            raise InputError("vacancy_level_paper", self.vacancy_level_paper,
                             "gives a vacancy site fraction >= 0.05, outside the dilute regime of the KMC inputs")

    # ------------------------------------------------------------------ derived quantities
    @property
    def kT_eV(self) -> float:
        return K_B_EV * self.temperature_K

    @property
    def jump_distance_m(self) -> float:
        return self.lattice_constant_A * 1e-10 / math.sqrt(2.0)

    @property
    def site_density_per_m3(self) -> float:
        return 3.0 / (self.lattice_constant_A * 1e-10) ** 3

    @property
    def coordination(self) -> int:
        return 8

    @property
    def vacancy_fraction_br(self) -> float:
        """Vacancy site fraction of pure CsPbBr3 (per halide site) under the named reading."""
        return self.vacancy_level_paper / (3.0 if self.vacancy_level_reading == "per-cell" else 1.0)

    @property
    def barrier_br_eV(self) -> float:
        """E_a,Br from the mobility at the reference temperature (see the field docs)."""
        kT_ref = K_B_EV * self.reference_temperature_K
        mu = self.ionic_mobility_cm2_per_Vs * 1e-4  # m²/Vs
        w_ref = 6.0 * kT_ref * mu / (self.vacancy_fraction_br * self.coordination * self.jump_distance_m**2)
        return kT_ref * math.log(self.attempt_frequency_Hz / w_ref)

    @property
    def barrier_cl_eV(self) -> float:
        return self.barrier_br_eV + self.barrier_difference_cl_br_eV

    @property
    def w_br_Hz(self) -> float:
        """Br–vacancy exchange rate ν e^{−E_a,Br/kT}."""
        return self.attempt_frequency_Hz * math.exp(-self.barrier_br_eV / self.kT_eV)

    @property
    def w_cl_Hz(self) -> float:
        return self.attempt_frequency_Hz * math.exp(-self.barrier_cl_eV / self.kT_eV)

    @property
    def rate_ratio_cl_br(self) -> float:
        """w_Cl/w_Br = e^{−(E_a,Cl − E_a,Br)/kT}."""
        return math.exp(-self.barrier_difference_cl_br_eV / self.kT_eV)

    @property
    def debye_length_m(self) -> float:
        eps0 = EPS0_F_PER_M
        kT_J = self.kT_eV * E_CHARGE_C
        n = self.site_density_per_m3 * self.vacancy_fraction_br
        return math.sqrt(eps0 * self.epsilon_r * kT_J / (E_CHARGE_C**2 * n))

    def with_(self, **changes) -> "Material":
        if "vacancy_fraction_br" in changes:  # a site fraction given directly: the per-site reading
            changes["vacancy_level_paper"] = changes.pop("vacancy_fraction_br")
            changes["vacancy_level_reading"] = "per-site"
        unknown = set(changes) - set(asdict(self))
        if unknown:
            k = sorted(unknown)[0]
            raise InputError(k, changes[k], "unknown material parameter")
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def at_temperature(self, T_K: float, vacancy_population: str = "fixed") -> "Material":
        """This material at another temperature, hop barriers held fixed (studies of temperature).

        Hop rates follow w = ν e^{−E_a/kT} with the barriers fixed at every T (E_a,Br calibrated at
        ``reference_temperature_K``, E_a,Cl = E_a,Br + ``barrier_difference_cl_br_eV``). The vacancy
        population is a named choice:

        * ``"fixed"`` (extrinsic): x_V(Br) as at the reference temperature, at every T;
        * ``"thermal"`` (intrinsic): x_V(Br) scaled by e^{−E_f,Br (1/kT − 1/kT_ref)}, E_f,Br =
          ``vacancy_formation_br_eV`` — the single-vacancy form, the same e^{−E_f/kT} law whose
          composition dependence the KMC's x_V^eq(c) uses (a Schottky-pair form would halve the
          exponent and break that consistency). The mobility at the reference temperature is scaled
          with x_V so that the calibrated barrier E_a,Br (∝ ln of μ/x_V) is unchanged.

        ``T_K`` must lie in (0, 361) K: CsPbBr3 changes phase at 361 K.

        Relies on: the fields ``temperature_K``, ``reference_temperature_K``, ``vacancy_level_paper``,
        ``ionic_mobility_cm2_per_Vs``, ``vacancy_formation_br_eV`` and the properties
        ``vacancy_fraction_br`` (∝ ``vacancy_level_paper``), ``barrier_br_eV``, ``barrier_cl_eV``
        (checked on exit: the barriers must be unchanged).
        """
        if isinstance(T_K, bool) or not isinstance(T_K, (int, float)) or not (0.0 < T_K < 361.0):
            raise InputError("temperature_K", T_K, "must lie in (0, 361) K (CsPbBr3 changes phase at 361 K)")
        if vacancy_population not in ("fixed", "thermal"):
            raise InputError("vacancy_population", vacancy_population, "must be 'fixed' or 'thermal'")
        e_br, e_cl = self.barrier_br_eV, self.barrier_cl_eV
        factor = 1.0
        if vacancy_population == "thermal":
            factor = math.exp(-self.vacancy_formation_br_eV / K_B_EV
                              * (1.0 / float(T_K) - 1.0 / self.reference_temperature_K))
        m = replace(self, name=f"{self.name.rsplit(', ', 1)[0]}, {float(T_K):g} K ({vacancy_population} vacancies)",
                    temperature_K=float(T_K), vacancy_level_paper=self.vacancy_level_paper * factor,
                    ionic_mobility_cm2_per_Vs=self.ionic_mobility_cm2_per_Vs * factor)
        if abs(m.barrier_br_eV - e_br) > 1e-9 or abs(m.barrier_cl_eV - e_cl) > 1e-9:  # pragma: no cover
            raise RuntimeError("Material.at_temperature: the barriers changed; the Material fields it relies on moved")
        return m


#: The default parameter set used by ``halide-ionics reproduce``.
CSPB_BR_CL_298K = Material()
