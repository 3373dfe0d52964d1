"""The lattice KMC simulation: state, run loop, observers, checkpoints.

Algorithm
---------
Rejection-free residence-time (BKL / n-fold way) selection. Every event is owned by a *leaf*
of a binary sum tree: one leaf per vacancy (the hops of its neighbouring ions into it and,
inside an electrode, its annihilation) and one leaf per electrode site (creation). After an
event only the rates that can change are recomputed: those of the vacancy that moved and, when
other vacancies or electrodes exist, of the vacancies within two neighbour shells and the
electrode sites on or next to the changed sites or the vacancies next to them (whose shell
energies enter the exact ΔE). The cost per hop is independent of the lattice size. One vacancy without electrodes
(the Onsager estimators' case) runs a specialised loop (``_kernels._run_single``) that gives
bitwise the same trajectory as the general one, 1.4–2.6e7 hops/s on one core. Several vacancies
without electrodes (z <= 12) run ``_kernels._run_multi`` (packed per-site table, per-site
vacant-neighbour masks kept by each hop, tabulated clean-hop factor, branch-free neighbour
masks, field factors by jump class where one potential holds everywhere, a specialisation for
lattices without open ends, each vacancy's cumulative rate sums kept for the event choice, a
sum-tree descent two levels per step, one 64-byte geometry row per site and, for z <= 8 without
open ends, the vacant-neighbour mask in the packed site row), also bitwise the general loop's
trajectory: ~4.3x the general loop at 1 % vacancies on 16³ cells (5.4–5.9e6 hops/s on the
development machine, 4.0–5.6e6 in its slow phases), ~4.2x the single-vacancy cost per hop:
each event lands on a cold neighbourhood, recomputes the rates of every vacancy within two
shells and updates a deeper sum tree, one long dependency chain per hop
(``benchmarks/kmc_throughput.py``).

Clock: ``clock="exponential"`` draws ``Δt = E/Γ`` with E a standard exponential variate
(ziggurat, no logarithm per hop); ``clock="mean"`` uses the mean residence
time ``Δt = 1/Γ`` (lower-variance transport estimators; no waiting-time noise).

Randomness: the kernel uses xoshiro256** whose 256-bit state is drawn from the numpy
``Generator`` given to the constructor; the state is part of every checkpoint, so a resumed run
is bitwise identical to an uninterrupted one. Runs are split into compiled chunks between
which observers, progress bars and checkpoints run; chunking never changes the trajectory.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from halide_ionics.errors import InputError, check_choice, check_positive, check_positive_int
from halide_ionics.io import atomic_path
from halide_ionics.structures import SublatticeGraph, build_lattice
from halide_ionics.structures.species import BR, CL, VAC

from . import _kernels as _k
from .rates import Electrode, RateModel

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
_BIG = np.int64(2**62)

#: fast-loop entry points by coordination z (z a compile-time literal in each)
_SINGLE = {6: _k._run_single6, 8: _k._run_single8, 12: _k._run_single12}
_MULTI = {(6, False): _k._run_multi6, (8, False): _k._run_multi8, (12, False): _k._run_multi12,
          (6, True): _k._run_multi6p, (8, True): _k._run_multi8p, (12, True): _k._run_multi12p}

# Dynamic arrays saved in a checkpoint (everything else is rebuilt from the configuration).
_STATE_ARRAYS = (
    "iscal", "fscal", "rng", "occ", "ncl", "nion", "site_vac", "vac_site", "vrates", "crate",
    "tree", "vstamp", "estamp", "varr", "vres", "dR", "ion_id", "ion_R", "ion_nj", "ion_sp",
    "ring", "ion_W", "corr", "el_count",
)


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (np.random.SeedSequence, int, np.integer)) and not isinstance(rng, bool):
        if isinstance(rng, (int, np.integer)) and rng < 0:
            raise InputError("seed", rng, "must be a non-negative integer")
        return np.random.default_rng(rng)
    raise InputError("rng", type(rng).__name__, "must be a numpy Generator, SeedSequence or non-negative int")


class _Geometry:
    """Integer neighbour tables of a graph, prepared once per graph."""

    def __init__(self, graph: SublatticeGraph):
        nb = np.asarray(graph.neighbors, dtype=np.int64)
        n, z = nb.shape
        srt = np.sort(np.where(nb >= 0, nb, -1 - np.arange(z)[None, :]), axis=1)
        if (np.diff(srt, axis=1) == 0).any() or (nb == np.arange(n)[:, None]).any():
            raise InputError("cells", graph.cells, "neighbour table has repeated sites: a periodic direction is too short; use at least 3 cells")
        half = graph.lattice_constant_A / 2.0
        jh = graph.jump_vectors_A / half
        jr = np.rint(jh)
        if np.abs(jh - jr).max() > 1e-6 or np.abs(jr).max() > 100:
            raise InputError("graph", graph.name, "jump vectors must be integer multiples of a/2")
        self.nb = nb.astype(np.int32)
        self.jv = jr.astype(np.int8)
        self.zval = (nb >= 0).sum(axis=1).astype(np.int32)
        self.full = bool((nb >= 0).all())  # every site has z neighbours (no open ends)
        self.s2_half = int((self.jv[0, 0].astype(np.int64) ** 2).sum())  # jump length² in (a/2)²
        # sites within two neighbour shells (including the site itself), CSR
        nbp = np.where(nb >= 0, nb, n)  # n = sentinel
        ext = np.concatenate([nbp, np.full((1, z), n)], axis=0)
        second = ext[nbp].reshape(n, z * z)
        cand = np.concatenate([np.arange(n)[:, None], nbp, second], axis=1)
        cand.sort(axis=1)
        keep = np.ones_like(cand, dtype=bool)
        keep[:, 1:] = cand[:, 1:] != cand[:, :-1]
        keep &= cand < n
        counts = keep.sum(axis=1)
        self.d2s = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=self.d2s[1:])
        self.d2i = cand[keep].astype(np.int32)
        # cnm[x, k], bit j: the neighbour j of x is the neighbour k of x or one of its neighbours
        # (the many-vacancy loop: what its refresh after a hop x -> nb[x, k] has covered from
        # nb[x, k], and which of x's vacant neighbours are next to the ion on nb[x, k] in its rates)
        nb32 = self.nb
        ext_nb = np.concatenate([nb32, np.full((1, z), -1, dtype=np.int32)], axis=0)  # row n: none
        bit = np.int64(1) << np.arange(z, dtype=np.int64)
        cnm = np.zeros((n, z), dtype=np.int32)
        for k in range(z):
            y = nb32[:, k]
            nb_y = ext_nb[np.where(y >= 0, y, n)]
            hit = nb32 == y[:, None]
            for t in range(z):
                hit |= nb32 == nb_y[:, t:t + 1]
            hit &= (nb32 >= 0) & (y >= 0)[:, None]
            cnm[:, k] = hit @ bit
        # int16 where the bits fit (z <= 15; the loop that reads it needs z <= 12): half the
        # bytes of a table read on every hop (the per-hop working set exceeds the L2 cache)
        self.cnm = cnm.reshape(-1).astype(np.int16 if z <= 15 else np.int32)
        # rev[x*z + k]: the slot of x in the row of its neighbour y = nb[x, k] (-1 without one): the
        # many-vacancy loop keeps per-site vacant-neighbour masks with it
        self.rev = _reverse_slots(nb32)
        # The many-vacancy loop's compact tables (its per-hop reads at random sites overflow the
        # L2 cache at 16³ cells: fewer bytes per site are fewer misses). Jump classes:
        # jcls[x*z + k] indexes the distinct (jump vector, neighbour exists) pairs, jtab[3c:3c+3]
        # is the jump vector of class c. With one potential on every site the hop field factor is
        # a function of the class (its exponent reads ψ_x − ψ_y = 0 and jv_z): Simulation keeps
        # that table (``vtab``) and the loop reads it instead of the (n, z) ``vfac``.
        # (one int64 per row, increasing in the rows' lexicographic order: the classes and class
        # order of a row-wise np.unique, without its structured-row sort; 6×6×60 wire: the whole
        # geometry 75 -> 25 ms, paid by every consistency replica)
        jvf = self.jv.reshape(n * z, 3).astype(np.int64) + 128  # |jv| <= 100
        key = ((jvf[:, 0] * 256 + jvf[:, 1]) * 256 + jvf[:, 2]) * 2 + (nb >= 0).reshape(-1)
        ukey, inv = np.unique(key, return_inverse=True)
        cls = np.stack([ukey // (2 * 65536) - 128, ukey // 512 % 256 - 128, ukey // 2 % 256 - 128], axis=1)
        self.jcls = inv.reshape(-1).astype(np.uint8 if ukey.size <= 256 else np.int32)
        self.jtab = np.ascontiguousarray(cls).astype(np.int8).reshape(-1)
        # planes of equal z (a 1D Poisson potential is one value per plane: the junction runs)
        _, self.plane = np.unique(np.round(graph.positions_A[:, 2], 6), return_inverse=True)
        self.plane = self.plane.reshape(-1)
        self.plane_first = np.unique(self.plane, return_index=True)[1]  # one site of each plane
        self._pcls = None

    def plane_classes(self):
        """Classes of the (site, slot) entries whose hop field factor is one number when the
        potential is one value per plane: same plane of the site, of the neighbour (site 0's for
        a slot without one, as the formula reads) and jump z component. Returns ``(pcls, prep)``:
        the class of every entry (flat) and one entry of each class. Built on first use."""
        if self._pcls is None:
            n, z = self.nb.shape
            y = np.where(self.nb >= 0, self.nb, 0)
            npl = int(self.plane.max()) + 1
            key = ((self.plane[:, None].astype(np.int64) * npl + self.plane[y]) * 512
                   + self.jv[:, :, 2].astype(np.int64) + 256)
            _, prep, pcls = np.unique(key.reshape(-1), return_index=True, return_inverse=True)
            self._pcls = (pcls.reshape(-1).astype(np.int32), prep.astype(np.int64))
        return self._pcls


def _reverse_slots(nb: np.ndarray) -> np.ndarray:
    """``rev[x*z + k]`` = the slot of x in the row of y = nb[x, k] (int8; -1 where nb[x, k] < 0):
    ``nb[y, rev[x*z + k]] == x``. (Rows hold no repeated site: ``_Geometry`` refuses them.)"""
    n, z = nb.shape
    y = np.where(nb >= 0, nb, 0)
    own = np.arange(n)[:, None]
    rev = np.full((n, z), -1, dtype=np.int64)
    for j in range(z):
        rev[(nb >= 0) & (nb[y, j] == own)] = j
    if (rev[nb >= 0] < 0).any():
        raise InputError("graph", "neighbors", "the neighbour lists are not symmetric")
    return rev.reshape(-1).astype(np.int8 if z <= 127 else np.int16)


def _geometry(graph: SublatticeGraph) -> _Geometry:
    geo = graph.__dict__.get("_kmc_geometry")
    if geo is None:
        geo = _Geometry(graph)
        object.__setattr__(graph, "_kmc_geometry", geo)  # per-instance cache on a frozen dataclass
    return geo


def _hop_table(ba: np.ndarray, bv: np.ndarray) -> np.ndarray:
    """``hopt[s, n_i, n_v, m] = ba[s, n_i + n_v − s] · bv[n_i + s, m]`` (see ``_kernels``): the
    first product of a clean hop's rate, so rates built from it are bitwise those of the
    general formula. Combinations that cannot occur are 0."""
    z = bv.shape[0] - 1
    out = np.zeros((2, z + 1, z + 1, z + 1))
    for c in range(2):
        for ni in range(z + 1 - c):
            for nv in range(c, z + 1):
                j = ni + nv - c
                if j < ba.shape[1]:
                    out[c, ni, nv, :] = ba[c, j] * bv[ni + c, :]
    return out


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


class Simulation:
    """Lattice KMC of Br/Cl ions and vacancies on a :class:`SublatticeGraph`.

    Parameters
    ----------
    graph : SublatticeGraph
        Sites, neighbours and jump vectors (``halide_ionics.structures.build_lattice``).
    occupancy : array of int, shape (N,)
        Codes ``BR`` (0), ``CL`` (1), ``VAC`` (2) per site (copied).
    rate_model : RateModel
        Energies, barriers, temperature, uniform field.
    rng : numpy.random.Generator, SeedSequence or int
        Source of the kernel's random stream (its state is drawn once from it).
    site_potentials_V : array (N,), optional
        Electrostatic potential of every site (V), added to the uniform field's.
    electrodes : sequence of Electrode
        Contacts with vacancy creation/annihilation (non-overlapping masks).
    clock : {"exponential", "mean"}
        Waiting-time rule (see the module docstring).
    track_ions : bool
        Keep per-ion unwrapped displacements, jump counts and the tracer-correlation window
        (costs a little per hop; off for throughput).
    tracer_window : int
        ``K`` of the windowed tracer correlation factor ``f_K = 1 + 2 Σ_{k=1..K} ⟨cos θ_k⟩``.
    """

    def __init__(self, graph: SublatticeGraph, occupancy, rate_model: RateModel, rng, *,
                 site_potentials_V=None, electrodes=(), clock: str = "exponential",
                 track_ions: bool = False, tracer_window: int = 8):
        if not isinstance(graph, SublatticeGraph):
            raise InputError("graph", type(graph).__name__, "must be a SublatticeGraph")
        if not isinstance(rate_model, RateModel):
            raise InputError("rate_model", type(rate_model).__name__, "must be a RateModel")
        check_choice("clock", clock, ("exponential", "mean"))
        self.graph = graph
        self.geo = _geometry(graph)
        n, z = self.geo.nb.shape
        occ = np.asarray(occupancy)
        if occ.shape != (n,):
            raise InputError("occupancy", occ.shape, f"must have shape ({n},)")
        if not np.issubdtype(occ.dtype, np.integer) or occ.min() < 0 or occ.max() > VAC:
            raise InputError("occupancy", "codes", f"must hold BR={BR}, CL={CL} or VAC={VAC}")
        self.rate_model = rate_model
        self.clock = clock
        self.track_ions = bool(track_ions)
        self.tracer_window = check_positive_int("tracer_window", tracer_window)
        self.electrodes = tuple(electrodes)
        el_idx = np.full(n, -1, dtype=np.int32)
        el_sites, el_of = [], []
        for j, el in enumerate(self.electrodes):
            if not isinstance(el, Electrode):
                raise InputError("electrodes", type(el).__name__, "must be Electrode objects")
            if el.mask.shape != (n,):
                raise InputError("electrode.mask", el.mask.shape, f"must have shape ({n},)")
            sites = np.flatnonzero(el.mask)
            if (el_idx[sites] >= 0).any():
                raise InputError("electrodes", el.name or j, "electrode masks overlap")
            el_idx[sites] = len(el_sites) + np.arange(sites.size)
            el_sites.extend(sites.tolist())
            el_of.extend([j] * sites.size)
        self.el_idx = el_idx
        self.el_sites = np.asarray(el_sites, dtype=np.int32)
        self.el_of = np.asarray(el_of, dtype=np.int32)
        self.el_p = np.array([-1.0 if e.cl_fraction is None else e.cl_fraction for e in self.electrodes],
                             dtype=float)[self.el_of] if el_sites else np.zeros(0)
        self.site_potentials_V = np.zeros(n) if site_potentials_V is None else self._check_psi(site_potentials_V)
        self._build_tables()

        gen = _as_generator(rng)
        st = gen.integers(0, 2**64, size=4, dtype=np.uint64, endpoint=False)
        if not st.any():
            st[0] = np.uint64(0x9E3779B97F4A7C15)
        s = {}
        s["rng"] = st
        occ8 = occ.astype(np.int8)
        s["occ"] = occ8.copy()
        vac = np.flatnonzero(occ8 == VAC)
        nvac = vac.size
        nel = self.el_sites.size
        cap = max(1, nvac) if nel == 0 else max(16, 2 * nvac)
        s["site_vac"] = np.full(n, -1, dtype=np.int32)
        s["site_vac"][vac] = np.arange(nvac, dtype=np.int32)
        s["vac_site"] = np.zeros(cap, dtype=np.int32)
        s["vac_site"][:nvac] = vac
        s["vrates"] = np.zeros((cap, z + 2))
        s["crate"] = np.zeros(max(nel, 0))
        s["vstamp"] = np.zeros(cap, dtype=np.int64)
        s["estamp"] = np.zeros(nel, dtype=np.int64)
        s["varr"] = np.zeros(cap)
        s["vres"] = np.zeros(n)
        s["dR"] = np.zeros((2, 3), dtype=np.int64)
        s["corr"] = np.zeros((2, 2), dtype=np.int64)
        s["el_count"] = np.zeros((max(len(self.electrodes), 1), 2, 2), dtype=np.int64)
        nleaf = _next_pow2(cap + nel)
        s["tree"] = np.zeros(2 * nleaf)
        s["iscal"] = np.array([nvac, 0, 0, 0, 0, nleaf, cap], dtype=np.int64)
        s["fscal"] = np.array([0.0, -1.0])
        ions = np.flatnonzero(occ8 != VAC)
        if self.track_ions:
            icap = ions.size + (max(64, ions.size // 4) if nel else 0)
            s["ion_id"] = np.full(n, -1, dtype=np.int64)
            s["ion_id"][ions] = np.arange(ions.size)
            s["ion_sp"] = np.zeros(icap, dtype=np.int8)
            s["ion_sp"][: ions.size] = occ8[ions]
            s["iscal"][2] = ions.size
        else:
            icap = 1
            s["ion_id"] = np.full(1, -1, dtype=np.int64)
            s["ion_sp"] = np.zeros(1, dtype=np.int8)
        s["ion_R"] = np.zeros((icap, 3), dtype=np.int64)
        s["ion_nj"] = np.zeros(icap, dtype=np.int64)
        s["ring"] = np.zeros((icap, self.tracer_window, 3), dtype=np.int8)
        s["ion_W"] = np.zeros((icap, 3), dtype=np.int64)
        self._s = s
        self._shells_from_occupancy()
        self._refresh_all()
        self.observers: list = []
        self._fast = True  # single-vacancy fast path (tests switch it off to compare)

    # ---- construction helpers ----------------------------------------------------------------
    def _check_psi(self, psi):
        p = np.asarray(psi, dtype=float)
        if p.shape != (self.graph.n_sites,):
            raise InputError("site_potentials_V", p.shape, f"must have shape ({self.graph.n_sites},)")
        if not np.isfinite(p).all():
            raise InputError("site_potentials_V", "array", "must be finite")
        return p.copy()

    def _absolute_potential(self) -> np.ndarray:
        return self.site_potentials_V - self.rate_model.field_V_per_A * self.graph.positions_A[:, 2]

    def _build_tables(self):
        """Every rate table: the rate model's (barriers, vacancy energies, clean-hop products) and
        the potential-dependent factors (:meth:`_build_potential_tables`)."""
        m = self.rate_model
        z = self.geo.nb.shape[1]
        kt = m.kT_eV
        self.ba = m.barrier_table(z)
        ev = m.vacancy_energy_table(z)
        self.e_ref = m.vacancy_formation_br_eV
        self.bv = np.exp(-(ev - self.e_ref) / (2 * kt))
        self.ivb = 1.0 / self.bv
        self.hopt = _hop_table(self.ba, self.bv)
        self._ks = m.electrode_species_table(z) if self.el_sites.size else None
        self._build_potential_tables()

    def _build_potential_tables(self):
        """The factors that depend on the site and electrode potentials: hop field factors ``vfac``
        and the electrode creation/annihilation factors (rebuilt alone by :meth:`set_site_potentials`).

        The exponents are formed by a compiled loop (``_kernels._potential_exponents``, the
        numpy formula's operations in its order) and exponentiated by numpy into arrays kept
        between calls, so the factors are bitwise those of the plain numpy formula
        ``exp((ψ_x − ψ_y + E_z jv_z a/2)/2kT)`` at a fraction of its cost per Poisson refresh.
        A potential that is one value per z-plane (the 1D Poisson solution of the junction runs)
        is evaluated once per (plane, neighbour plane, jump z) class and gathered: the same
        operands per entry, hence the same values."""
        m = self.rate_model
        kt = m.kT_eV
        nb = self.geo.nb
        psi = self.site_potentials_V
        self._el_unchanged = False
        if getattr(self, "_expo", None) is None or self._expo.shape != nb.shape:
            self._el_key = None
            self._expo = np.empty(nb.shape)
            self.vfac = np.empty(nb.shape)
        geo = self.geo
        args = (float(m.field_V_per_A), float(self.graph.lattice_constant_A / 2), float(2 * kt))
        layered = np.array_equal(psi, psi[geo.plane_first][geo.plane])
        if layered:
            # one potential per plane (a 1D Poisson solution): the exponent of every entry is
            # that of its class's representative (same operands, same operations), so the
            # formula is evaluated and exponentiated once per class and gathered: the same
            # values at a fraction of the cost of a refresh
            pcls, prep = geo.plane_classes()
            ex = np.empty(prep.size)
            amax = _k._potential_exponents_at(psi, nb, geo.jv, *args, prep, ex)
        else:
            amax = _k._potential_exponents(psi, nb, geo.jv, *args, self._expo)
        if amax > 600:
            dmax = float(np.abs(amax * (2 * kt)))
            raise InputError("site_potentials_V", dmax, "potential step between neighbours too large (exp overflow)")
        if layered:
            np.exp(ex, out=ex)
            _k._gathered_factors(ex, pcls, nb, self.vfac)
        else:
            np.exp(self._expo, out=self._expo)
            _k._masked_factors(self._expo, nb, self.vfac)
        self._vfac_by_class()
        if self.el_sites.size:
            if getattr(self, "_el_const", None) is None:
                self._el_const = (np.array([e.potential_V for e in self.electrodes])[self.el_of],
                                  np.array([e.rate_Hz for e in self.electrodes])[self.el_of],
                                  self.graph.positions_A[self.el_sites, 2])
            pel, ke, zel = self._el_const
            psi_el = psi[self.el_sites]
            if self._el_key is not None and self._el_key[0] is m and np.array_equal(self._el_key[1], psi_el):
                self._el_unchanged = True  # same model, same potentials on the electrode sites
                return
            self._el_key = None
            psi_abs = psi_el - m.field_V_per_A * zel
            x = (self.e_ref - m.vacancy_reservoir_eV - (pel - psi_abs)) / (2 * kt)
            if np.abs(x).max() > 600:
                raise InputError("electrode.potential_V", float(np.abs(pel - psi_abs).max()), "electrode energy step too large (exp overflow)")
            ks = self._ks  # (2, z+1): species/environment barrier factor
            if getattr(self, "cfac", None) is None or self.cfac.shape != (x.size,) + ks.shape:
                self.cfac = np.empty((x.size,) + ks.shape)
                self.afac = np.empty((x.size,) + ks.shape)
            # (k_e e^{∓x})[:, None, None] · K[None], in place
            if not _k._electrode_factors(ke, np.exp(-x), np.exp(x), ks, self.cfac, self.afac):
                raise InputError("electrode.rate_Hz", float(ke.max()), "electrode rates overflow (barrier or potential too large)")
            self._el_key = (m, psi_el)
        else:
            z = nb.shape[1]
            self.cfac = np.zeros((0, 2, z + 1))
            self.afac = np.zeros((0, 2, z + 1))

    def _vfac_by_class(self):
        """``vtab[c]``, the hop field factor of jump class c (``geo.jcls``), when every site has
        the same potential (then ``vfac`` is a function of the class: the many-vacancy loop reads
        the small table instead of the (n, z) array); otherwise (or should any entry disagree)
        ``vtab`` is empty and the loop reads ``vfac``."""
        psi = self.site_potentials_V
        self.vtab = np.zeros(0)
        if psi.size and (psi == psi[0]).all():
            jc = self.geo.jcls
            vt = np.zeros(self.geo.jtab.size // 3)
            vt[jc] = self.vfac.reshape(-1)
            if np.array_equal(vt[jc], self.vfac.reshape(-1)):
                self.vtab = vt

    def _shells_from_occupancy(self):
        nb = self.geo.nb
        occ = self._s["occ"]
        valid = nb >= 0
        o = np.where(valid, occ[np.where(valid, nb, 0)], VAC)
        self._s["ncl"] = (o == CL).sum(axis=1).astype(np.int32)
        self._s["nion"] = (o != VAC).sum(axis=1).astype(np.int32)

    def _refresh_all(self):
        s = self._s
        _k._refresh_all(s["iscal"], self.geo.nb, self.geo.zval, s["occ"], s["ncl"], s["nion"], self.ba,
                        self.bv, self.ivb, self.vfac, self.el_idx, self.el_p, self.el_sites, self.afac, self.cfac,
                        s["vac_site"], s["vrates"], s["crate"], s["tree"])
        s["fscal"][1] = -1.0  # rates may have changed: redraw the pending waiting time

    def _grow_vacancies(self):
        s = self._s
        cap = int(s["iscal"][6])
        new = 2 * cap
        for key, fill in (("vac_site", 0), ("vstamp", 0), ("varr", 0.0)):
            a = np.full(new, fill, dtype=s[key].dtype)
            a[:cap] = s[key]
            s[key] = a
        vr = np.zeros((new, s["vrates"].shape[1]))
        vr[:cap] = s["vrates"]
        s["vrates"] = vr
        nleaf = _next_pow2(new + self.el_sites.size)
        s["tree"] = np.zeros(2 * nleaf)
        s["iscal"][5] = nleaf
        s["iscal"][6] = new
        pending = s["fscal"][1]
        self._refresh_all()
        s["fscal"][1] = pending  # same state, same rates: keep the drawn waiting time
        log.debug("vacancy capacity grown to %d", new)

    def _grow_ions(self):
        s = self._s
        old = s["ion_R"].shape[0]
        new = 2 * old
        for key in ("ion_R", "ion_nj", "ion_sp", "ring", "ion_W"):
            a = np.zeros((new,) + s[key].shape[1:], dtype=s[key].dtype)
            a[:old] = s[key]
            s[key] = a
        log.debug("ion capacity grown to %d", new)

    # ---- running ------------------------------------------------------------------------------
    def _kernel(self, step_target: int, t_max: float) -> int:
        """One compiled chunk. The loop is chosen here, in Python, by the rule the general loop
        would otherwise apply itself: one vacancy and no electrodes -> ``_run_single``; several
        and no electrodes (z <= 12, at most 128 jump classes) -> ``_run_multi``; else ``_run``. All three give the same
        trajectory; choosing here compiles a fast loop only when a run needs it, and only for
        its coordination z (``_SINGLE``/``_MULTI``: entry points with z a literal, whose
        specialisations unroll the neighbour loops, and for the many-vacancy loop whether every
        site has z neighbours, ``geo.full``; other z: the plain loop)."""
        s = self._s
        g = self.geo
        z = int(g.nb.shape[1])
        nvac, nleaf = int(s["iscal"][0]), int(s["iscal"][5])
        fast = self._fast and self.el_sites.size == 0
        with np.errstate(over="ignore"):
            if fast and nvac == 1 and nleaf == 1:
                fn = _SINGLE.get(z)
                zarg = () if fn is not None else (z,)
                return int((fn or _k._run_single)(
                    np.int64(step_target), float(t_max), s["iscal"], s["fscal"], s["rng"],
                    self.clock == "mean", self.track_ions, np.int64(self.tracer_window), g.nb, g.jv, g.zval,
                    g.full, self.hopt, self.ivb, self.vfac, s["occ"], s["ncl"], s["nion"], s["site_vac"],
                    s["vac_site"], s["vrates"], s["tree"], s["varr"], s["vres"], s["dR"], s["ion_id"],
                    s["ion_R"], s["ion_nj"], s["ring"], s["ion_W"], s["corr"], *zarg))
            # (bit masks over neighbour slots: _LOWBIT; a jump class in one byte of the geometry row)
            if fast and nvac > 1 and z <= 12 and g.jtab.size <= 3 * 128:
                fn = _MULTI.get((z, g.full))
                zarg = () if fn is not None else (z, g.full)
                return int((fn or _k._run_multi)(
                    np.int64(step_target), float(t_max), s["iscal"], s["fscal"], s["rng"],
                    self.clock == "mean", self.track_ions, np.int64(self.tracer_window), self.hopt, g.nb, g.jcls,
                    g.jtab, self.vtab, g.zval, g.cnm, g.rev, self.bv, self.ivb, self.vfac, s["occ"], s["ncl"],
                    s["nion"], s["site_vac"], s["vac_site"], s["vrates"], s["tree"], s["vstamp"], s["varr"],
                    s["vres"], s["dR"], s["ion_id"], s["ion_R"], s["ion_nj"], s["ring"], s["ion_W"], s["corr"],
                    *zarg))
            return int(_k._run(
                np.int64(step_target), float(t_max), s["iscal"], s["fscal"], s["rng"],
                self.clock == "mean", self.track_ions, np.int64(self.tracer_window),
                g.nb, g.jv, g.zval, g.d2s, g.d2i, self.ba, self.bv, self.ivb, self.vfac,
                self.el_idx, self.el_p, self.el_sites, self.el_of, self.afac, self.cfac,
                s["occ"], s["ncl"], s["nion"], s["site_vac"], s["vac_site"], s["vrates"], s["crate"],
                s["tree"], s["vstamp"], s["estamp"], s["varr"], s["vres"], s["dR"], s["ion_id"],
                s["ion_R"], s["ion_nj"], s["ion_sp"], s["ring"], s["ion_W"], s["corr"], s["el_count"]))

    def _advance(self, step_target: int, t_max: float) -> int:
        """Run the kernel to ``step_target``/``t_max``, growing capacities as needed."""
        while True:
            code = self._kernel(step_target, t_max)
            if code == 2:
                self._grow_vacancies()
            elif code == 3:
                self._grow_ions()
            else:
                return code

    def attach(self, observer) -> None:
        """Attach an observer (called every ``observer.interval`` steps during :meth:`run`)."""
        if observer not in self.observers:
            observer.bind(self)
            self.observers.append(observer)

    def run(self, hops: int | None = None, time_s: float | None = None, observers=(),
            progress: bool = False, checkpoint_path=None, checkpoint_every: int | None = None) -> str:
        """Advance by ``hops`` KMC events (ion hops and electrode events) and/or ``time_s``.

        The run stops at whichever limit comes first. Observers are called whenever the step
        count reaches a multiple of their interval; ``checkpoint_path`` is written every
        ``checkpoint_every`` steps and at the end. Returns the reason it stopped: ``"hops"``,
        ``"time"`` or ``"no-events"``.
        """
        if hops is None and time_s is None:
            raise InputError("hops", None, "give hops and/or time_s")
        target = int(_BIG) if hops is None else self.steps + (0 if hops == 0 else check_positive_int("hops", hops))
        t_max = math.inf if time_s is None else self.time_s + check_positive("time_s", time_s)
        if checkpoint_every is not None:
            checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
            if checkpoint_path is None:
                raise InputError("checkpoint_path", None, "needed with checkpoint_every")
        for ob in observers:
            self.attach(ob)
        for ob in self.observers:
            if ob.last_step < 0:
                ob.observe(self)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=None if hops is None else hops, unit="hop", unit_scale=True, leave=False)
        chunk = 1_000_000 if hops is None else max(10_000, min(1_000_000, hops // 100))
        reason = "hops"
        try:
            while self.steps < target:
                start = self.steps
                stop = min(target, start + chunk if bar is not None else target)
                for ob in self.observers:
                    stop = min(stop, (start // ob.interval + 1) * ob.interval)
                if checkpoint_every is not None:
                    stop = min(stop, (start // checkpoint_every + 1) * checkpoint_every)
                code = self._advance(stop, t_max)
                for ob in self.observers:
                    if self.steps % ob.interval == 0 and ob.last_step != self.steps:
                        ob.observe(self)
                if bar is not None:
                    bar.update(self.steps - start)
                if checkpoint_every is not None and self.steps % checkpoint_every == 0:
                    self.save_checkpoint(checkpoint_path)
                if code == 1:
                    reason = "time"
                    break
                if code == 4:
                    reason = "no-events"
                    log.warning("no event possible (total rate 0) at step %d", self.steps)
                    break
        finally:
            if bar is not None:
                bar.close()
        if checkpoint_path is not None:
            self.save_checkpoint(checkpoint_path)
        return reason

    # ---- updating the model between chunks ----------------------------------------------------
    def set_site_potentials(self, psi_V) -> None:
        """Replace the per-site potentials (V) and rebuild every rate that depends on them."""
        self.site_potentials_V = self._check_psi(psi_V)
        self._build_potential_tables()
        if self._el_unchanged:
            # electrode factors unchanged (same potentials on the electrode sites, e.g. contacts
            # held at the electrode potential): only the vacancies' rates can have changed
            s = self._s
            _k._refresh_vacancies(s["iscal"], self.geo.nb, self.geo.zval, s["occ"], s["ncl"], s["nion"], self.ba,
                                  self.bv, self.ivb, self.vfac, self.el_idx, self.el_p, self.afac, s["vac_site"],
                                  s["vrates"], s["tree"])
            s["fscal"][1] = -1.0  # rates may have changed: redraw the pending waiting time
        else:
            self._refresh_all()

    def set_rate_model(self, rate_model: RateModel) -> None:
        """Replace the rate model (e.g. a new uniform field) and rebuild all rates."""
        if not isinstance(rate_model, RateModel):
            raise InputError("rate_model", type(rate_model).__name__, "must be a RateModel")
        self.rate_model = rate_model
        self._build_tables()
        self._refresh_all()

    # ---- read-out -----------------------------------------------------------------------------
    @property
    def occupancy(self) -> np.ndarray:
        return self._s["occ"].copy()

    @property
    def time_s(self) -> float:
        return float(self._s["fscal"][0])

    @property
    def steps(self) -> int:
        """KMC events executed (ion hops + electrode events)."""
        return int(self._s["iscal"][1])

    @property
    def hops(self) -> int:
        """Ion hops executed."""
        return int(self._s["iscal"][4])

    @property
    def n_vacancies(self) -> int:
        return int(self._s["iscal"][0])

    @property
    def vacancy_sites(self) -> np.ndarray:
        """Sites of the vacancies (a copy, in the kernel's slot order: not sorted)."""
        s = self._s
        return s["vac_site"][: int(s["iscal"][0])].copy()

    @property
    def total_rate_Hz(self) -> float:
        return float(self._s["tree"][1])

    @property
    def half_A(self) -> float:
        return self.graph.lattice_constant_A / 2.0

    @property
    def species_displacement_half(self) -> np.ndarray:
        """Summed unwrapped displacement of all Br (row 0) and all Cl (row 1) in units of a/2."""
        return self._s["dR"].copy()

    @property
    def species_displacement_A(self) -> np.ndarray:
        return self._s["dR"] * self.half_A

    def _need_tracking(self):
        if not self.track_ions:
            raise InputError("track_ions", False, "per-ion data need Simulation(track_ions=True)")

    @property
    def n_ion_ids(self) -> int:
        self._need_tracking()
        return int(self._s["iscal"][2])

    @property
    def ion_displacement_A(self) -> np.ndarray:
        """Unwrapped displacement of every ion id (ions removed by an electrode keep theirs)."""
        self._need_tracking()
        return self._s["ion_R"][: self.n_ion_ids] * self.half_A

    @property
    def ion_jumps(self) -> np.ndarray:
        self._need_tracking()
        return self._s["ion_nj"][: self.n_ion_ids].copy()

    @property
    def ion_species(self) -> np.ndarray:
        self._need_tracking()
        return self._s["ion_sp"][: self.n_ion_ids].copy()

    def tracer_sums(self) -> dict:
        """Exact integer sums (units of (a/2)²) behind the tracer correlation factors, per species:
        ``window_num``/``window_den`` (f_K) and ``r2``/``jumps_s2`` (f = Σ R²/Σ n s²)."""
        self._need_tracking()
        R = self._s["ion_R"][: self.n_ion_ids]
        nj = self._s["ion_nj"][: self.n_ion_ids]
        sp = self._s["ion_sp"][: self.n_ion_ids]
        r2 = (R * R).sum(axis=1)
        out = {"window_num": self._s["corr"][:, 0].copy(), "window_den": self._s["corr"][:, 1].copy()}
        out["r2"] = np.array([r2[sp == c].sum() for c in (BR, CL)], dtype=np.int64)
        out["jumps_s2"] = np.array([nj[sp == c].sum() * self.geo.s2_half for c in (BR, CL)], dtype=np.int64)
        return out

    def tracer_correlation(self) -> dict:
        """Tracer correlation factors per species: ``f_window`` (f_K) and ``f_msd`` (Σ R²/Σ n s²)."""
        t = self.tracer_sums()
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"f_window": t["window_num"] / t["window_den"], "f_msd": t["r2"] / t["jumps_s2"]}

    def vacancy_residence_s(self) -> np.ndarray:
        """Total time (s) each site has been vacant since the start (up to the current time)."""
        s = self._s
        out = s["vres"].copy()
        nv = self.n_vacancies
        out[s["vac_site"][:nv]] += self.time_s - s["varr"][:nv]
        return out

    @property
    def electrode_counts(self) -> np.ndarray:
        """``[electrode, kind, species]`` event counts; kind 0 creation, 1 annihilation."""
        return self._s["el_count"][: len(self.electrodes)].copy()

    def events(self) -> list[dict]:
        """All currently possible events with their rates (Hz), for inspection and tests."""
        s = self._s
        z = self.geo.nb.shape[1]
        out = []
        for q in range(self.n_vacancies):
            v = int(s["vac_site"][q])
            for k in range(z):
                w = float(s["vrates"][q, k])
                if w > 0:
                    i = int(self.geo.nb[v, k])
                    out.append({"kind": "hop", "from": i, "to": v, "species": int(s["occ"][i]), "rate": w})
            for c in (BR, CL):
                w = float(s["vrates"][q, z + c])
                if w > 0:
                    out.append({"kind": "annihilate", "site": v, "species": c, "rate": w})
        for e, x in enumerate(self.el_sites):
            w = float(s["crate"][e])
            if w > 0:
                out.append({"kind": "create", "site": int(x), "species": int(s["occ"][x]), "rate": w})
        return out

    def state_arrays(self) -> dict:
        """Copies of every dynamic array (for comparisons and diagnostics)."""
        return {k: v.copy() for k, v in self._s.items()}

    # ---- checkpoints --------------------------------------------------------------------------
    def _config(self) -> dict:
        g = self.graph
        return {
            "version": CHECKPOINT_VERSION,
            "graph": {"name": g.name, "cells": list(g.cells), "lattice_constant_A": g.lattice_constant_A,
                      "periodic_z": bool(g.periodic[2])},
            "rate_model": self.rate_model.to_dict(),
            "electrodes": [{"potential_V": e.potential_V, "rate_Hz": e.rate_Hz, "name": e.name,
                            "cl_fraction": e.cl_fraction} for e in self.electrodes],
            "clock": self.clock,
            "track_ions": self.track_ions,
            "tracer_window": self.tracer_window,
            "observers": [{"class": type(o).__name__, "config": o.config()} for o in self.observers],
        }

    def save_checkpoint(self, path) -> Path:
        """Write the complete state (RNG, accumulators, observers) to ``path`` (.npz), atomically."""
        from halide_ionics.io import provenance

        arrays = {f"s_{k}": v for k, v in self._s.items()}
        arrays["site_potentials_V"] = self.site_potentials_V
        for j, e in enumerate(self.electrodes):
            arrays[f"electrode_mask_{j}"] = e.mask
        for j, o in enumerate(self.observers):
            for k, v in o.get_state().items():
                arrays[f"o{j}_{k}"] = np.asarray(v)
        cfg = self._config()
        cfg["provenance"] = provenance()
        arrays["config_json"] = np.array(json.dumps(cfg, sort_keys=True))
        dest = Path(path)
        with atomic_path(dest, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        log.info("checkpoint %s at step %d", dest, self.steps)
        return dest

    @classmethod
    def load_checkpoint(cls, path, graph: SublatticeGraph | None = None, atoms=None) -> "Simulation":
        """Rebuild a simulation (with its observers) from :meth:`save_checkpoint` output.

        ``graph`` defaults to ``build_lattice`` of the saved description; ``atoms`` is passed to
        observers that need a structure (snapshot observer).
        """
        from .observers import OBSERVERS

        p = Path(path)
        if not p.exists():
            raise InputError("checkpoint", str(path), "file does not exist")
        with np.load(p, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        cfg = json.loads(str(data["config_json"]))
        if cfg.get("version") != CHECKPOINT_VERSION:
            raise InputError("checkpoint", str(path), f"unsupported checkpoint version {cfg.get('version')}")
        gd = cfg["graph"]
        if graph is None:
            graph = build_lattice(gd["name"], tuple(gd["cells"]), gd["lattice_constant_A"], gd["periodic_z"])
        elif graph.n_sites != data["s_occ"].size:
            raise InputError("graph", graph.name, "does not match the checkpoint's number of sites")
        electrodes = [Electrode(data[f"electrode_mask_{j}"], e["potential_V"], e["rate_Hz"], e["name"],
                                e.get("cl_fraction"))
                      for j, e in enumerate(cfg["electrodes"])]
        sim = cls(graph, data["s_occ"], RateModel(**cfg["rate_model"]), 0,
                  site_potentials_V=data["site_potentials_V"], electrodes=electrodes, clock=cfg["clock"],
                  track_ions=cfg["track_ions"], tracer_window=cfg["tracer_window"])
        sim._s = {k[2:]: np.array(v) for k, v in data.items() if k.startswith("s_")}
        for j, od in enumerate(cfg["observers"]):
            ocls = OBSERVERS[od["class"]]
            kw = dict(od["config"])
            if getattr(ocls, "needs_atoms", False):
                kw["atoms"] = atoms
            ob = ocls(**kw)
            prefix = f"o{j}_"
            ob.set_state({k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)})
            ob.bind(sim)
            sim.observers.append(ob)
        return sim
