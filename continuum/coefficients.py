"""Composition-dependent inputs of the continuum model.

Three inputs depend on the halide composition ``c = x_Cl / (x_Br + x_Cl)``:

* :class:`OnsagerCoefficients` -- the per-vacancy Onsager coefficients ``l_ij(c)`` in Hz
  (``brbr``, ``brcl``, ``clcl``; physical ``L_ij = c_s x_V z s^2 l_ij / (6 kT)``);
* :class:`VacancyEquilibrium` -- the zero-field equilibrium vacancy site fraction ``x_V^eq(c)``;
* :class:`ElectrodeKinetics` -- the vacancy creation/annihilation rate law at the contacts,
  ``k(c, dV) = k0(c) * (|dV| / 1 V)**n`` with log-rate tables ``k0(c)``.

Each can be built from a vectorised callable of ``c`` or from a table (c grid, values); tables
are interpolated with a monotone cubic (PCHIP), in log space for ``x_V^eq`` and the rates.
The solver tabulates them on a fine uniform grid (:func:`tabulate`) so that the numba kernels
can interpolate and differentiate them.

PLACEHOLDERS.  Until KMC tables exist the defaults are the closed forms below; each factory
says so in its ``source`` string, and that string goes into every output's provenance:

* :meth:`OnsagerCoefficients.manning_placeholder` -- Manning's random-alloy / MAA closed form
  (docs/model.md section 3) with ``f0 = 0.68891612`` and jump frequencies ``w_Br`` fixed so that
  the halide mobility of pure CsPbBr3 at ``x_V = 1e-7`` equals the paper's 1.7e-13 cm^2/(V s)
  (``mu = x_V z s^2 w e / (6 kT)`` -> ``w_Br = 1.95e7 Hz`` at 298 K, a = 5.8 A) and
  ``w_Cl / w_Br = 0.1`` (an assumption: slower hops in the Cl lattice).
* :meth:`VacancyEquilibrium.formation_energy_placeholder` -- ``x_V^eq(c) = 1e-7 exp(-(E_f(c) -
  E_f(0)) / kT)`` with ``E_f`` linear between 1.32 eV (pure Br) and 1.44 eV (pure Cl), the
  formation energies quoted by the paper (its ref. 21); the 1e-7 level is the paper's typical
  vacancy concentration.
* :meth:`ElectrodeKinetics.paper_placeholder` -- the paper's fitted source strengths, see there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from halide_ionics.constants import F0_PEROVSKITE_X, T_ROOM_K
from halide_ionics.constants import K_B_EV_PER_K as BOLTZMANN_EV_PER_K
from halide_ionics.errors import InputError
from halide_ionics.transport import manning_maa

PAPER_HALIDE_MOBILITY_CM2_PER_VS = 1.7e-13
"""Kong et al. (Nano Lett. 2020): ionic mobility used to convert migration length to field."""

PAPER_ALPHA_FORWARD_UM_PER_VS = 1.3e-5
PAPER_ALPHA_REVERSE_UM_PER_VS = 3.8e-7
"""Kong et al.: source strengths fitted to the +-2 V/um data (forward / reverse)."""

N_TABULATE = 2049
"""Points of the internal uniform composition grid used by the numba kernels."""


def _as_floats(name: str, v) -> np.ndarray:
    """A 1-D float array from a list of numbers (strings, booleans and nested lists are errors)."""
    if isinstance(v, (str, bytes, dict)):
        raise InputError(name, v, "must be a list of numbers")
    if isinstance(v, (list, tuple)):
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
                raise InputError(name, list(v), f"must be a list of numbers (found {x!r})")
    elif isinstance(v, np.ndarray) and v.dtype.kind not in "fiu":
        raise InputError(name, v.tolist(), "must be an array of numbers")
    try:
        return np.asarray(v, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise InputError(name, v, "must be a list of numbers") from None


def _as_grid(name: str, c) -> np.ndarray:
    c = _as_floats(name, c)
    if c.ndim != 1 or c.size < 2:
        raise InputError(name, c.tolist() if c.ndim else c, "must be a list of at least 2 compositions")
    if not np.all(np.isfinite(c)) or c[0] < 0.0 or c[-1] > 1.0:
        raise InputError(name, c.tolist(), "compositions must be finite and lie in [0, 1]")
    if np.any(np.diff(c) <= 0.0):
        raise InputError(name, c.tolist(), "compositions must be strictly increasing")
    return c


def _as_values(name: str, v, n: int, positive: bool = False, nonneg: bool = False) -> np.ndarray:
    v = _as_floats(name, v)
    if v.ndim != 1 or v.size != n:
        raise InputError(name, v.tolist() if v.ndim else v, f"must be a list of {n} numbers (one per composition)")
    if not np.all(np.isfinite(v)):
        raise InputError(name, v.tolist(), "must be finite")
    if positive and np.any(v <= 0.0):
        raise InputError(name, v.tolist(), "must be positive")
    if nonneg and np.any(v < 0.0):
        raise InputError(name, v.tolist(), "must be non-negative")
    return v


def _pchip(c: np.ndarray, v: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Monotone cubic interpolant with constant extrapolation (linear for two points)."""
    if c.size == 2:
        return lambda x: np.interp(x, c, v)
    from scipy.interpolate import PchipInterpolator

    f = PchipInterpolator(c, v, extrapolate=False)

    def g(x):
        x = np.clip(np.asarray(x, dtype=float), c[0], c[-1])
        return f(x)

    return g


def _extrapolate_ends(c: np.ndarray, v: np.ndarray, bad_lo: bool, bad_hi: bool) -> np.ndarray:
    """Replace end values (where a ratio is 0/0) by linear extrapolation from the interior.

    Only interior points are used: with a single interior point (a 3-point table spanning both
    pure ends) both ends take its value.
    """
    v = v.copy()
    n_int = v.size - int(bad_lo) - int(bad_hi)  # points that are not replaced
    if bad_lo:
        v[0] = v[1] + (v[2] - v[1]) * (c[0] - c[1]) / (c[2] - c[1]) if n_int >= 2 else v[1]
    if bad_hi:
        v[-1] = v[-2] + (v[-2] - v[-3]) * (c[-1] - c[-2]) / (c[-2] - c[-3]) if n_int >= 2 else v[-2]
    return v


@dataclass(frozen=True)
class OnsagerCoefficients:
    """Per-vacancy Onsager coefficients l_ij(c) in Hz (i, j in {Br, Cl}; symmetric).

    Build with :meth:`from_callable` (``fn(c) -> (brbr, brcl, clcl)`` arrays in Hz),
    :meth:`from_table` (composition grid and three value lists, e.g. KMC estimates) or
    :meth:`manning_placeholder`.  Internally the solver uses the smooth ratios
    ``p_Br = (l_BrBr + l_BrCl) / c_Br``, ``p_Cl = (l_ClCl + l_BrCl) / c_Cl`` and
    ``q = l_BrCl / (c_Br c_Cl)``; their values at the pure ends (0/0) are extrapolated linearly
    from the interior, so noisy table end points do not matter.
    """

    fn: Callable = field(repr=False, compare=False)
    source: str = "user callable"
    table: dict | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_callable(cls, fn: Callable, source: str = "user callable") -> "OnsagerCoefficients":
        if not callable(fn):
            raise InputError("onsager", fn, "must be callable: fn(c) -> (brbr, brcl, clcl) in Hz")
        obj = cls(fn=fn, source=source)
        obj.validate()
        return obj

    @classmethod
    def from_table(cls, c, brbr_Hz, brcl_Hz, clcl_Hz, source: str = "table") -> "OnsagerCoefficients":
        c = _as_grid("transport.c", c)
        n = c.size
        if n < 3:
            raise InputError("transport.c", c.tolist(), "an Onsager table needs at least 3 compositions")
        aa = _as_values("transport.l_brbr_Hz", brbr_Hz, n, nonneg=True)
        ab = _as_values("transport.l_brcl_Hz", brcl_Hz, n)
        bb = _as_values("transport.l_clcl_Hz", clcl_Hz, n, nonneg=True)
        bad = aa * bb - ab * ab < -1e-9 * np.maximum(aa * bb, 1e-300)
        if np.any(bad):
            k = int(np.argmax(bad))
            raise InputError("transport.l_brcl_Hz", float(ab[k]),
                             f"Onsager matrix not positive semi-definite at c={c[k]:g} (need brcl^2 <= brbr*clcl)")
        cb_ = c
        ca_ = 1.0 - c
        with np.errstate(divide="ignore", invalid="ignore"):
            pbr = (aa + ab) / ca_
            pcl = (bb + ab) / cb_
            qq = ab / (ca_ * cb_)
        lo, hi = c[0] <= 0.0, c[-1] >= 1.0
        pbr = _extrapolate_ends(c, pbr, False, hi)
        pcl = _extrapolate_ends(c, pcl, lo, False)
        qq = _extrapolate_ends(c, qq, lo, hi)
        fp, fc, fq = _pchip(c, pbr), _pchip(c, pcl), _pchip(c, qq)

        def fn(x):
            x = np.asarray(x, dtype=float)
            ca, cbx = 1.0 - x, x
            q = fq(x) * ca * cbx
            return fp(x) * ca - q, q, fc(x) * cbx - q

        fn.ratios = (fp, fc, fq)  # smooth ratios used directly by tabulate()
        tab = {"c": c.tolist(), "l_brbr_Hz": aa.tolist(), "l_brcl_Hz": ab.tolist(), "l_clcl_Hz": bb.tolist()}
        return cls(fn=fn, source=source, table=tab)

    @classmethod
    def manning_placeholder(cls, w_br_Hz: float | None = None, w_cl_Hz: float | None = None,
                            temperature_K: float = T_ROOM_K, lattice_constant_A: float = 5.8,
                            coordination: int = 8) -> "OnsagerCoefficients":
        """PLACEHOLDER: Manning/MAA closed form with paper-calibrated jump frequencies.

        ``w_Br`` defaults to the value giving the paper's halide mobility 1.7e-13 cm^2/(V s) in
        pure CsPbBr3 at x_V = 1e-7 (``mu = x_V z s^2 w e/(6 kT)``); ``w_Cl = 0.1 w_Br``.
        """
        if w_br_Hz is None:
            w_br_Hz = placeholder_w_br_Hz(temperature_K, lattice_constant_A, coordination)
        if w_cl_Hz is None:
            w_cl_Hz = 0.1 * w_br_Hz
        wa = float(w_br_Hz)
        wb = float(w_cl_Hz)
        if not (wa > 0 and math.isfinite(wa)):
            raise InputError("transport.w_br_Hz", w_br_Hz, "must be a finite positive number")
        if not (wb > 0 and math.isfinite(wb)):
            raise InputError("transport.w_cl_Hz", w_cl_Hz, "must be a finite positive number")

        def fn(c):
            return manning_maa(c, wa, wb)

        src = (f"PLACEHOLDER Manning/MAA closed form, f0={F0_PEROVSKITE_X}, w_Br={wa:.6g} Hz, "
               f"w_Cl={wb:.6g} Hz (w_Br from the paper's mobility 1.7e-13 cm2/Vs at x_V=1e-7)")
        return cls(fn=fn, source=src, table={"model": "manning", "w_br_Hz": wa, "w_cl_Hz": wb})

    def __call__(self, c):
        return self.fn(np.asarray(c, dtype=float))

    def validate(self) -> None:
        c = np.linspace(0.0, 1.0, 101)
        try:
            out = self.fn(c)
            aa, ab, bb = (np.broadcast_to(np.asarray(v, dtype=float), c.shape) for v in out)
        except Exception as exc:  # noqa: BLE001 - report any failure of a user callable
            raise InputError("onsager", self.source, f"callable failed on a composition grid: {exc}") from exc
        if not (np.all(np.isfinite(aa)) and np.all(np.isfinite(ab)) and np.all(np.isfinite(bb))):
            raise InputError("onsager", self.source, "callable returned non-finite values")
        if np.any(aa < -1e-12 * np.abs(aa).max()) or np.any(bb < -1e-12 * np.abs(bb).max()):
            raise InputError("onsager", self.source, "diagonal coefficients must be non-negative")

    def to_dict(self) -> dict:
        c = np.linspace(0.0, 1.0, 11)
        aa, ab, bb = self(c)
        d = {"source": self.source, "sample_c": c.tolist(), "sample_l_brbr_Hz": np.asarray(aa).tolist(),
             "sample_l_brcl_Hz": np.asarray(ab).tolist(), "sample_l_clcl_Hz": np.asarray(bb).tolist()}
        if self.table is not None:
            d["input"] = self.table
        return d

    def ratios(self, c: np.ndarray):
        """Smooth ratios (p_Br, p_Cl, q) on the grid c (uniform, including 0 and 1)."""
        r = getattr(self.fn, "ratios", None)
        if r is not None:
            return tuple(np.asarray(f(c), dtype=float) for f in r)
        aa, ab, bb = (np.broadcast_to(np.asarray(v, dtype=float), c.shape) for v in self.fn(c))
        ca, cb = 1.0 - c, c
        with np.errstate(divide="ignore", invalid="ignore"):
            pbr = (aa + ab) / ca
            pcl = (bb + ab) / cb
            qq = ab / (ca * cb)
        return (_extrapolate_ends(c, pbr, False, True), _extrapolate_ends(c, pcl, True, False),
                _extrapolate_ends(c, qq, True, True))


def placeholder_w_br_Hz(temperature_K: float = T_ROOM_K, lattice_constant_A: float = 5.8,
                        coordination: int = 8, x_v: float = 1e-7,
                        mobility_cm2_per_Vs: float = PAPER_HALIDE_MOBILITY_CM2_PER_VS) -> float:
    """Jump frequency giving ``mobility`` in pure CsPbBr3: w = 6 kT mu / (e x_V z s^2)."""
    s2 = (lattice_constant_A * 1e-10) ** 2 / 2.0
    kt_e = BOLTZMANN_EV_PER_K * temperature_K
    return 6.0 * kt_e * mobility_cm2_per_Vs * 1e-4 / (x_v * coordination * s2)


@dataclass(frozen=True)
class VacancyEquilibrium:
    """Zero-field equilibrium vacancy site fraction x_V^eq(c) (interpolated in log space)."""

    fn: Callable = field(repr=False, compare=False)
    source: str = "user callable"
    table: dict | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_callable(cls, fn: Callable, source: str = "user callable") -> "VacancyEquilibrium":
        if not callable(fn):
            raise InputError("vacancy", fn, "must be callable: fn(c) -> x_V^eq")
        obj = cls(fn=fn, source=source)
        obj.validate()
        return obj

    @classmethod
    def from_table(cls, c, x_v_eq, source: str = "table") -> "VacancyEquilibrium":
        c = _as_grid("vacancy.c", c)
        v = _as_values("vacancy.x_v_eq", x_v_eq, c.size, positive=True)
        if np.any(v >= 1.0):
            raise InputError("vacancy.x_v_eq", v.tolist(), "site fractions must be < 1")
        f = _pchip(c, np.log(v))
        obj = cls(fn=lambda x: np.exp(f(x)), source=source, table={"c": c.tolist(), "x_v_eq": v.tolist()})
        return obj

    @classmethod
    def formation_energy_placeholder(cls, x_v_pure_br: float = 1e-7, formation_energy_br_eV: float = 1.32,
                                     formation_energy_cl_eV: float = 1.44,
                                     temperature_K: float = T_ROOM_K) -> "VacancyEquilibrium":
        """PLACEHOLDER: x_V^eq(c) = x_v_pure_br * exp(-(E_f(c) - E_f(0))/kT), E_f linear in c."""
        if not (0.0 < x_v_pure_br < 1.0):
            raise InputError("vacancy.x_v_pure_br", x_v_pure_br, "must lie in (0, 1)")
        for k, v in (("vacancy.formation_energy_br_eV", formation_energy_br_eV),
                     ("vacancy.formation_energy_cl_eV", formation_energy_cl_eV)):
            if not math.isfinite(float(v)):
                raise InputError(k, v, "must be finite")
        kt = BOLTZMANN_EV_PER_K * float(temperature_K)
        de = float(formation_energy_cl_eV) - float(formation_energy_br_eV)
        x0 = float(x_v_pure_br)

        def fn(c):
            return x0 * np.exp(-de * np.asarray(c, dtype=float) / kt)

        src = (f"PLACEHOLDER x_V^eq = {x0:g} exp(-(E_f(c)-E_f(0))/kT), E_f linear "
               f"{formation_energy_br_eV:g} -> {formation_energy_cl_eV:g} eV (paper ref. 21)")
        return cls(fn=fn, source=src, table={"model": "formation_energy", "x_v_pure_br": x0,
                                             "formation_energy_br_eV": float(formation_energy_br_eV),
                                             "formation_energy_cl_eV": float(formation_energy_cl_eV)})

    def __call__(self, c):
        return np.asarray(self.fn(np.asarray(c, dtype=float)), dtype=float)

    def validate(self) -> None:
        c = np.linspace(0.0, 1.0, 101)
        try:
            v = np.broadcast_to(self(c), c.shape)
        except Exception as exc:  # noqa: BLE001
            raise InputError("vacancy", self.source, f"callable failed on a composition grid: {exc}") from exc
        if not np.all((v > 0) & (v < 1)):
            raise InputError("vacancy", self.source, "x_V^eq(c) must lie in (0, 1) for all c in [0, 1]")

    def to_dict(self) -> dict:
        c = np.linspace(0.0, 1.0, 11)
        d = {"source": self.source, "sample_c": c.tolist(), "sample_x_v_eq": self(c).tolist()}
        if self.table is not None:
            d["input"] = self.table
        return d


@dataclass(frozen=True)
class ElectrodeKinetics:
    """Vacancy source at the electrode contacts.

    ``S_V = k_c (1 - x_V) - k_a x_V`` (per site per second) on every node inside an electrode
    region, with ``k(c, dV) = k0(c) * (|dV| / 1 V)**voltage_exponent``; ``dV`` is the applied
    potential difference between the two electrodes and ``c`` the local Cl fraction.

    Species split: ``S_Br = -phi_Br S_V``, ``S_Cl = -(1 - phi_Br) S_V`` with ``phi_Br`` the
    ``br_fraction`` table (e.g. the KMC's measured share of Br among the ions exchanged with the
    electrode) or, when it is None, the local ion composition ``x_Br/(x_Br + x_Cl)``.

    Overpotential: with ``transfer_coefficient`` beta set, creation carries ``exp(beta e eta/kT)``
    and annihilation ``exp(-(1 - beta) e eta/kT)``, ``eta = psi_electrode - psi(z)`` the potential
    drop between the electrode and the lattice at the node (zero wherever the contact pins the
    lattice to the electrode potential, as ``contact_mode="region"`` does); None: no such factor.

    ``c`` is a composition grid; ``k_create0_per_s`` and ``k_annihilate0_per_s`` the rates at
    |dV| = 1 V on it (interpolated in c in log space, constant beyond the grid); with
    ``voltage_exponent = 0`` they are the rates themselves at any bias.
    """

    c: tuple
    k_create0_per_s: tuple
    k_annihilate0_per_s: tuple
    voltage_exponent: float = 1.0
    source: str = "user table"
    br_fraction: tuple | None = None
    transfer_coefficient: float | None = None

    def __post_init__(self):
        c = _as_grid("electrode.c", self.c)
        kc = _as_values("electrode.k_create0_per_s", self.k_create0_per_s, c.size, positive=True)
        ka = _as_values("electrode.k_annihilate0_per_s", self.k_annihilate0_per_s, c.size, positive=True)
        n = self.voltage_exponent
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n < 0:
            raise InputError("electrode.voltage_exponent", n, "must be a finite number >= 0")
        object.__setattr__(self, "c", tuple(c.tolist()))
        object.__setattr__(self, "k_create0_per_s", tuple(kc.tolist()))
        object.__setattr__(self, "k_annihilate0_per_s", tuple(ka.tolist()))
        object.__setattr__(self, "voltage_exponent", float(n))
        if self.br_fraction is not None:
            f = _as_values("electrode.br_fraction", self.br_fraction, c.size, nonneg=True)
            if (f > 1.0).any():
                raise InputError("electrode.br_fraction", float(f.max()), "must lie in [0, 1]")
            object.__setattr__(self, "br_fraction", tuple(f.tolist()))
        b = self.transfer_coefficient
        if b is not None:
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not (0.0 <= b <= 1.0):
                raise InputError("electrode.transfer_coefficient", b, "must be a number in [0, 1] (or absent)")
            object.__setattr__(self, "transfer_coefficient", float(b))

    @classmethod
    def paper_placeholder(cls, gap_um: float = 4.0) -> "ElectrodeKinetics":
        """PLACEHOLDER: the paper's fitted source strengths, mapped onto a composition law.

        The paper writes ``r_c = r_d = alpha |dpsi| / 2`` with alpha = 1.3e-5 (forward) and
        3.8e-7 (reverse) "um V^-1 s^-1" and quotes "roughly 60 and 1.6 vacancies per 10^3 unit
        cells per hour at 1 V/um".  The units only close if ``|dpsi|`` is the field in V/um, so
        ``r = alpha E / 2`` per halide site per second: 6.5e-6 /s forward at 1 V/um, i.e. 70
        vacancies per 10^3 unit cells (3 halide sites each) per hour (paper: ~60) and 2.1 reverse
        (paper: ~1.6).  With ``E = |dV| / gap`` this is ``k0 = alpha / (2 gap_um)`` per volt,
        voltage exponent 1.  Creation and annihilation get the same rate (the paper's form).
        The polarity dependence is mapped onto composition: the forward value is the rate of a
        Br-rich contact (c = 0), the reverse value that of the Cl segment as prepared (c = 0.9);
        log-linear in between, constant beyond.  Calibrated by the paper on its +-2 V/um data.
        """
        g = float(gap_um)
        if not (g > 0 and math.isfinite(g)):
            raise InputError("geometry.gap_um", gap_um, "must be a finite positive number")
        kf = PAPER_ALPHA_FORWARD_UM_PER_VS / (2.0 * g)
        kr = PAPER_ALPHA_REVERSE_UM_PER_VS / (2.0 * g)
        src = (f"PLACEHOLDER paper source strengths alpha_fwd={PAPER_ALPHA_FORWARD_UM_PER_VS:g}, "
               f"alpha_rev={PAPER_ALPHA_REVERSE_UM_PER_VS:g} um/(V s), r = alpha E/2, gap {g:g} um, "
               "forward at c=0, reverse at c=0.9, k_annihilate = k_create")
        return cls(c=(0.0, 0.9), k_create0_per_s=(kf, kr), k_annihilate0_per_s=(kf, kr),
                   voltage_exponent=1.0, source=src)

    def log_rates(self, c):
        """(ln k_create0, ln k_annihilate0) at compositions c (|dV| = 1 V)."""
        cg = np.asarray(self.c)
        fc = _pchip(cg, np.log(np.asarray(self.k_create0_per_s)))
        fa = _pchip(cg, np.log(np.asarray(self.k_annihilate0_per_s)))
        return fc(c), fa(c)

    def voltage_factor(self, delta_V: float) -> float:
        return abs(float(delta_V)) ** self.voltage_exponent if self.voltage_exponent > 0 else 1.0

    def rates(self, c, delta_V: float):
        """(k_create, k_annihilate) in 1/s at compositions c and applied difference delta_V."""
        lc, la = self.log_rates(np.asarray(c, dtype=float))
        f = self.voltage_factor(delta_V)
        return np.exp(lc) * f, np.exp(la) * f

    def br_fraction_at(self, c):
        """The Br share of the exchanged ions at compositions c (None: the local composition)."""
        if self.br_fraction is None:
            return None
        return np.clip(_pchip(np.asarray(self.c), np.asarray(self.br_fraction))(np.asarray(c, float)), 0.0, 1.0)

    def to_dict(self) -> dict:
        d = {"c": list(self.c), "k_create0_per_s": list(self.k_create0_per_s),
             "k_annihilate0_per_s": list(self.k_annihilate0_per_s),
             "voltage_exponent": self.voltage_exponent, "source": self.source}
        if self.br_fraction is not None:
            d["br_fraction"] = list(self.br_fraction)
        if self.transfer_coefficient is not None:
            d["transfer_coefficient"] = self.transfer_coefficient
        return d


@dataclass(frozen=True)
class Tables:
    """Fine uniform-grid tabulation consumed by the kernels (c in [0, 1])."""

    dc: float
    p_br: np.ndarray
    p_cl: np.ndarray
    q: np.ndarray
    g: np.ndarray  # ln x_V^eq
    ln_kc: np.ndarray
    ln_ka: np.ndarray
    phi_br: np.ndarray  # Br share of the exchanged ions (empty: the local composition)


def tabulate(onsager: OnsagerCoefficients, vacancy: VacancyEquilibrium, electrode: ElectrodeKinetics,
             n: int = N_TABULATE) -> Tables:
    c = np.linspace(0.0, 1.0, n)
    pbr, pcl, q = onsager.ratios(c)
    xeq = vacancy(c)
    lc, la = electrode.log_rates(c)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        arrs = [np.ascontiguousarray(a, dtype=float) for a in (pbr, pcl, q, np.log(xeq), lc, la)]
    what = {"p_br": ("transport", onsager.source, "l_ij(c)"), "p_cl": ("transport", onsager.source, "l_ij(c)"),
            "q": ("transport", onsager.source, "l_ij(c)"),
            "ln_xeq": ("vacancy", vacancy.source, "x_V^eq(c) (under/overflows to 0 or inf)"),
            "ln_kc": ("electrode.k_create0_per_s", electrode.source, "the creation rate"),
            "ln_ka": ("electrode.k_annihilate0_per_s", electrode.source, "the annihilation rate")}
    for name, a in zip(("p_br", "p_cl", "q", "ln_xeq", "ln_kc", "ln_ka"), arrs):
        if not np.all(np.isfinite(a)):
            fld, src, desc = what[name]
            bad = float(c[int(np.argmax(~np.isfinite(a)))])
            raise InputError(fld, src, f"{desc} is not finite at c = {bad:g}")
    phi = electrode.br_fraction_at(c)
    phi = np.zeros(0) if phi is None else np.ascontiguousarray(phi, dtype=float)
    return Tables(1.0 / (n - 1), *arrs, phi)
