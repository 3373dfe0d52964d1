"""Multiscale consistency (issue #6): direct KMC of a nanoscale junction under bias against the
continuum device model fed by KMC-derived coefficients.

The two scales describe the same device:

* **KMC junction** — an atomistic perovskite-X wire of ``n × n × n_z`` cubic cells (periodic
  across, open along z), Br segment (low z) / Cl segment (high z) step at mid-length, two
  electrode contact regions of ``contact_cells`` cells at the ends. Electrostatics is closed
  self-consistently by a 1D mean-field Poisson solve along the wire: every halide plane (planes
  ``a/2`` apart; two per cubic cell) is a charge sheet ``σ = e (N_V − N_V^bg)/A`` with the frozen
  background ``N_V^bg`` = the initial equilibrium vacancy profile (Σ over the plane's sites of
  ``x_V^eq(c_initial)``); ψ is piecewise linear between sheets and fixed to the electrode
  potential on every plane inside a contact region, the same treatment as the continuum's
  ``contact_mode="region"`` (the free planes next to a contact couple to ψ_el at the contact edge).
  ψ is refreshed every ``refresh_events`` KMC events through
  :meth:`~halide_ionics.kmc.Simulation.set_site_potentials`; with sources on, electrode events
  (:class:`~halide_ionics.kmc.Electrode`, fixed-composition reservoirs of the contact's initial
  composition, the KMC's own prefactor k_e = w_Br, the one the coefficient table used) create and
  annihilate vacancies inside the contacts, which sit at the electrode potential (zero
  overpotential). Replicas use independent ``SeedSequence`` streams.
* **Continuum** — :func:`halide_ionics.continuum.simulate` on the same geometry (lengths in µm:
  wire ``n_z a``, electrodes ``contact_cells a``), same permittivity and vacancy level, with
  ℓ_ij(c), x_V^eq(c) and the electrode rate law (creation per ion site, annihilation per vacancy,
  at zero overpotential, ``voltage_exponent = 0``) from a KMC coefficient table computed by
  :func:`halide_ionics.coupling.coefficients.compute_table` at this vacancy level and smoothed by
  :func:`halide_ionics.coupling.reproduce.fit_table`.

Scales (documented choice). The material's vacancy level (1e-7) gives a Debye length of ~0.5 µm,
far beyond a 30–70 nm KMC wire; only dimensionless groups must match between the scales, so the
comparison uses ``x_V = 1e-2`` (pure CsPbBr3 reservoir level, μ_V from
:meth:`RateModel.reservoir_for_vacancy_fraction`) and ``ε_r = 1000``: Debye length
``λ_D = sqrt(ε kT/(e² c_s x_V)) ≈ 3 nm ≈ 5 a``, a bias of ~10 kT/e. The formation energies,
barriers and w_Cl/w_Br are the material's.

Profiles are compared on the KMC's slabs (one cubic cell each; the continuum profile is averaged
over each slab ``[k a, (k+1) a]``, KMC plane z mapped to ``z + a/4`` so that slab k covers exactly
that interval). Front: the ``x_Br = 0.55`` crossing of the slab profile (linear interpolation
between slab centres), the same estimator for both scales; the KMC front SE is the replica spread.

Pass criteria come from standard errors alone (:func:`critical_t`): every compared quantity
within the Student-t band of its replica SE at the 3σ-equivalent family-wise level (Bonferroni
over the slabs of a profile), no added lattice spacing and no fixed L2 limit; the continuum uses
the electrode law of ``reproduce``'s default mode and the KMC contacts refill with the same split.

Known lattice-scale effect (not a bug of either scale): the KMC vacancy formation energy follows
the composition of the vacancy's own 8-site shell, so on the last Br-segment plane (z-bond sites
at ``(n_z/2 − ½) a``, half of whose shell lies in the Cl segment) x_V is ~0.15 of that on the plane
before it (sources off, measured 2026-12-06; exp(−ΔE_V·0.45/kT) = 0.12 from the shell energies),
while the continuum evaluates x_V^eq at the local (sharply stepped) composition; the slab holding
that plane is reported separately (``junction_slabs_*``). Under reverse bias the missing vacancies
slow the interdiffusion across the step, and the front comparison fails at 30 s as well (README);
:func:`compare_rectification` reports the forward/reverse migration ratio and its drift and
interdiffusion parts on both scales as a diagnostic. Poisson–Boltzmann here uses the per-plane
initial composition and misses the continuum's half-step junction node as well, so it deviates in
that slab too.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from halide_ionics.errors import InputError, check_positive, check_positive_int

log = logging.getLogger(__name__)

from halide_ionics.constants import E_CHARGE_C, EPS0_F_PER_M  # noqa: E402  (one source)

FRONT_LEVEL = 0.55
BR, CL, VAC = 0, 1, 2


# ----------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ConsistencyConfig:
    """Sizes and physical choices of one consistency comparison (SI/eV/Å units in the names)."""

    cross_section_cells: int = 6
    length_cells: int = 60
    #: cells along y (None: the same as ``cross_section_cells``, a square cross-section)
    cross_section_cells_y: int | None = None
    contact_cells: int = 8
    lattice_constant_A: float = 5.8
    #: vacancy fraction of pure CsPbBr3 at the reservoir level (sets μ_V and the table's level)
    vacancy_fraction: float = 1e-2
    #: relative permittivity chosen with vacancy_fraction so that λ_D ≈ 3 nm (see module doc)
    epsilon_r: float = 1000.0
    cl_fraction_br_segment: float = 0.001
    cl_fraction_cl_segment: float = 0.9
    #: applied voltage (V) between the contacts; + = Br-side (low-z) contact positive (forward)
    bias_V: float = 0.25
    #: sources-off run: applied voltage (V). Negative (Br-side contact negative): the vacancies
    #: screen it inside the Br segment, where they equilibrate within seconds. Under the other
    #: polarity equilibrium puts them into the Cl segment (x_V^eq ~ 1e-4, w_Cl = 0.1 w_Br), which
    #: takes >~ 1e3 s and is entangled with halide mixing at the junction: no steady state at
    #: fixed composition on a KMC time scale (checked with the continuum).
    equilibrium_bias_V: float = -0.25
    #: KMC events between Poisson refreshes
    refresh_events: int = 1000
    replicas: int = 8
    #: sources off: run length and start of the time-averaging window (s)
    equilibrium_time_s: float = 30.0
    equilibrium_average_from_s: float = 8.0
    #: sources on: compared times (s)
    transient_times_s: tuple = (5.0, 15.0, 30.0)
    continuum_nodes: int = 400
    continuum_rtol: float = 1e-5
    #: coefficient-table sizes: "quick" (CoefficientConfig.quick), "full" (its defaults) or
    #: "tiny" (smoke tests only: 5 compositions, short runs)
    table_size: str = "quick"
    seed: int = 2020

    def __post_init__(self):
        for f in ("cross_section_cells", "length_cells", "contact_cells", "refresh_events", "replicas",
                  "continuum_nodes"):
            check_positive_int(f, getattr(self, f))
        if self.replicas < 2:
            raise InputError("replicas", self.replicas, "need at least 2 replicas for a standard error")
        if self.cross_section_cells < 3:
            raise InputError("cross_section_cells", self.cross_section_cells, "use at least 3 (periodic)")
        if self.cross_section_cells_y is not None:
            check_positive_int("cross_section_cells_y", self.cross_section_cells_y)
            if self.cross_section_cells_y < 3:
                raise InputError("cross_section_cells_y", self.cross_section_cells_y, "use at least 3 (periodic)")
        if 2 * self.contact_cells + 4 > self.length_cells:
            raise InputError("contact_cells", self.contact_cells, "contacts leave no gap")
        if self.length_cells % 2:
            raise InputError("length_cells", self.length_cells, "must be even (junction at mid-length)")
        if not 0 < self.vacancy_fraction < 0.05:
            raise InputError("vacancy_fraction", self.vacancy_fraction, "must lie in (0, 0.05)")
        check_positive("epsilon_r", self.epsilon_r)
        check_positive("equilibrium_time_s", self.equilibrium_time_s)
        if not 0 < self.equilibrium_average_from_s < self.equilibrium_time_s:
            raise InputError("equilibrium_average_from_s", self.equilibrium_average_from_s,
                             "must lie in (0, equilibrium_time_s)")
        ts = tuple(float(t) for t in self.transient_times_s)
        if not ts or any(t <= 0 for t in ts) or any(b <= a for a, b in zip(ts, ts[1:])):
            raise InputError("transient_times_s", self.transient_times_s, "must be increasing and > 0")
        object.__setattr__(self, "transient_times_s", ts)
        if self.table_size not in ("quick", "full", "tiny"):
            raise InputError("table_size", self.table_size, "must be 'quick', 'full' or 'tiny'")

    def replace(self, **kw) -> "ConsistencyConfig":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["transient_times_s"] = list(self.transient_times_s)
        return d

    @classmethod
    def tiny(cls) -> "ConsistencyConfig":
        """Smoke-test sizes (tests; ~30 s on one core): 3×3×32 cells, 4 replicas, tiny table."""
        return cls(cross_section_cells=3, length_cells=32, contact_cells=4, replicas=4, equilibrium_time_s=6.0,
                   equilibrium_average_from_s=2.0, transient_times_s=(3.0,), continuum_nodes=150,
                   refresh_events=500, table_size="tiny")

    @classmethod
    def quick(cls) -> "ConsistencyConfig":
        """Reduced sizes for ``--quick`` (≤ 2 min on 2 cores)."""
        return cls(cross_section_cells=4, length_cells=48, contact_cells=6, replicas=6,
                   equilibrium_time_s=12.0, equilibrium_average_from_s=4.0, transient_times_s=(4.0, 12.0),
                   continuum_nodes=300, refresh_events=1000)

    # --------------------------------------------------------------------- derived quantities
    @property
    def cells(self) -> tuple[int, int, int]:
        """(nx, ny, nz) cubic cells of the wire."""
        ny = self.cross_section_cells if self.cross_section_cells_y is None else self.cross_section_cells_y
        return (self.cross_section_cells, ny, self.length_cells)

    @property
    def a_um(self) -> float:
        return self.lattice_constant_A * 1e-4

    @property
    def wire_length_um(self) -> float:
        return self.length_cells * self.a_um

    @property
    def contact_width_um(self) -> float:
        return self.contact_cells * self.a_um

    def material(self):
        """The coupling-layer material at this comparison's vacancy level and permittivity."""
        from .materials import CSPB_BR_CL_298K

        return CSPB_BR_CL_298K.with_(vacancy_fraction_br=self.vacancy_fraction, epsilon_r=self.epsilon_r,
                                     lattice_constant_A=self.lattice_constant_A)

    def debye_length_nm(self) -> float:
        m = self.material()
        kT_J = m.kT_eV * E_CHARGE_C
        n = m.site_density_per_m3 * self.vacancy_fraction
        return math.sqrt(EPS0_F_PER_M * self.epsilon_r * kT_J / (E_CHARGE_C ** 2 * n)) * 1e9

    def table_config(self):
        from .coefficients import CoefficientConfig

        if self.table_size == "tiny":
            base = CoefficientConfig(compositions=5, onsager_cells=4, onsager_replicas=2, onsager_hops_per_replica=20_000,
                                     onsager_equilibration_hops=2_000, electrode_cells=4, electrode_replicas=2,
                                     electrode_events_per_replica=8_000)
        else:
            base = CoefficientConfig.quick() if self.table_size == "quick" else CoefficientConfig()
        return dataclasses.replace(base, electrode_kmc_vacancy_fraction=self.vacancy_fraction,
                                   overpotentials_V=(0.0,), transfer_compositions=())


# ----------------------------------------------------------------------------- coefficients
@dataclass(frozen=True)
class ContinuumTables:
    """KMC-derived continuum inputs on a composition grid (all from the coefficient table)."""

    c: np.ndarray
    l_brbr_Hz: np.ndarray
    l_brcl_Hz: np.ndarray
    l_clcl_Hz: np.ndarray
    x_v_eq: np.ndarray
    k_create0_per_s: np.ndarray
    k_annihilate0_per_s: np.ndarray
    electrode_rate_Hz: float
    info: dict = field(default_factory=dict)
    #: the KMC electrode law's Br share of the exchanged ions and its transfer coefficient (the
    #: law of ``reproduce``'s default mode, :func:`halide_ionics.coupling.electrode.kmc_law`)
    br_fraction: np.ndarray | None = None
    transfer_coefficient: float | None = None

    def vacancy(self):
        from halide_ionics.continuum import VacancyEquilibrium

        return VacancyEquilibrium.from_table(self.c, self.x_v_eq, source="KMC table (consistency)")

    def onsager(self):
        from halide_ionics.continuum import OnsagerCoefficients

        return OnsagerCoefficients.from_table(self.c, self.l_brbr_Hz, self.l_brcl_Hz, self.l_clcl_Hz,
                                              source="KMC table (consistency)")

    def electrode(self):
        from halide_ionics.continuum import ElectrodeKinetics

        return ElectrodeKinetics(c=tuple(self.c), k_create0_per_s=tuple(self.k_create0_per_s),
                                 k_annihilate0_per_s=tuple(self.k_annihilate0_per_s), voltage_exponent=0.0,
                                 br_fraction=None if self.br_fraction is None else tuple(self.br_fraction),
                                 transfer_coefficient=self.transfer_coefficient,
                                 source="KMC electrode law (consistency; as reproduce's default mode)")

    def refill_cl_fraction(self, c: float) -> float:
        """Cl share of the ions the electrode puts back at a contact of composition c: the law's
        split, so that the KMC contacts exchange the same species mix as the continuum's."""
        if self.br_fraction is None:
            return float(c)
        return float(1.0 - np.interp(c, self.c, self.br_fraction))

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dataclasses.asdict(self).items()}


def continuum_tables(table, cfg: ConsistencyConfig, n_grid: int = 41) -> ContinuumTables:
    """ℓ_ij(c), x_V^eq(c) and the electrode law from a KMC table: the law of ``reproduce``'s default
    mode (:func:`halide_ionics.coupling.electrode.kmc_law`: creation per ion site from the KMC,
    annihilation from detailed balance, the KMC's species split and transfer coefficient) at this
    comparison's vacancy level."""
    from .bridge import fit_table
    from .coefficients import kmc_rate_model
    from .electrode import kmc_law

    mat = cfg.material()
    fits = fit_table(table, mat)
    grid = np.linspace(0.0, 1.0, n_grid)
    bb, bc, cc = fits.onsager(grid)
    scale = cfg.vacancy_fraction / float(np.ravel(fits.x_v_eq(np.array([0.0])))[0])

    def x_eq(c):
        return fits.x_v_eq(c) * scale  # absolute level: the KMC reservoir's pure-Br vacancy fraction

    law = kmc_law(fits.creation_br, fits.creation_cl, x_eq, grid, fits.beta, fits.kmc_odds0, fits.material_odds0)
    ke = kmc_rate_model(mat).hop_rate_Hz(0)
    w_attr = float(table.attrs.get("w_br_Hz", ke))
    if not np.isclose(ke, w_attr, rtol=1e-9):
        raise InputError("table", w_attr, f"table was computed for another material (w_Br {ke:g} Hz)")
    # the KMC's own annihilation rates against the detailed-balance ones the law uses (diagnostic)
    j0 = int(np.argmin(np.abs(table.overpotential.values)))
    an = np.asarray(table.annihilation_rate.values[:, j0], float)
    ka_tab = np.interp(table.composition.values, grid, law.annihilation_Hz)
    ok = np.isfinite(an) & (an > 0)
    info = {"x_v_eq_fit_scale": scale, "level_shift": law.level_shift, "transfer_coefficient": law.beta,
            "kmc_annihilation_rel_dev_max": float(np.max(np.abs(an[ok] / ka_tab[ok] - 1.0))) if ok.any() else None,
            "table_key_seed": int(table.attrs.get("seed", -1))}
    return ContinuumTables(grid, np.maximum(bb, 0.0), bc, np.maximum(cc, 0.0), x_eq(grid), law.creation_Hz,
                           law.annihilation_Hz, ke, info, law.br_fraction, law.beta)


def coefficient_table(cfg: ConsistencyConfig, workers: int = 1, cache_dir=None, executor=None):
    from .coefficients import compute_table

    return compute_table(cfg.material(), cfg.table_config(), seed=cfg.seed, workers=workers, executor=executor,
                         cache_dir=cache_dir)


# ----------------------------------------------------------------------------- KMC wire
class WirePoisson:
    """1D mean-field Poisson along the wire on the halide planes (module docstring).

    ``solve(n_vac_per_plane)`` returns ψ (V) on every plane; contact planes hold the electrode
    potentials ``+V/2`` (low z) and ``−V/2`` (high z).
    """

    def __init__(self, cfg: ConsistencyConfig, bias_V: float, background_per_plane: np.ndarray):
        a = cfg.lattice_constant_A
        npl = 2 * cfg.length_cells
        self.z_A = (np.arange(npl) + 0.5) * a / 2.0  # plane positions, shifted by a/4
        w = cfg.contact_cells * a
        L = cfg.length_cells * a
        self.low = self.z_A < w
        self.high = self.z_A > L - w
        self.free = ~(self.low | self.high)
        self.bias_V = float(bias_V)
        self.bg = np.asarray(background_per_plane, float)
        nx, ny, _ = cfg.cells
        area_m2 = (nx * a * 1e-10) * (ny * a * 1e-10)
        eps = EPS0_F_PER_M * cfg.epsilon_r
        self.q_scale = E_CHARGE_C / area_m2 / eps  # V/m per vacancy of sheet charge
        zf = self.z_A[self.free] * 1e-10
        nodes = np.concatenate([[w * 1e-10], zf, [(L - w) * 1e-10]])
        d = np.diff(nodes)
        n = zf.size
        M = np.zeros((n, n))
        for i in range(n):
            M[i, i] = -(1.0 / d[i] + 1.0 / d[i + 1])
            if i > 0:
                M[i, i - 1] = 1.0 / d[i]
            if i < n - 1:
                M[i, i + 1] = 1.0 / d[i + 1]
        self.Minv = np.linalg.inv(M)
        bnd = np.zeros(n)
        bnd[0] -= 0.5 * self.bias_V / d[0]
        bnd[-1] -= -0.5 * self.bias_V / d[-1]
        self.psi_bnd = self.Minv @ bnd

    def solve(self, n_vac_per_plane: np.ndarray) -> np.ndarray:
        sigma = (np.asarray(n_vac_per_plane, float) - self.bg)[self.free] * self.q_scale
        psi = np.empty(self.z_A.size)
        psi[self.low] = 0.5 * self.bias_V
        psi[self.high] = -0.5 * self.bias_V
        psi[self.free] = self.psi_bnd + self.Minv @ (-sigma)
        return psi


def _wire(cfg: ConsistencyConfig):
    from halide_ionics.structures import build_lattice

    g = build_lattice("perovskite-x", cfg.cells, cfg.lattice_constant_A, periodic_z=False)
    plane = np.rint(g.z_A / (cfg.lattice_constant_A / 2.0)).astype(np.int64)
    return g, plane


def _initial_occupancy(cfg: ConsistencyConfig, g, x_eq_fn, rng: np.random.Generator):
    """Exact segment compositions at random positions; vacancies: Σ x_V^eq of them rounded up or
    down at random (so the replica mean equals the background's total: neutral on average, as the
    continuum), placed without replacement with probability ∝ x_V^eq(c_segment)."""
    slab = g.slab_index()
    low = slab < cfg.length_cells // 2
    occ = np.full(g.n_sites, BR, dtype=np.int8)
    c_site = np.where(low, cfg.cl_fraction_br_segment, cfg.cl_fraction_cl_segment)
    for seg, c in ((low, cfg.cl_fraction_br_segment), (~low, cfg.cl_fraction_cl_segment)):
        idx = np.flatnonzero(seg)
        ncl = int(round(c * idx.size))
        occ[rng.choice(idx, ncl, replace=False)] = CL
    xbg = np.asarray(x_eq_fn(c_site), float)
    total = float(xbg.sum())
    nv = int(math.floor(total)) + int(rng.random() < total - math.floor(total))  # unbiased rounding
    vac = rng.choice(g.n_sites, nv, replace=False, p=xbg / xbg.sum())
    occ[vac] = VAC
    return occ, xbg


def _slab_fractions(occ, slab, nslab, sites):
    return np.stack([np.bincount(slab, weights=(occ == s), minlength=nslab) / sites for s in (BR, CL, VAC)])


class JunctionWire:
    """One KMC junction under bias (module docstring): the wire, its initial occupancy, the
    mean-field Poisson solver, the electrode contacts and the :class:`~halide_ionics.kmc.Simulation`,
    advanced in refresh intervals. Shared by :func:`run_replica` and
    :func:`halide_ionics.coupling.junction.run_junction`.

    ``x_eq_fn(c)``: equilibrium vacancy fraction of composition c (the initial vacancies and the
    frozen background charge); ``electrode_rate_Hz``: the electrode prefactor k_e.
    """

    def __init__(self, cfg: ConsistencyConfig, x_eq_fn, electrode_rate_Hz: float, *, sources: bool, bias_V: float,
                 rng: np.random.Generator, refill_cl_fraction=None):
        from halide_ionics.kmc import Electrode, Simulation

        from .coefficients import kmc_rate_model

        self.cfg = cfg
        g, plane = _wire(cfg)
        occ, xbg = _initial_occupancy(cfg, g, x_eq_fn, rng)
        npl = 2 * cfg.length_cells
        bg_plane = np.bincount(plane, weights=xbg, minlength=npl)
        V = float(bias_V)
        self.poisson = WirePoisson(cfg, V, bg_plane)
        rm = kmc_rate_model(cfg.material()).reservoir_for_vacancy_fraction(cfg.vacancy_fraction, "Br")
        slab = g.slab_index()
        electrodes = []
        if sources:
            nc = cfg.contact_cells
            refill = refill_cl_fraction or (lambda c: c)  # Cl share put back at a contact of composition c
            electrodes = [
                Electrode(slab < nc, 0.5 * V, electrode_rate_Hz, "low",
                          cl_fraction=refill(cfg.cl_fraction_br_segment)),
                Electrode(slab >= cfg.length_cells - nc, -0.5 * V, electrode_rate_Hz, "high",
                          cl_fraction=refill(cfg.cl_fraction_cl_segment)),
            ]
        psi0 = self.poisson.solve(np.bincount(plane, weights=(occ == VAC), minlength=npl))
        self.sim = Simulation(g, occ, rm, rng, site_potentials_V=psi0[plane], electrodes=electrodes)
        self.graph, self.plane, self.slab, self.n_planes = g, plane, slab, npl
        self.n_slabs = cfg.length_cells
        self.slab_sites = np.bincount(slab, minlength=self.n_slabs).astype(float)
        self.psi = psi0
        self.refreshes = 0
        self.electrodes = electrodes

    def slab_fractions(self, occ=None) -> np.ndarray:
        """(3, n_slabs) site fractions of Br, Cl and vacancies per cubic-cell slab."""
        return _slab_fractions(self.sim.occupancy if occ is None else occ, self.slab, self.n_slabs, self.slab_sites)

    def advance(self, t_next: float, refresh_events: int, after_refresh=None) -> str:
        """Run to ``t_next`` (s), solving Poisson and updating the site potentials every
        ``refresh_events`` events; ``after_refresh(vacancy_sites, psi)`` is called after each refresh."""
        sim = self.sim
        while True:
            dt = t_next - sim.time_s
            reason = sim.run(hops=refresh_events, time_s=dt) if dt > 0 else "time"
            vac = sim.vacancy_sites
            nv_plane = np.bincount(self.plane[vac], minlength=self.n_planes)  # vacancies per plane
            psi = self.poisson.solve(nv_plane)
            sim.set_site_potentials(psi[self.plane])
            self.psi = psi
            self.refreshes += 1
            if after_refresh is not None:
                after_refresh(vac, psi)
            if reason != "hops":
                break
        if reason == "no-events":
            raise RuntimeError("KMC wire ran out of events")
        return reason


def run_replica(task: dict) -> dict:
    """One KMC junction replica (module level: picklable for process pools).

    task: ``config`` (ConsistencyConfig dict), ``tables`` (ContinuumTables dict), ``sources``,
    ``bias_V``, ``times_s`` (record times), ``average_from_s`` (or None), ``refresh_events``,
    ``seed_seq``.
    """
    from halide_ionics.continuum import VacancyEquilibrium

    d = dict(task["config"])
    d["transient_times_s"] = tuple(d["transient_times_s"])
    cfg = ConsistencyConfig(**d)
    tab = task["tables"]
    x_eq = VacancyEquilibrium.from_table(tab["c"], tab["x_v_eq"])
    rng = np.random.default_rng(task["seed_seq"])
    tables = ContinuumTables(**{k: (np.asarray(v) if isinstance(v, list) else v) for k, v in tab.items()})
    wire = JunctionWire(cfg, x_eq, tab["electrode_rate_Hz"], sources=task["sources"], bias_V=task["bias_V"], rng=rng,
                        refill_cl_fraction=tables.refill_cl_fraction)
    sim, slab, plane = wire.sim, wire.slab, wire.plane
    npl, nslab, sites = wire.n_planes, wire.n_slabs, wire.slab_sites
    times = [float(t) for t in task["times_s"]]
    t_avg = task.get("average_from_s")
    if t_avg is not None:
        times = sorted(set(times) | {float(t_avg)})
    n_ref = int(task["refresh_events"])
    prof = [wire.slab_fractions()]
    psi_rec = [wire.psi]
    rec_t = [0.0]
    acc = {"res0": None, "counts": np.zeros(nslab), "psi_sum": np.zeros(npl), "psi_n": 0}

    def after_refresh(vac, psi):
        if acc["res0"] is not None:
            acc["counts"] += np.bincount(slab[vac], minlength=nslab)
            acc["psi_sum"] += psi
            acc["psi_n"] += 1

    wall0 = time.perf_counter()
    for t_next in times:
        wire.advance(t_next, n_ref, after_refresh)
        if t_avg is not None and t_next == float(t_avg):
            acc["res0"] = (sim.time_s, sim.vacancy_residence_s())
        if t_next in task["times_s"]:
            prof.append(wire.slab_fractions())
            psi_rec.append(wire.psi)
            rec_t.append(sim.time_s)
    out = {"times_s": np.array(rec_t), "fractions": np.stack(prof), "psi_plane_V": np.stack(psi_rec),
           "steps": sim.steps, "hops": sim.hops, "refreshes": wire.refreshes,
           "wall_seconds": time.perf_counter() - wall0,
           "electrode_counts": sim.electrode_counts if wire.electrodes else np.zeros((0, 2, 2)),
           "n_vacancies_end": sim.n_vacancies, "n_vacancies_start": int((prof[0][2] * sites).sum().round())}
    res0 = acc["res0"]
    if res0 is not None:
        t1, r1 = sim.time_s, sim.vacancy_residence_s()
        out["x_v_time_avg"] = np.bincount(slab, weights=r1 - res0[1], minlength=nslab) / (sites * (t1 - res0[0]))
        out["x_v_plane_time_avg"] = np.bincount(plane, weights=r1 - res0[1], minlength=npl) / (
            np.bincount(plane, minlength=npl) * (t1 - res0[0]))
        out["vacancy_counts"] = acc["counts"]
        out["psi_time_avg_V"] = acc["psi_sum"] / max(acc["psi_n"], 1)
    return out


def kmc_tasks(cfg: ConsistencyConfig, tables: ContinuumTables, *, sources: bool, bias_V: float, times_s,
              average_from_s=None, refresh_events: int | None = None, spawn_key=(0,)) -> list:
    """The :func:`run_replica` tasks of one KMC case (one ``SeedSequence`` stream per replica)."""
    root = np.random.SeedSequence(cfg.seed, spawn_key=tuple(spawn_key))
    return [dict(config=cfg.to_dict(), tables=tables.to_dict(), sources=bool(sources), bias_V=float(bias_V),
                 times_s=[float(t) for t in times_s], average_from_s=average_from_s,
                 refresh_events=int(refresh_events or cfg.refresh_events), seed_seq=ss)
            for ss in root.spawn(cfg.replicas)]


def run_kmc(cfg: ConsistencyConfig, tables: ContinuumTables, *, sources: bool, bias_V: float, times_s,
            average_from_s=None, refresh_events: int | None = None, spawn_key=(0,), executor=None) -> dict:
    """Replicas of the KMC junction; replica-averaged slab profiles with standard errors."""
    tasks = kmc_tasks(cfg, tables, sources=sources, bias_V=bias_V, times_s=times_s, average_from_s=average_from_s,
                      refresh_events=refresh_events, spawn_key=spawn_key)
    t0 = time.perf_counter()
    res = list(executor.map(run_replica, tasks)) if executor is not None else [run_replica(t) for t in tasks]
    return collect_kmc(cfg, res, sources=sources, bias_V=bias_V, average_from_s=average_from_s,
                       refresh_events=refresh_events, wall=time.perf_counter() - t0)


def collect_kmc(cfg: ConsistencyConfig, res: list, *, sources: bool, bias_V: float, average_from_s=None,
                refresh_events: int | None = None, wall: float = float("nan")) -> dict:
    """Replica-averaged slab profiles with standard errors from the :func:`run_replica` results
    (``wall``: the case's elapsed seconds; :func:`run_consistency`, which runs every case in one
    batch, passes the sum of its replicas' seconds)."""
    log.info("KMC junction: %d replicas, sources=%s, V=%+.3g V, refresh %d events, %d cells across: %.1f s",
             len(res), sources, bias_V, int(refresh_events or cfg.refresh_events), cfg.cross_section_cells, wall)
    R = len(res)
    fr = np.stack([r["fractions"] for r in res])  # (R, T, 3, nslab)
    out = {"times_s": res[0]["times_s"], "fractions_mean": fr.mean(0), "fractions_se": fr.std(0, ddof=1) / math.sqrt(R),
           "fractions_replicas": fr,
           "psi_plane_V_mean": np.stack([r["psi_plane_V"] for r in res]).mean(0),
           "steps": int(sum(r["steps"] for r in res)), "refreshes": int(sum(r["refreshes"] for r in res)),
           "wall_seconds": wall, "replica_wall_seconds": [r["wall_seconds"] for r in res], "replicas": R,
           "refresh_events": int(refresh_events or cfg.refresh_events), "sources": bool(sources),
           "bias_V": float(bias_V)}
    if sources:
        out["electrode_counts"] = np.stack([r["electrode_counts"] for r in res]).sum(0)
    if average_from_s is not None:
        xv = np.stack([r["x_v_time_avg"] for r in res])
        out["x_v_avg_mean"] = xv.mean(0)
        out["x_v_avg_se"] = xv.std(0, ddof=1) / math.sqrt(R)
        out["vacancy_counts"] = np.stack([r["vacancy_counts"] for r in res]).sum(0)
        xp = np.stack([r["x_v_plane_time_avg"] for r in res])
        out["x_v_plane_avg_mean"], out["x_v_plane_avg_se"] = xp.mean(0), xp.std(0, ddof=1) / math.sqrt(R)
        out["psi_avg_V"] = np.stack([r["psi_time_avg_V"] for r in res]).mean(0)
    # fronts per replica → mean ± SE
    fronts = np.array([[front_position(f[0], cfg.lattice_constant_A) for f in rep] for rep in fr])  # (R, T)
    out["front_A_replicas"] = fronts
    out["front_A_mean"] = np.nanmean(fronts, 0)
    out["front_A_se"] = np.nanstd(fronts, 0, ddof=1) / math.sqrt(R)
    return out


# ----------------------------------------------------------------------------- observables
def front_position(x_br_slab: np.ndarray, a_A: float, level: float = FRONT_LEVEL) -> float:
    """z (Å) where the slab profile of x_Br last crosses ``level`` going up the wire (slab centres
    at (k + ½) a; linear interpolation). NaN if it never crosses."""
    x = np.asarray(x_br_slab, float)
    above = np.flatnonzero(x >= level)
    if above.size == 0:
        return float("nan")
    k = int(above[-1])
    if k == x.size - 1:
        return float("nan")
    x0, x1 = x[k], x[k + 1]
    frac = (x0 - level) / (x0 - x1) if x0 != x1 else 0.5
    return float((k + 0.5 + frac) * a_A)


def slab_average(z_um: np.ndarray, values: np.ndarray, cfg: ConsistencyConfig, sub: int = 40) -> np.ndarray:
    """Average of the piecewise-linear continuum profile over each KMC slab ``[k a, (k+1) a]``."""
    a = cfg.a_um
    k = np.arange(cfg.length_cells)[:, None]
    zz = (k + (np.arange(sub)[None, :] + 0.5) / sub) * a
    v = np.asarray(values)
    if v.ndim == 1:
        return np.interp(zz, z_um, v).mean(1)
    return np.stack([np.interp(zz, z_um, vi).mean(1) for vi in v])


def poisson_boltzmann(cfg: ConsistencyConfig, tables: ContinuumTables, bias_V: float, n_vacancies: float | None = None,
                      tol: float = 1e-12, max_iter: int = 200) -> dict:
    """Equilibrium (sources off) on the KMC's planes: x_V/(1 − x_V) = A · odds_eq(c) · e^{−eψ/kT}
    at the initial composition, total vacancy number conserved (default: the background's), the
    same sheet-charge Poisson and contacts as :class:`WirePoisson`. Newton in (ψ_free, ln A)."""
    from halide_ionics.continuum import VacancyEquilibrium

    g, plane = _wire(cfg)
    slab = g.slab_index()
    npl = 2 * cfg.length_cells
    c_site = np.where(slab < cfg.length_cells // 2, cfg.cl_fraction_br_segment, cfg.cl_fraction_cl_segment)
    xeq = VacancyEquilibrium.from_table(tables.c, tables.x_v_eq)(c_site)
    bg = np.bincount(plane, weights=xeq, minlength=npl)
    nsite = np.bincount(plane, minlength=npl).astype(float)
    odds_p = np.bincount(plane, weights=xeq / (1 - xeq), minlength=npl) / nsite
    P = WirePoisson(cfg, bias_V, bg)
    kT = cfg.material().kT_eV
    N = float(bg.sum()) if n_vacancies is None else float(n_vacancies)
    psi = P.solve(bg)
    lnA = 0.0
    fr = P.free
    M = np.linalg.inv(P.Minv)
    for _ in range(max_iter):
        y = np.exp(lnA) * odds_p * np.exp(-psi / kT)
        n = nsite * y / (1 + y)
        dn = nsite * y / (1 + y) ** 2  # dn/d(ln y)
        # residuals: M psi_f - [Minv^-1 psi_bnd] + q_scale (n - bg)_f = 0 ; sum n - N = 0
        r1 = M @ (psi[fr] - P.psi_bnd) + P.q_scale * (n - bg)[fr]
        r2 = n.sum() - N
        nf = int(fr.sum())
        J = np.zeros((nf + 1, nf + 1))
        J[:nf, :nf] = M - np.diag(P.q_scale * dn[fr] / kT)
        J[:nf, nf] = P.q_scale * dn[fr]
        J[nf, :nf] = -dn[fr] / kT
        J[nf, nf] = dn.sum()
        step = np.linalg.solve(J, -np.concatenate([r1, [r2]]))
        psi[fr] += step[:nf]
        lnA += step[nf]
        if np.max(np.abs(step[:nf])) < tol * max(1.0, abs(bias_V)) and abs(step[nf]) < 1e-12:
            break
    y = np.exp(lnA) * odds_p * np.exp(-psi / kT)
    n = nsite * y / (1 + y)
    x_slab = np.bincount(np.arange(npl) // 2, weights=n, minlength=cfg.length_cells) / \
        np.bincount(np.arange(npl) // 2, weights=nsite, minlength=cfg.length_cells)
    return {"x_v_slab": x_slab, "psi_plane_V": psi, "n_vacancies": float(n.sum())}


# ----------------------------------------------------------------------------- continuum
def continuum_config(cfg: ConsistencyConfig, tables: ContinuumTables, *, sources: bool, bias_V: float, times_s):
    from halide_ionics.continuum import (BiasSchedule, DeviceConfig, Geometry, InitialState, Material,
                                         SolverOptions)

    mat = cfg.material()
    L, w = cfg.wire_length_um, cfg.contact_width_um
    times = sorted(set([0.0] + [float(t) for t in times_s]))
    return DeviceConfig(
        geometry=Geometry(wire_length_um=L, electrode_width_um=w, gap_um=L - 2 * w, junction_offset_um=0.0),
        material=Material(temperature_K=mat.temperature_K, lattice_constant_A=cfg.lattice_constant_A, coordination=8,
                          permittivity_rel=cfg.epsilon_r),
        initial=InitialState(cl_fraction_br_segment=cfg.cl_fraction_br_segment,
                             cl_fraction_cl_segment=cfg.cl_fraction_cl_segment, junction_width_um=0.0),
        onsager=tables.onsager(), vacancy=tables.vacancy(), electrode=tables.electrode(), sources=bool(sources),
        bias=BiasSchedule(steps=((0.0, float(bias_V)),), duration_s=max(times) * 1.0000001),
        solver=SolverOptions(nodes=cfg.continuum_nodes, rtol=cfg.continuum_rtol, contact_mode="region",
                             output_times_s=tuple(times), grading_ratio=4.0),
    )


def run_continuum(cfg: ConsistencyConfig, tables: ContinuumTables, *, sources: bool, bias_V: float, times_s) -> dict:
    from halide_ionics.continuum import simulate

    r = simulate(continuum_config(cfg, tables, sources=sources, bias_V=bias_V, times_s=times_s))
    if r.status != "ok":
        log.warning("continuum run ended with status %s: %s", r.status, r.message)
    z = r.mesh.z_um
    fr = np.stack([slab_average(z, np.stack([r.x_br[i], r.x_cl[i], r.x_v[i]]), cfg) for i in range(len(r.times_s))])
    fronts = np.array([front_position(f[0], cfg.lattice_constant_A) for f in fr])
    return {"times_s": np.asarray(r.times_s), "fractions": fr, "front_A": fronts, "z_um": z, "x_br": r.x_br,
            "x_cl": r.x_cl, "x_v": r.x_v, "psi_V": r.psi_V, "status": r.status, "wall_seconds": r.wall_seconds,
            "front_um_native": np.asarray(r.front_um)}


# ----------------------------------------------------------------------------- metrics
def composition(fr: np.ndarray) -> np.ndarray:
    """c = x_Cl/(x_Br + x_Cl) from fractions [..., 3, nslab]."""
    ion = fr[..., 0, :] + fr[..., 1, :]
    return np.where(ion > 0, fr[..., 1, :] / np.maximum(ion, 1e-300), np.nan)


#: family-wise two-sided tail of every pass criterion (the normal 3σ tail)
TAIL_3SIGMA = 0.0027


def wider_cross_section(cfg: ConsistencyConfig, extra_cells: int = 2) -> ConsistencyConfig:
    """The cross-section sensitivity run: ``extra_cells`` more cells across (both directions)
    and the fewest replicas whose replica-mean SE is no larger than the base run's.

    A slab fraction averages over the slab's sites, and sites a few cells apart across the wire
    are independent (the Poisson field is 1D), so a replica's variance scales as 1/area: with
    ``R' = ceil(R · A/A')`` replicas the wider run's SE is at most the base one (6 → 8 cells:
    8 → 5 replicas, 5·64 ≥ 8·36), at 5/8 of the cost of ``R`` wide replicas. The JSON reports the
    SEs that the comparison used."""
    nx, ny, _ = cfg.cells
    area = nx * ny
    wider = cfg.replace(cross_section_cells=cfg.cross_section_cells + extra_cells,
                        cross_section_cells_y=None if cfg.cross_section_cells_y is None
                        else cfg.cross_section_cells_y + extra_cells)
    wx, wy, _ = wider.cells
    return wider.replace(replicas=max(2, math.ceil(cfg.replicas * area / (wx * wy))))


def critical_t(replicas: int, comparisons: int = 1) -> float:
    """Student-t critical value for the replica mean of ``replicas`` runs at the 3σ-equivalent
    family-wise level over ``comparisons`` tests (Bonferroni): tolerances from standard errors
    alone, with the small-sample width of an SE estimated from few replicas."""
    from scipy.stats import t as student_t

    return float(student_t.isf(TAIL_3SIGMA / (2.0 * max(int(comparisons), 1)), max(int(replicas) - 1, 1)))


def compare_equilibrium(cfg, kmc: dict, cont: dict, pb: dict, min_counts: int = 100) -> dict:
    """Sources off: time-averaged KMC x_V per slab against the continuum over the same window and PB;
    pass when every counted slab lies within the Bonferroni 3σ-equivalent Student-t band of its SE
    (:func:`critical_t`)."""
    t = cont["times_s"]
    win = t >= cfg.equilibrium_average_from_s - 1e-9
    xv_c = cont["fractions"][win, 2, :].mean(0)
    m, se = kmc["x_v_avg_mean"], kmc["x_v_avg_se"]
    ok = kmc["vacancy_counts"] >= min_counts
    se_safe = np.where(se > 0, se, np.nan)
    z_c = (m - xv_c) / se_safe
    z_pb = (m - pb["x_v_slab"]) / se_safe
    zc, zp = np.abs(z_c[ok]), np.abs(z_pb[ok])
    # diagnostics (not part of the pass criterion): the two slabs at the junction, where the
    # composition changes inside a vacancy's neighbour shell (lattice-scale E_V(shell) effect)
    half = cfg.length_cells // 2
    interior = ok.copy()
    interior[half - 1:half + 1] = False
    drift = cont["fractions"][win, 2, :]
    crit = critical_t(kmc["replicas"], int(ok.sum()))
    return {
        "max_abs_z_continuum_excluding_junction_slabs": float(np.nanmax(np.abs(z_c[interior]))) if interior.any() else None,
        "junction_slabs_z_continuum": z_c[half - 1:half + 1].tolist(),
        "junction_slabs_ratio_kmc_to_continuum": (m[half - 1:half + 1] / xv_c[half - 1:half + 1]).tolist(),
        "continuum_window_max_rel_change": float(np.max(np.abs(drift[-1] - drift[0])[ok] / np.maximum(drift[-1][ok], 1e-300))),
        "pass_pb": bool(zp.size and np.all(zp <= crit)), "critical_t": crit,
        "bins_compared": int(ok.sum()), "bins_total": int(ok.size), "min_counts": min_counts,
        "z_continuum": z_c.tolist(), "z_pb": z_pb.tolist(), "counts": kmc["vacancy_counts"].tolist(),
        "max_abs_z_continuum": float(np.nanmax(zc)) if zc.size else float("nan"),
        "max_abs_z_pb": float(np.nanmax(zp)) if zp.size else float("nan"),
        "rms_z_continuum": float(np.sqrt(np.nanmean(zc ** 2))) if zc.size else float("nan"),
        "rms_z_pb": float(np.sqrt(np.nanmean(zp ** 2))) if zp.size else float("nan"),
        "bins_over_3se_continuum": int(np.sum(zc > 3)), "bins_over_3se_pb": int(np.sum(zp > 3)),
        "pass": bool(zc.size and np.all(zc <= crit)),
        "kmc_x_v": m.tolist(), "kmc_x_v_se": se.tolist(), "continuum_x_v": xv_c.tolist(), "pb_x_v": pb["x_v_slab"].tolist(),
    }


def compare_transient(cfg, kmc: dict, cont: dict) -> dict:
    """Sources on: fronts and composition profiles at every compared time (t > 0).

    Pass criteria from standard errors alone: the front difference within ``t·SE`` of the KMC
    front (``t`` the 3σ-equivalent Student-t value for the replica count), and every slab's
    composition within its Bonferroni ``t·SE`` (the slab SE floored at one site's worth of
    composition per replica, ``1/(n_ion sites · √R)``, where all replicas agree exactly)."""
    R = kmc["replicas"]
    step = abs(cfg.cl_fraction_cl_segment - cfg.cl_fraction_br_segment)
    nx, ny, _ = cfg.cells
    floor = 1.0 / (3.0 * nx * ny * math.sqrt(R))
    rows = []
    ok_all = True
    for i, t in enumerate(kmc["times_s"]):
        if i == 0:
            continue
        j = int(np.argmin(np.abs(cont["times_s"] - t)))
        ck = composition(kmc["fractions_mean"][i])
        cc = composition(cont["fractions"][j])
        cse = composition(kmc["fractions_replicas"][:, i]).std(0, ddof=1) / math.sqrt(R)
        cse = np.maximum(np.nan_to_num(cse, nan=0.0), floor)
        l2 = float(np.sqrt(np.nanmean((ck - cc) ** 2)) / step)
        fk, fse, fc = kmc["front_A_mean"][i], kmc["front_A_se"][i], cont["front_A"][j]
        f0k, f0c = kmc["front_A_mean"][0], cont["front_A"][0]
        t_front = critical_t(R)
        tol = t_front * fse
        zc = (ck - cc) / cse
        finite = np.isfinite(zc)
        t_comp = critical_t(R, int(finite.sum()))
        zmax = float(np.nanmax(np.abs(zc))) if finite.any() else float("nan")
        ok = bool(abs(fk - fc) <= tol and finite.any() and zmax <= t_comp)
        # diagnostics (not part of the pass criterion): the two slabs at the junction, where a
        # vacancy's formation energy follows its own 8-site shell in the KMC (module docstring)
        half = cfg.length_cells // 2
        inner = finite.copy()
        inner[half - 1:half + 1] = False
        ok_all &= ok
        rows.append({"time_s": float(t), "front_kmc_A": float(fk), "front_kmc_se_A": float(fse),
                     "front_continuum_A": float(fc), "front_diff_A": float(fk - fc), "front_tolerance_A": float(tol),
                     "front_z": float((fk - fc) / fse) if fse > 0 else float("nan"), "critical_t_front": t_front,
                     "migration_kmc_A": float(fk - f0k), "migration_continuum_A": float(fc - f0c),
                     "l2_rel_step": l2, "max_abs_z_composition": zmax, "critical_t_composition": t_comp,
                     "junction_slabs_z_composition": zc[half - 1:half + 1].tolist(),
                     "max_abs_z_composition_excluding_junction_slabs":
                         float(np.max(np.abs(zc[inner]))) if inner.any() else float("nan"),
                     "kmc_x_v_gap_mean": float(np.mean(kmc["fractions_mean"][i][2])),
                     "continuum_x_v_gap_mean": float(np.mean(cont["fractions"][j][2])),
                     "pass": ok})
    return {"times": rows, "pass": bool(ok_all)}


def compare_rectification(kmc_fwd: dict, kmc_rev: dict, cont_fwd: dict, cont_rev: dict) -> dict:
    """The junction's rectification on both scales (a diagnostic beside the pass criteria, which
    already compare each front with its SE): at every compared time the front's migration since
    t = 0 under forward and under reverse bias, their ratio, and the bias-odd (drift, ``(M_f −
    M_r)/2``) and bias-even (``(M_f + M_r)/2``: interdiffusion at the junction) parts.

    KMC migrations are per-replica differences ``front(t) − front(0)`` (replicas independent,
    forward and reverse sets independent), so their SEs are the replica spreads; the ratio's SE is
    the first-order (delta-method) propagation, reported only where the reverse migration is
    resolved (≥ 3 SE from zero: otherwise the ratio has no finite SE and ``ratio_kmc`` is None).
    ``ratio_z``, ``drift_z`` and ``interdiffusion_z``: (KMC − continuum)/SE, to be read against
    ``critical_t`` of the replica count (the front criterion's level)."""
    rows = []
    tf, tr = np.asarray(kmc_fwd["times_s"], float), np.asarray(kmc_rev["times_s"], float)
    if tf.shape != tr.shape or not np.allclose(tf, tr):
        raise InputError("kmc_rev.times_s", tr.tolist(), f"must equal the forward run's times {tf.tolist()}")

    def kmc_mig(k, i):
        m = k["front_A_replicas"][:, i] - k["front_A_replicas"][:, 0]
        m = m[np.isfinite(m)]
        if m.size < 2:
            return float("nan"), float("nan")
        return float(m.mean()), float(m.std(ddof=1) / math.sqrt(m.size))

    def cont_mig(c, t):
        j = int(np.argmin(np.abs(np.asarray(c["times_s"]) - t)))
        return float(c["front_A"][j] - c["front_A"][0])

    for i in range(1, tf.size):
        t = float(tf[i])
        mf, sf = kmc_mig(kmc_fwd, i)
        mr, sr = kmc_mig(kmc_rev, i)
        cf, cr = cont_mig(cont_fwd, t), cont_mig(cont_rev, t)
        resolved = bool(np.isfinite(mr) and sr >= 0 and abs(mr) >= 3.0 * sr and mr != 0)
        ratio = mf / mr if resolved else None
        ratio_se = math.hypot(sf / mr, mf * sr / mr ** 2) if resolved else None
        ratio_c = cf / cr if cr != 0 else float("nan")
        drift, drift_se = 0.5 * (mf - mr), 0.5 * math.hypot(sf, sr)
        drift_c = 0.5 * (cf - cr)
        rows.append({
            "time_s": t,
            "migration_forward_kmc_A": mf, "migration_forward_kmc_se_A": sf,
            "migration_reverse_kmc_A": mr, "migration_reverse_kmc_se_A": sr,
            "migration_forward_continuum_A": cf, "migration_reverse_continuum_A": cr,
            "reverse_resolved": resolved,
            "ratio_kmc": ratio, "ratio_kmc_se": ratio_se, "ratio_continuum": ratio_c,
            "ratio_z": (ratio - ratio_c) / ratio_se if resolved and ratio_se and np.isfinite(ratio_c) else None,
            "drift_kmc_A": drift, "drift_kmc_se_A": drift_se, "drift_continuum_A": drift_c,
            "drift_z": (drift - drift_c) / drift_se if drift_se > 0 else None,
            "interdiffusion_kmc_A": 0.5 * (mf + mr), "interdiffusion_kmc_se_A": drift_se,
            "interdiffusion_continuum_A": 0.5 * (cf + cr),
            "interdiffusion_z": (0.5 * (mf + mr) - 0.5 * (cf + cr)) / drift_se if drift_se > 0 else None,
        })
    return {"times": rows}


def compare_kmc(cfg, a: dict, b: dict) -> dict:
    """Sensitivity: two KMC runs of the same device (e.g. refresh interval N vs N/2)."""
    out = []
    for i in range(1, len(a["times_s"])):
        da = a["fractions_mean"][i] - b["fractions_mean"][i]
        se = np.sqrt(a["fractions_se"][i] ** 2 + b["fractions_se"][i] ** 2)
        z = np.where(se > 0, da / np.where(se > 0, se, 1), 0.0)
        step = abs(cfg.cl_fraction_cl_segment - cfg.cl_fraction_br_segment)
        l2 = float(np.sqrt(np.nanmean((composition(a["fractions_mean"][i]) - composition(b["fractions_mean"][i])) ** 2)) / step)
        out.append({"time_s": float(a["times_s"][i]),
                    "front_diff_A": float(a["front_A_mean"][i] - b["front_A_mean"][i]),
                    "front_diff_se_A": float(math.hypot(a["front_A_se"][i], b["front_A_se"][i])),
                    "l2_composition_rel_step": l2,
                    "max_abs_z_x_v": float(np.max(np.abs(z[2]))), "rms_z_x_v": float(np.sqrt(np.mean(z[2] ** 2))),
                    "max_abs_z_x_br": float(np.max(np.abs(z[0])))})
    res = {"times": out}
    if "x_v_avg_mean" in a and "x_v_avg_mean" in b:
        se = np.sqrt(a["x_v_avg_se"] ** 2 + b["x_v_avg_se"] ** 2)
        z = (a["x_v_avg_mean"] - b["x_v_avg_mean"]) / np.where(se > 0, se, np.nan)
        res["time_avg_x_v_max_abs_z"] = float(np.nanmax(np.abs(z)))
        res["time_avg_x_v_rms_z"] = float(np.sqrt(np.nanmean(z ** 2)))
    return res


# ----------------------------------------------------------------------------- the whole comparison
def _kmc_json(k: dict) -> dict:
    keep = ("times_s", "front_A_mean", "front_A_se", "front_A_replicas", "steps", "refreshes", "wall_seconds", "replicas",
            "refresh_events", "sources", "bias_V")
    out = {key: k[key] for key in keep}
    out["x_br_mean"], out["x_br_se"] = k["fractions_mean"][:, 0], k["fractions_se"][:, 0]
    out["x_v_mean"], out["x_v_se"] = k["fractions_mean"][:, 2], k["fractions_se"][:, 2]
    if "electrode_counts" in k:
        out["electrode_counts"] = k["electrode_counts"]
    return out


def run_consistency(cfg: ConsistencyConfig, out_dir=None, *, workers: int = 1, cache_dir=None,
                    sensitivity: str = "all", figures: bool = True) -> dict:
    """The whole comparison: table → continuum inputs → KMC (sources off / forward / reverse) and
    the continuum at the same times → discrepancy metrics (and figures/JSON under ``out_dir``).

    ``sensitivity``: "all" (refresh interval halved for the equilibrium and forward runs, and the
    forward run with a cross-section two cells wider, :func:`wider_cross_section`), "refresh" (forward, halved refresh only)
    or "none".
    """
    from pathlib import Path

    from halide_ionics.io import provenance, write_json_atomic

    if sensitivity not in ("all", "refresh", "none"):
        raise InputError("sensitivity", sensitivity, "must be 'all', 'refresh' or 'none'")
    workers = check_positive_int("workers", workers)
    t_start = time.perf_counter()
    timings = {}
    import contextlib

    from halide_ionics.parallel import cap_workers, pool_scope

    workers = cap_workers(workers, cfg.replicas, "replicas")
    with (pool_scope(workers) if workers > 1 else contextlib.nullcontext(None)) as ex:
        t0 = time.perf_counter()
        table = coefficient_table(cfg, workers=workers, cache_dir=cache_dir, executor=ex)
        tables = continuum_tables(table, cfg)
        timings["table_s"] = time.perf_counter() - t0
        V = cfg.bias_V
        eq_times = [cfg.equilibrium_time_s]
        tr = list(cfg.transient_times_s)
        cont_eq_times = sorted(set(np.linspace(cfg.equilibrium_average_from_s, cfg.equilibrium_time_s, 7).tolist()))
        kmc, cont = {}, {}
        Veq = cfg.equilibrium_bias_V
        half = max(1, cfg.refresh_events // 2)
        wide = wider_cross_section(cfg)
        eq_kw = dict(sources=False, bias_V=Veq, times_s=eq_times, average_from_s=cfg.equilibrium_average_from_s)
        fw_kw = dict(sources=True, bias_V=V, times_s=tr)
        # (name, config, keywords): the main cases, then the sensitivity runs (the refresh-halved
        # ones on the same seeds: common random numbers; the SE of the difference is taken as
        # independent)
        cases = [("equilibrium", cfg, dict(eq_kw, spawn_key=(0,))), ("forward", cfg, dict(fw_kw, spawn_key=(1,))),
                 ("reverse", cfg, dict(sources=True, bias_V=-V, times_s=tr, spawn_key=(2,)))]
        if sensitivity in ("all", "refresh"):
            cases.append(("refresh_half_forward", cfg, dict(fw_kw, refresh_events=half, spawn_key=(1,))))
        if sensitivity == "all":
            cases.append(("refresh_half_equilibrium", cfg, dict(eq_kw, refresh_events=half, spawn_key=(0,))))
            cases.append(("cross_section_forward", wide, dict(fw_kw, spawn_key=(3,))))
        # every replica of every case in one batch, the costliest cases first (no idle worker
        # at the end of each case; the results do not depend on the order: one stream per task)
        cost = {"cross_section_forward": 3, "refresh_half_forward": 2, "forward": 2, "reverse": 1}
        order = sorted(range(len(cases)), key=lambda i: -cost.get(cases[i][0], 0))
        tasks, owner = [], []
        for i in order:
            name, c, kw = cases[i]
            tk = kmc_tasks(c, tables, **kw)
            tasks += tk
            owner += [i] * len(tk)
        t0 = time.perf_counter()
        res = list(ex.map(run_replica, tasks)) if ex is not None else [run_replica(t) for t in tasks]
        timings["kmc_s"] = time.perf_counter() - t0
        out = {}
        for i, (name, c, kw) in enumerate(cases):
            rr = [r for r, o in zip(res, owner) if o == i]
            kw = {k: v for k, v in kw.items() if k not in ("spawn_key", "times_s")}
            out[name] = collect_kmc(c, rr, wall=sum(r["wall_seconds"] for r in rr), **kw)
        for name in ("equilibrium", "forward", "reverse"):
            kmc[name] = out[name]
        sens = {}
        if "refresh_half_forward" in out:
            sens["refresh_half_forward"] = dict(compare_kmc(cfg, kmc["forward"], out["refresh_half_forward"]),
                                                refresh_events=[cfg.refresh_events, half])
        if "refresh_half_equilibrium" in out:
            sens["refresh_half_equilibrium"] = dict(compare_kmc(cfg, kmc["equilibrium"], out["refresh_half_equilibrium"]),
                                                    refresh_events=[cfg.refresh_events, half])
        if "cross_section_forward" in out:
            sens["cross_section_forward"] = dict(compare_kmc(cfg, kmc["forward"], out["cross_section_forward"]),
                                                 cross_section_cells=[cfg.cross_section_cells, wide.cross_section_cells],
                                                 replicas=[cfg.replicas, wide.replicas])
    t0 = time.perf_counter()
    cont["equilibrium"] = run_continuum(cfg, tables, sources=False, bias_V=Veq, times_s=cont_eq_times)
    cont["forward"] = run_continuum(cfg, tables, sources=True, bias_V=V, times_s=tr)
    cont["reverse"] = run_continuum(cfg, tables, sources=True, bias_V=-V, times_s=tr)
    pb = poisson_boltzmann(cfg, tables, Veq)
    timings["continuum_s"] = time.perf_counter() - t0
    metrics = {
        "equilibrium": compare_equilibrium(cfg, kmc["equilibrium"], cont["equilibrium"], pb),
        "forward": compare_transient(cfg, kmc["forward"], cont["forward"]),
        "reverse": compare_transient(cfg, kmc["reverse"], cont["reverse"]),
        "rectification": compare_rectification(kmc["forward"], kmc["reverse"], cont["forward"], cont["reverse"]),
        "sensitivity": sens,
    }
    metrics["pass"] = bool(metrics["equilibrium"]["pass"] and metrics["forward"]["pass"] and metrics["reverse"]["pass"])
    timings["total_s"] = time.perf_counter() - t_start
    summary = {
        "pass": metrics["pass"],
        "metrics": metrics,
        "scales": {"debye_length_nm": cfg.debye_length_nm(), "wire_length_nm": cfg.wire_length_um * 1e3,
                   "contact_width_nm": cfg.contact_width_um * 1e3, "lattice_constant_A": cfg.lattice_constant_A,
                   "bias_over_kT": cfg.bias_V / cfg.material().kT_eV,
                   "equilibrium_bias_over_kT": cfg.equilibrium_bias_V / cfg.material().kT_eV, "w_br_Hz": tables.electrode_rate_Hz},
        "coefficients": tables.to_dict(),
        "kmc": {k: _kmc_json(v) for k, v in kmc.items()},
        "continuum_status": {k: v["status"] for k, v in cont.items()},
        "timings_s": timings,
        "provenance": provenance(config=cfg.to_dict(), seed=cfg.seed, workers=workers, sensitivity=sensitivity),
    }
    from halide_ionics.io import json_safe

    summary = json_safe(summary)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if figures:
            summary["figures"] = plot_all(cfg, kmc, cont, pb, out)
        write_json_atomic(out / "consistency.json", summary)
    log.info("consistency: pass=%s in %.1f s", summary["pass"], timings["total_s"])
    return summary


# ----------------------------------------------------------------------------- figures
def _save(fig, path) -> str:
    from halide_ionics.io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def plot_all(cfg, kmc: dict, cont: dict, pb: dict, out) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a_nm = cfg.lattice_constant_A / 10
    zs = (np.arange(cfg.length_cells) + 0.5) * a_nm
    files = []
    # (a) sources off: vacancy profile
    k, c = kmc["equilibrium"], cont["equilibrium"]
    fig, ax = plt.subplots(figsize=(7, 4))
    win = c["times_s"] >= cfg.equilibrium_average_from_s - 1e-9
    ax.errorbar(zs, k["x_v_avg_mean"], yerr=k["x_v_avg_se"], fmt="o", ms=3, label="KMC (time avg, mean ± SE)")
    ax.plot(zs, c["fractions"][win, 2].mean(0), "-", label="continuum (same window)")
    ax.plot(zs, pb["x_v_slab"], "--", label="Poisson–Boltzmann")
    for e in (cfg.contact_cells * a_nm, (cfg.length_cells - cfg.contact_cells) * a_nm):
        ax.axvline(e, color="0.7", lw=0.8)
    ax.axvline(cfg.length_cells / 2 * a_nm, color="k", lw=0.5, ls=":")
    ax.set_xlabel("z (nm)")
    ax.set_ylabel("vacancy site fraction x_V")
    ax.set_title(f"sources off, V = {cfg.equilibrium_bias_V:+.3g} V: equilibrium screening")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(_save(fig, out / "equilibrium_vacancy.png"))
    # (b) sources on: composition and vacancies, forward / reverse
    for name in ("forward", "reverse"):
        k, c = kmc[name], cont[name]
        fig, axs = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
        for i, t in enumerate(k["times_s"]):
            j = int(np.argmin(np.abs(c["times_s"] - t)))
            col = f"C{i}"
            axs[0].errorbar(zs, k["fractions_mean"][i, 0], yerr=k["fractions_se"][i, 0], fmt="o", ms=2.5, color=col,
                            label=f"KMC t = {t:.3g} s")
            axs[0].plot(zs, c["fractions"][j, 0], "-", color=col, lw=1)
            axs[1].errorbar(zs, k["fractions_mean"][i, 2], yerr=k["fractions_se"][i, 2], fmt="o", ms=2.5, color=col)
            axs[1].plot(zs, c["fractions"][j, 2], "-", color=col, lw=1)
        axs[0].set_ylabel("x_Br")
        axs[1].set_ylabel("x_V")
        axs[1].set_xlabel("z (nm)")
        axs[0].legend(fontsize=7, title="points: KMC ± SE; lines: continuum", title_fontsize=7)
        axs[0].set_title(f"sources on, {name} bias ({(1 if name == 'forward' else -1) * cfg.bias_V:+.3g} V)")
        fig.tight_layout()
        files.append(_save(fig, out / f"{name}_profiles.png"))
    return files
