"""Transport estimators with standard errors from independent replicas.

Normalisation (docs/model.md §3): per-vacancy Onsager coefficients

    ℓ_ij = ⟨ΔR_i · ΔR_j⟩ / (z s² t),     i, j ∈ {Br, Cl},

with ΔR_i the summed unwrapped displacement of all i ions, z the coordination, s the jump
length and t the simulated time; with :meth:`RateModel.from_rate_ratio` (``w_Br = 1``) ℓ is in
units of ``w_Br``. Physical coefficients: ``L_ij = c_s x_V z s² ℓ_ij /(6kT)``.

Each replica is one random alloy with one vacancy, run on its own stream from
``SeedSequence(seed).spawn(replicas)`` (so results do not depend on execution order or worker
count), with the mean-residence-time clock. A replica's run is cut into segments of
``segment_hops`` hops; ``Σ_segments ΔR_i·ΔR_j`` and ``Σ t`` per replica enter a ratio estimator
``ℓ = ΣA/(z s² ΣT)`` whose standard error comes from the spread over replicas (delta method),
so correlations between a replica's segments are accounted for.

Tracer correlation factors (``f``, reported as ``f_br``/``f_cl``): per-ion mean squared
displacement over non-overlapping windows of a lag ladder (2^K checkpoints of ≥ N_sites hops),
``f_lag(ℓ) = Σ|ΔR|²/(Σ n s²)`` for windows of ``2^ℓ`` checkpoints. Since ⟨R²⟩ = f n s² + C
(C > 0: the negative correlations cut at the window ends) short windows are biased high by
O(1/n); ``f_ext(ℓ) = (2 S_{ℓ+1} − S_ℓ)/J`` removes the constant. ``f`` is ``f_ext`` at the
window nearest 8 N_sites hops (in log scale) — a rule fixed before the data are seen, so the replica SE is
the whole statistical error (a data-chosen window adds selection scatter that is not in the SE);
``converged`` says the next Richardson step agrees within 3 SE. This holds at any rate ratio —
a fast dilute solute exchanges back and forth with the vacancy for hundreds of jumps. Reported
beside it: ``f_cos8`` (``f_K = 1 + 2 Σ_{k=1..K} ⟨cos θ_k⟩``, K = 8, low variance but biased when
correlations outlast K jumps: 0.70 instead of 0.022 for a dilute solute with w2/w0 = 100),
``f_msd`` (Σ R²/Σ n s² over the whole run, noisy) and the whole ``f_lag`` ladder. Validated
against exact Green-function dilute-solute factors (tests/data/dilute_solute_f.json).

Electrode rate law and equilibrium vacancy fraction (:func:`electrode_rates`): a periodic box
of the perovskite X sublattice, random alloy of Cl fraction c, every site an electrode contact
at potential ψ_el = η (site potentials and field 0) of fixed composition (``Electrode.cl_fraction
= c``: a true ion reservoir, μ_s = kT ln p_s; the local-composition rule would let the box drift
to pure Br, see :mod:`~halide_ionics.kmc.rates`), run grand-canonically. Its stationary state is
the equilibrium ``P ∝ Π_ions p_s · Π_vacancies exp(−(E_V(v) − μ_V − η)/kT)``. For dilute
vacancies a vacancy's shell holds z ions whose species are independent with P(Cl) = c, and an
ion weighs Σ_s p_s = 1 against a vacancy's Boltzmann factor, so (:func:`electrode_reference`)

    x_V/(1 − x_V) = exp(−(E_V,Br − μ_V − η)/kT) · R(c),
    R(c) = ⟨exp(−(E_V(env) − E_V,Br)/kT)⟩_{n_Cl ~ Bin(z, c)} = (1 − c + c e^{−(E_V,Cl − E_V,Br)/(z kT)})^z,

i.e. x_V(c)/x_V(0) = R(c)·(1 − x_V(c))/(1 − x_V(0)). Corrections are O(z x_V) (a vacancy in
another's shell changes its n_ion) and vanish for c = 0 and 1. An ion's species is independent
of its shell, so the creation rate per ion site is
``k_e Σ_n Bin(n) e^{−(E_V(n) − μ_V − η)/2kT} Σ_s p_s K_s(n)`` (∝ e^{+η/2kT}) and the annihilation
rate per vacancy follows from the flux balance ``k_cr (1 − x_V) = k_an x_V`` (∝ e^{−η/2kT}).
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from halide_ionics.errors import InputError, check_choice, check_fraction, check_positive, check_positive_int
from halide_ionics.structures import COORDINATION, LATTICES, TRACER_CORRELATION_FACTOR, build_lattice
from halide_ionics.structures.species import BR, CL, VAC

from .rates import Electrode, RateModel
from .simulation import Simulation


def manning_onsager(c_B: float, w_A: float, w_B: float, f0: float) -> tuple[float, float, float]:
    """Manning / Moleko–Allnatt–Allnatt random-alloy ℓ_AA, ℓ_AB, ℓ_BB (dilute vacancies).

    docs/model.md §3: with M0 = 2f0/(1−f0), ⟨w⟩ = c_A w_A + c_B w_B, w̄ = c_A w_B + c_B w_A and Ω
    the larger root of Ω² − Ω(M0⟨w⟩ + 2w̄) + 2M0 c_A c_B (w_A − w_B)² = 0:
    ℓ_AA = c_A w_A (1 − 2c_B w_A/Ω), ℓ_BB = c_B w_B (1 − 2c_A w_B/Ω), ℓ_AB = 2c_A c_B w_A w_B/Ω.
    """
    from halide_ionics.transport import manning_maa

    cb = check_fraction("c_B", c_B)
    wa = check_positive("w_A", w_A)
    wb = check_positive("w_B", w_B)
    f = float(f0)
    if not 0.0 < f < 1.0:
        raise InputError("f0", f0, "must lie in (0, 1)")
    l_aa, l_ab, l_bb = manning_maa(cb, wa, wb, f)
    return float(l_aa), float(l_ab), float(l_bb)


def _ratio_se(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Ratio-of-sums estimate ΣA/ΣB and its delta-method standard error over replicas."""
    k = a.size
    r = a.sum() / b.sum()
    if k < 2:
        return float(r), float("nan")
    resid = a - r * b
    se = np.sqrt((resid ** 2).sum() / (k * (k - 1))) / b.mean()
    return float(r), float(se)


@functools.lru_cache(maxsize=8)
def _lattice(name: str, cells: int, a: float):
    return build_lattice(name, cells, a, True)


def random_alloy(n_sites: int, x_cl: float, n_vacancies: int, rng: np.random.Generator) -> np.ndarray:
    """Occupancy with ``n_vacancies`` vacancies and round(x_cl·(N − n_vac)) Cl ions placed at random."""
    occ = np.full(n_sites, BR, dtype=np.int8)
    perm = rng.permutation(n_sites)
    occ[perm[:n_vacancies]] = VAC
    n_cl = int(round(x_cl * (n_sites - n_vacancies)))
    occ[perm[n_vacancies:n_vacancies + n_cl]] = CL
    return occ


def _ladder_levels(hops: int, n_sites: int) -> tuple[int, int]:
    """(K, hops per checkpoint) of the tracer lag ladder: 2^K checkpoints, each of at least
    ~N_sites hops (every ion's vacancy encounters are mostly inside one lag), K ≤ 12."""
    k = int(np.clip(np.floor(np.log2(max(hops, 1) / max(n_sites, 1))), 1, 12))
    return k, max(1, hops // 2 ** k)


class _Ladder:
    """Per-ion MSD over non-overlapping windows of 2^ℓ checkpoints, ℓ = 0..K (exact integers).

    ``S[ℓ, c] = Σ_windows Σ_{ions of species c} |R(end) − R(start)|²`` (units (a/2)²) and the jumps
    ``J[c]`` made inside them (the same for every ℓ: the windows of each level tile the run).
    """

    def __init__(self, sim: Simulation, k: int):
        self.k = k
        self.m = 0
        self.S = np.zeros((k + 1, 2), dtype=np.int64)
        self.J = np.zeros(2, dtype=np.int64)
        n = sim.n_ion_ids
        self.sp = sim._s["ion_sp"][:n].copy()
        r0 = sim._s["ion_R"][:n].copy()
        self.start = [r0.copy() for _ in range(k + 1)]
        self.nj0 = sim._s["ion_nj"][:n].copy()

    def checkpoint(self, sim: Simulation) -> None:
        n = self.sp.size
        r = sim._s["ion_R"][:n]
        self.m += 1
        for lev in range(self.k + 1):
            if self.m % (1 << lev):
                break
            d = r - self.start[lev]
            d2 = (d * d).sum(axis=1)
            self.S[lev] += np.bincount(self.sp, weights=d2, minlength=2)[:2].astype(np.int64)
            self.start[lev] = r.copy()
        if self.m == 1 << self.k:
            nj = sim._s["ion_nj"][:n] - self.nj0
            self.J[:] = np.bincount(self.sp, weights=nj, minlength=2)[:2].astype(np.int64)


def _replica(task: dict) -> dict:
    """One independent replica (module level so that process pools can pickle it)."""
    g = _lattice(task["lattice"], task["cells"], task["lattice_constant_A"])
    rng = np.random.default_rng(task["seed_seq"])
    occ = random_alloy(g.n_sites, task["x_cl"], 1, rng)
    sim = Simulation(g, occ, RateModel(**task["rate_model"]), rng, clock="mean",
                     track_ions=task["track_ions"], tracer_window=task["tracer_window"])
    if task["equilibration_hops"]:
        sim.run(hops=task["equilibration_hops"])
        sim = _reset_accumulators(sim)
    a = np.zeros((2, 2))
    t_tot = 0.0
    done = 0
    hops = task["hops"]
    seg = task["segment_hops"]
    ladder = None
    if task["track_ions"]:
        k, lseg = _ladder_levels(hops, g.n_sites)
        ladder = _Ladder(sim, k)
        lend = lseg << k
    next_seg = min(seg, hops)
    r0 = sim.species_displacement_half.astype(np.float64)
    t0 = sim.time_s
    while done < hops:
        stop = next_seg
        if ladder is not None and ladder.m < (1 << ladder.k):
            stop = min(stop, (ladder.m + 1) * lseg)
        sim.run(hops=stop - done)
        done = stop
        if ladder is not None and ladder.m < (1 << ladder.k) and done == (ladder.m + 1) * lseg and done <= lend:
            ladder.checkpoint(sim)
        if done == next_seg:
            d = sim.species_displacement_half.astype(np.float64) - r0
            a += d @ d.T
            t_tot += sim.time_s - t0
            r0 = sim.species_displacement_half.astype(np.float64)
            t0 = sim.time_s
            next_seg = min(next_seg + seg, hops)
    out = {"A": a, "T": t_tot, "hops": sim.hops}
    if task["track_ions"]:
        out.update(sim.tracer_sums())
        out["ladder_S"] = ladder.S
        out["ladder_J"] = ladder.J * sim.geo.s2_half
    return out


def _reset_accumulators(sim: Simulation) -> Simulation:
    """Zero the transport accumulators after equilibration (state and RNG are kept)."""
    s = sim._s
    for k in ("dR", "ion_R", "ion_nj", "ring", "ion_W", "corr", "vres"):
        s[k][...] = 0
    s["varr"][...] = sim.time_s
    return sim


@dataclass(frozen=True)
class OnsagerResult:
    """Per-vacancy Onsager matrix (units of w_Br), tracer correlation factors, errors, checks."""

    lattice: str
    cells: int
    x_cl: float
    rate_ratio: float
    replicas: int
    hops_per_replica: int
    seed: int
    l: np.ndarray  # (2, 2) [[Br-Br, Br-Cl], [Cl-Br, Cl-Cl]]
    l_se: np.ndarray
    l_vv: float
    l_vv_se: float
    f_window: np.ndarray  # (2,) Br, Cl
    f_window_se: np.ndarray
    f_msd: np.ndarray
    f_msd_se: np.ndarray
    ladder: dict | None
    hops: int
    wall_seconds: float
    manning: tuple[float, float, float]

    @property
    def f(self) -> np.ndarray:
        """Tracer correlation factors (Br, Cl): per-ion MSD of the lag ladder, Richardson-extrapolated
        in the window length (``ladder["f"]``, module docstring); without per-ion tracking NaN."""
        return np.asarray(self.ladder["f"], dtype=float) if self.ladder else np.full(2, np.nan)

    @property
    def f_se(self) -> np.ndarray:
        return np.asarray(self.ladder["f_se"], dtype=float) if self.ladder else np.full(2, np.nan)

    @property
    def min_eigenvalue(self) -> float:
        """Smallest eigenvalue of ℓ (≥ 0: positive semi-definite)."""
        return float(np.linalg.eigvalsh(self.l).min())

    def to_dict(self) -> dict:
        l, se = self.l, self.l_se
        f0 = TRACER_CORRELATION_FACTOR[self.lattice]
        ca, cb = 1.0 - self.x_cl, self.x_cl
        return {
            "lattice": self.lattice, "cells": self.cells, "x_cl": self.x_cl, "rate_ratio": self.rate_ratio,
            "replicas": self.replicas, "hops_per_replica": self.hops_per_replica, "seed": self.seed,
            "l_brbr": l[0, 0], "l_brcl": l[0, 1], "l_clcl": l[1, 1],
            "l_brbr_se": se[0, 0], "l_brcl_se": se[0, 1], "l_clcl_se": se[1, 1],
            "l_vv": self.l_vv, "l_vv_se": self.l_vv_se,
            "f_estimator": "per-ion MSD, Richardson between windows f_window_hops and twice that",
            "f_br": self.f[0], "f_cl": self.f[1], "f_br_se": self.f_se[0], "f_cl_se": self.f_se[1],
            "f_converged": [bool(x) for x in self.ladder["converged"]] if self.ladder else None,
            "f_convergence_z": self.ladder["convergence_z"].tolist() if self.ladder else None,
            "f_window_hops": [int(self.ladder["window_hops"][v]) for v in self.ladder["level"]] if self.ladder else None,
            "f_cos8_br": self.f_window[0], "f_cos8_cl": self.f_window[1],
            "f_cos8_br_se": self.f_window_se[0], "f_cos8_cl_se": self.f_window_se[1],
            "f_msd_br": self.f_msd[0], "f_msd_cl": self.f_msd[1],
            "f_msd_br_se": self.f_msd_se[0], "f_msd_cl_se": self.f_msd_se[1],
            "f_lag": ({"window_hops": self.ladder["window_hops"].tolist(),
                       "f_br": self.ladder["f_lag"][:, 0].tolist(), "f_cl": self.ladder["f_lag"][:, 1].tolist(),
                       "f_br_se": self.ladder["f_lag_se"][:, 0].tolist(),
                       "f_cl_se": self.ladder["f_lag_se"][:, 1].tolist()} if self.ladder else None),
            "min_eigenvalue": self.min_eigenvalue, "psd": bool(self.min_eigenvalue >= 0.0),
            "manning": {"l_brbr": self.manning[0], "l_brcl": self.manning[1], "l_clcl": self.manning[2]},
            "isotope_limit": {"l_brbr": ca * (ca + cb * f0), "l_brcl": ca * cb * (1 - f0),
                              "l_clcl": cb * (cb + ca * f0)},
            "tracer_correlation_exact": f0,
            "hops": self.hops, "wall_seconds": self.wall_seconds,
        }


def _ladder_estimates(results: list, hops: int, n_sites: int) -> dict:
    """Tracer correlation factors from the per-ion MSD lag ladder of every replica.

    ``f_lag[ℓ] = ΣS_ℓ/ΣJ`` (MSD over windows of 2^ℓ checkpoints per jump length²; biased low by
    the window ends, O(1/jumps per window)); ``f_ext[ℓ] = (2ΣS_{ℓ+1} − ΣS_ℓ)/ΣJ`` removes the
    constant end offset of ⟨R²⟩ = f n s² − C (Richardson step in the window length), standard
    errors over replicas (ratio of sums, delta method).
    """
    k, lseg = _ladder_levels(hops, n_sites)
    S = np.stack([r["ladder_S"] for r in results]).astype(float)  # (replicas, k+1, 2)
    J = np.stack([r["ladder_J"] for r in results]).astype(float)  # (replicas, 2)
    f_lag = np.full((k + 1, 2), np.nan)
    f_lag_se = np.full((k + 1, 2), np.nan)
    f_ext = np.full((k, 2), np.nan)
    f_ext_se = np.full((k, 2), np.nan)
    for c in (BR, CL):
        if J[:, c].sum() <= 0:
            continue
        for lev in range(k + 1):
            f_lag[lev, c], f_lag_se[lev, c] = _ratio_se(S[:, lev, c], J[:, c])
        for lev in range(k):
            f_ext[lev, c], f_ext_se[lev, c] = _ratio_se(2 * S[:, lev + 1, c] - S[:, lev, c], J[:, c])
    # the window: nearest 8 N_sites hops (the vacancy has visited every site several
    # times), and Richardson with the doubled window; fixed before looking at the data, so the
    # replica SE is the whole error. Convergence check: the next Richardson step agrees (|z| < 3).
    lev = int(min(max(np.round(np.log2(8 * n_sites / lseg)), 0), k - 1))
    f = f_ext[lev].copy()
    f_se = f_ext_se[lev].copy()
    conv_z = np.full(2, np.nan)
    if lev + 1 < k:
        for c in (BR, CL):
            if J[:, c].sum() > 0:
                d, dse = _ratio_se((2 * S[:, lev + 2, c] - S[:, lev + 1, c]) - (2 * S[:, lev + 1, c] - S[:, lev, c]),
                                   J[:, c])
                conv_z[c] = d / dse if dse > 0 else np.nan
    level = np.array([lev, lev])
    converged = np.abs(conv_z) < 3.0
    return {"levels": k, "checkpoint_hops": lseg, "window_hops": lseg * 2 ** np.arange(k + 1),
            "f_lag": f_lag, "f_lag_se": f_lag_se, "f_ext": f_ext, "f_ext_se": f_ext_se,
            "f": f, "f_se": f_se, "level": level, "converged": converged, "convergence_z": conv_z}


def onsager_coefficients(lattice: str, cells: int, x_cl: float, rate_ratio: float, replicas: int,
                         hops_per_replica: int, seed: int, executor=None, *, segment_hops: int | None = None,
                         track_ions: bool = True, tracer_window: int = 8, rate_model: RateModel | None = None,
                         equilibration_hops: int = 0, lattice_constant_A: float = 5.8) -> OnsagerResult:
    """Per-vacancy Onsager coefficients of a random Br/Cl alloy with one vacancy per replica.

    Parameters
    ----------
    lattice, cells : lattice name and cubic cells per side (periodic in all directions).
    x_cl : Cl fraction of the ions. rate_ratio : w_Cl/w_Br (zero field, no site energies).
    replicas : independent replicas (≥ 2). hops_per_replica : hops per replica.
    seed : int; replica k uses ``SeedSequence(seed).spawn(replicas)[k]``.
    executor : ``concurrent.futures.Executor`` (e.g. a process pool) or None (serial).
    segment_hops : hops per displacement segment (default min(hops, max(2000, 4 N))).
    rate_model : overrides ``rate_ratio`` (e.g. with composition-dependent formation energies;
        then use ``equilibration_hops``); ℓ is reported in units of its bare w_Br.
    """
    check_choice("lattice", lattice, LATTICES)
    cells = check_positive_int("cells", cells)
    x_cl = check_fraction("x_cl", x_cl)
    rate_ratio = check_positive("rate_ratio", rate_ratio)
    replicas = check_positive_int("replicas", replicas)
    if replicas < 2:
        raise InputError("replicas", replicas, "need at least 2 replicas for a standard error")
    hops = check_positive_int("hops_per_replica", hops_per_replica)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("seed", seed, "must be a non-negative integer")
    if equilibration_hops < 0:
        raise InputError("equilibration_hops", equilibration_hops, "must be non-negative")
    model = RateModel.from_rate_ratio(rate_ratio) if rate_model is None else rate_model
    g = _lattice(lattice, cells, float(lattice_constant_A))
    Simulation(g, random_alloy(g.n_sites, x_cl, 1, np.random.default_rng(0)), model, 0)  # validates
    seg = min(hops, max(2000, 4 * g.n_sites)) if segment_hops is None else check_positive_int("segment_hops", segment_hops)
    children = np.random.SeedSequence(int(seed)).spawn(replicas)
    tasks = [dict(lattice=lattice, cells=cells, lattice_constant_A=float(lattice_constant_A), x_cl=x_cl,
                  rate_model=model.to_dict(), hops=hops, segment_hops=seg, seed_seq=ss, track_ions=track_ions,
                  tracer_window=tracer_window, equilibration_hops=int(equilibration_hops)) for ss in children]
    t0 = time.perf_counter()
    results = list(map(_replica, tasks)) if executor is None else list(executor.map(_replica, tasks))
    wall = time.perf_counter() - t0

    geo_s2 = float((g.jump_vectors_A[0, 0] ** 2).sum()) / (g.lattice_constant_A / 2) ** 2
    z = COORDINATION[lattice]
    w_br = model.hop_rate_Hz(BR)
    T = np.array([r["T"] for r in results]) * z * geo_s2 * w_br
    A = np.stack([r["A"] for r in results])
    l = np.zeros((2, 2))
    lse = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            l[i, j], lse[i, j] = _ratio_se(A[:, i, j], T)
    avv = A[:, 0, 0] + 2 * A[:, 0, 1] + A[:, 1, 1]
    l_vv, l_vv_se = _ratio_se(avv, T)
    fw = np.full(2, np.nan)
    fws = np.full(2, np.nan)
    fm = np.full(2, np.nan)
    fms = np.full(2, np.nan)
    if track_ions:
        for c in (BR, CL):
            num = np.array([r["window_num"][c] for r in results], dtype=float)
            den = np.array([r["window_den"][c] for r in results], dtype=float)
            if den.sum() > 0:
                fw[c], fws[c] = _ratio_se(num, den)
            num = np.array([r["r2"][c] for r in results], dtype=float)
            den = np.array([r["jumps_s2"][c] for r in results], dtype=float)
            if den.sum() > 0:
                fm[c], fms[c] = _ratio_se(num, den)
    ladder = _ladder_estimates(results, hops, g.n_sites) if track_ions else None
    f0 = TRACER_CORRELATION_FACTOR[lattice]
    w_cl = model.hop_rate_Hz(CL) / w_br
    man = manning_onsager(x_cl, 1.0, w_cl, f0) if 0.0 < x_cl < 1.0 else (
        (1.0 - x_cl) * 1.0, 0.0, x_cl * w_cl)
    return OnsagerResult(lattice=lattice, cells=cells, x_cl=x_cl, rate_ratio=float(w_cl), replicas=replicas,
                         hops_per_replica=hops, seed=int(seed), l=l, l_se=lse, l_vv=l_vv, l_vv_se=l_vv_se,
                         f_window=fw, f_window_se=fws, f_msd=fm, f_msd_se=fms, ladder=ladder,
                         hops=int(sum(r["hops"] for r in results)), wall_seconds=wall, manning=man)


@dataclass(frozen=True)
class TracerResult:
    lattice: str
    f: float
    se: float
    f_window: float
    f_window_se: float
    f_msd: float
    f_msd_se: float
    exact: float
    hops: int


def tracer_correlation(lattice: str, cells: int, replicas: int, hops_per_replica: int, seed: int,
                       executor=None, tracer_window: int = 8) -> TracerResult:
    """Tracer correlation factor of the single-vacancy mechanism (all ions one species)."""
    r = onsager_coefficients(lattice, cells, 0.0, 1.0, replicas, hops_per_replica, seed, executor,
                             tracer_window=tracer_window)
    return TracerResult(lattice=lattice, f=float(r.f[0]), se=float(r.f_se[0]),
                        f_window=float(r.f_window[0]), f_window_se=float(r.f_window_se[0]),
                        f_msd=float(r.f_msd[0]), f_msd_se=float(r.f_msd_se[0]),
                        exact=TRACER_CORRELATION_FACTOR[lattice], hops=r.hops)


# ---- electrode rate law and equilibrium vacancy fraction ----------------------------------------
def _seed_sequence(seed) -> np.random.SeedSequence:
    """An int or a SeedSequence as a fresh SeedSequence (a given one is copied, so spawning from
    it never depends on how often the caller's object was spawned from before)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("seed", seed, "must be a non-negative integer or a numpy SeedSequence")
    return np.random.SeedSequence(int(seed))


def _electrode_model(rate_model: RateModel) -> RateModel:
    import dataclasses

    return dataclasses.replace(rate_model, field_V_per_A=0.0)


def electrode_reference(x_cl: float, overpotential_V: float, rate_model: RateModel,
                        electrode_rate_Hz: float | None = None, coordination: int = 8) -> dict:
    """Dilute-vacancy closed form of what :func:`electrode_rates` measures (module docstring).

    Returns ``vacancy_fraction``, ``vacancy_odds_ratio`` R(c) = [x_V/(1−x_V)](c)/[x_V/(1−x_V)](0)
    at the same μ_V and η, ``creation_rate_Hz`` (per ion site) and ``annihilation_rate_Hz``
    (per vacancy). ``electrode_rate_Hz`` defaults to the bare Br hop rate ν e^{−E_a,Br/kT}.
    """
    import math

    c = check_fraction("x_cl", x_cl)
    m = _electrode_model(rate_model)
    z = int(coordination)
    kt = m.kT_eV
    ke = m.hop_rate_Hz(BR) if electrode_rate_Hz is None else check_positive("electrode_rate_Hz", electrode_rate_Hz)
    n = np.arange(z + 1)
    binom = np.array([math.comb(z, k) for k in n], dtype=float) * c ** n * (1.0 - c) ** (z - n)
    ev = m.vacancy_energy_table(z)[:, z]  # E_V(n_Cl, n_ion = z)
    e_ref = m.vacancy_formation_br_eV
    de = ev - m.vacancy_reservoir_eV - float(overpotential_V)  # creation energy of an isolated vacancy
    ks = m.electrode_species_table(z)  # (2, z+1)
    species = (1.0 - c) * ks[0] + c * ks[1]
    odds_ratio = float((binom * np.exp(-(ev - e_ref) / kt)).sum())
    y = float(np.exp(-(e_ref - m.vacancy_reservoir_eV - float(overpotential_V)) / kt)) * odds_ratio
    x_v = y / (1.0 + y)
    k_cr = ke * float((binom * np.exp(-de / (2 * kt)) * species).sum())
    return {"vacancy_fraction": x_v, "vacancy_odds_ratio": odds_ratio, "creation_rate_Hz": k_cr,
            "annihilation_rate_Hz": k_cr / y, "electrode_rate_Hz": ke}


def _electrode_replica(task: dict) -> dict:
    """One grand-canonical replica of :func:`electrode_rates` (module level: picklable)."""
    g = _lattice("perovskite-x", task["cells"], task["lattice_constant_A"])
    n = g.n_sites
    rng = np.random.default_rng(task["seed_seq"])
    n_vac = int(rng.binomial(n, task["x_v_guess"]))
    occ = random_alloy(n, task["x_cl"], n_vac, rng)
    el = Electrode(np.ones(n, dtype=bool), task["overpotential_V"], task["electrode_rate_Hz"], "contact",
                   cl_fraction=task["x_cl"])
    sim = Simulation(g, occ, RateModel(**task["rate_model"]), rng, electrodes=[el])
    if task["equilibration_events"]:
        sim.run(hops=task["equilibration_events"])
    sim = _reset_accumulators(sim)
    c0 = sim.electrode_counts[0].copy()
    t0, h0 = sim.time_s, sim.hops
    sim.run(hops=task["events"])
    counts = sim.electrode_counts[0] - c0  # [kind, species]
    t = sim.time_s - t0
    vac_time = float(sim.vacancy_residence_s().sum())  # ∫ N_vac dt over the measurement
    occ = sim.occupancy
    ions = occ != VAC
    return {"counts": counts, "T": t, "vac_time": vac_time, "site_time": n * t, "hops": sim.hops - h0,
            "x_cl_end": float((occ == CL).sum() / max(ions.sum(), 1)), "n_sites": n}


@dataclass(frozen=True)
class ElectrodeRatesResult:
    """Electrode rate law and vacancy fraction of a contact of Cl fraction ``x_cl`` at overpotential
    ``overpotential_V``; rates in Hz with standard errors over replicas (ratio-of-sums, delta method)."""

    x_cl: float
    overpotential_V: float
    cells: int
    replicas: int
    events_per_replica: int
    equilibration_events: int
    electrode_rate_Hz: float
    creation_rate_Hz: float  # per ion site
    creation_rate_se_Hz: float
    annihilation_rate_Hz: float  # per vacancy
    annihilation_rate_se_Hz: float
    vacancy_fraction: float  # time average
    vacancy_fraction_se: float
    creation_flux_Hz: float  # creation·(1 − x_V): creations per site and second
    creation_flux_se_Hz: float
    annihilation_flux_Hz: float  # annihilation·x_V
    annihilation_flux_se_Hz: float
    balance_residual_Hz: float  # creation·(1 − x_V) − annihilation·x_V = Σ ΔN_vac / Σ N t
    balance_residual_se_Hz: float  # its spread over replicas (ΔN_vac is a small integer)
    counts: np.ndarray  # [kind (0 creation, 1 annihilation), species (0 Br, 1 Cl)], all replicas
    x_cl_end: float  # Cl fraction of the ions at the end, mean over replicas
    hops: int
    time_s: float  # simulated time, all replicas
    wall_seconds: float
    reference: dict  # electrode_reference(...) (dilute closed form)

    def to_dict(self) -> dict:
        out = {f: getattr(self, f) for f in (
            "x_cl", "overpotential_V", "cells", "replicas", "events_per_replica", "equilibration_events",
            "electrode_rate_Hz", "creation_rate_Hz", "creation_rate_se_Hz", "annihilation_rate_Hz",
            "annihilation_rate_se_Hz", "vacancy_fraction", "vacancy_fraction_se", "creation_flux_Hz",
            "creation_flux_se_Hz", "annihilation_flux_Hz", "annihilation_flux_se_Hz", "balance_residual_Hz",
            "balance_residual_se_Hz", "x_cl_end", "hops", "time_s", "wall_seconds")}
        c = np.asarray(self.counts)
        out.update(creations_br=int(c[0, 0]), creations_cl=int(c[0, 1]), annihilations_br=int(c[1, 0]),
                   annihilations_cl=int(c[1, 1]), reference=dict(self.reference))
        return out


def electrode_rates(x_cl: float, overpotential_V: float, rate_model: RateModel, cells: int, replicas: int,
                    events_per_replica: int, seed, *, electrode_rate_Hz: float | None = None,
                    equilibration_events: int | None = None, lattice_constant_A: float = 5.8,
                    executor=None) -> ElectrodeRatesResult:
    """Electrode creation/annihilation rates and the equilibrium vacancy fraction at one contact
    composition and overpotential (module docstring; deterministic, module level, picklable).

    Parameters
    ----------
    x_cl : Cl fraction of the ions (random alloy) and of the ions the electrode supplies.
    overpotential_V : electrode potential ψ_el relative to the (zero) site potentials (V).
    rate_model : RateModel; its uniform field is ignored (periodic box). μ_V
        (``vacancy_reservoir_eV``) sets the absolute vacancy level
        (:meth:`RateModel.reservoir_for_vacancy_fraction`).
    cells : cubic cells per side of the periodic perovskite-X box (3 N_cells³ sites, ≥ 3).
    replicas : independent replicas (≥ 2); replica k uses ``seed.spawn(replicas)[k]``.
    events_per_replica : KMC events (hops and electrode events) measured per replica.
    seed : non-negative int or ``numpy.random.SeedSequence`` (copied, never advanced).
    electrode_rate_Hz : k_e; default the bare Br hop rate ν e^{−E_a,Br/kT} (the electrode saddle
        like a hop).
    equilibration_events : events before measuring (default events_per_replica // 5); each
        replica starts from a random alloy with Binomial(N, x_V^ref) vacancies.
    executor : optional ``concurrent.futures.Executor`` for the replicas (results do not depend
        on it).
    """
    x_cl = check_fraction("x_cl", x_cl)
    eta = float(overpotential_V)
    if not np.isfinite(eta):
        raise InputError("overpotential_V", overpotential_V, "must be finite")
    if not isinstance(rate_model, RateModel):
        raise InputError("rate_model", type(rate_model).__name__, "must be a RateModel")
    cells = check_positive_int("cells", cells)
    if cells < 3:
        raise InputError("cells", cells, "use at least 3 cells (periodic box)")
    replicas = check_positive_int("replicas", replicas)
    if replicas < 2:
        raise InputError("replicas", replicas, "need at least 2 replicas for a standard error")
    events = check_positive_int("events_per_replica", events_per_replica)
    if equilibration_events is None:
        equilibration_events = events // 5
    if isinstance(equilibration_events, bool) or int(equilibration_events) != equilibration_events \
            or equilibration_events < 0:
        raise InputError("equilibration_events", equilibration_events, "must be a non-negative integer")
    root = _seed_sequence(seed)
    model = _electrode_model(rate_model)
    ref = electrode_reference(x_cl, eta, model, electrode_rate_Hz)
    ke = ref["electrode_rate_Hz"]
    children = root.spawn(replicas)
    tasks = [dict(cells=cells, lattice_constant_A=float(lattice_constant_A), x_cl=x_cl, overpotential_V=eta,
                  electrode_rate_Hz=ke, rate_model=model.to_dict(), x_v_guess=min(ref["vacancy_fraction"], 0.5),
                  equilibration_events=int(equilibration_events), events=events, seed_seq=ss)
             for ss in children]
    t0 = time.perf_counter()
    res = list(map(_electrode_replica, tasks)) if executor is None else list(executor.map(_electrode_replica, tasks))
    wall = time.perf_counter() - t0

    counts = np.stack([r["counts"] for r in res]).astype(float)  # (replicas, kind, species)
    n_cr = counts[:, 0].sum(axis=1)
    n_an = counts[:, 1].sum(axis=1)
    vac_t = np.array([r["vac_time"] for r in res])
    site_t = np.array([r["site_time"] for r in res])
    ion_t = site_t - vac_t
    k_cr, k_cr_se = _ratio_se(n_cr, ion_t)
    k_an, k_an_se = _ratio_se(n_an, vac_t) if vac_t.sum() > 0 else (float("nan"), float("nan"))
    x_v, x_v_se = _ratio_se(vac_t, site_t)
    f_cr, f_cr_se = _ratio_se(n_cr, site_t)
    f_an, f_an_se = _ratio_se(n_an, site_t)
    bal, bal_se = _ratio_se(n_cr - n_an, site_t)
    return ElectrodeRatesResult(
        x_cl=x_cl, overpotential_V=eta, cells=cells, replicas=replicas, events_per_replica=events,
        equilibration_events=int(equilibration_events), electrode_rate_Hz=ke,
        creation_rate_Hz=k_cr, creation_rate_se_Hz=k_cr_se, annihilation_rate_Hz=k_an,
        annihilation_rate_se_Hz=k_an_se, vacancy_fraction=x_v, vacancy_fraction_se=x_v_se,
        creation_flux_Hz=f_cr, creation_flux_se_Hz=f_cr_se, annihilation_flux_Hz=f_an,
        annihilation_flux_se_Hz=f_an_se, balance_residual_Hz=bal, balance_residual_se_Hz=bal_se,
        counts=counts.sum(axis=0).astype(np.int64), x_cl_end=float(np.mean([r["x_cl_end"] for r in res])),
        hops=int(sum(r["hops"] for r in res)), time_s=float(sum(r["T"] for r in res)), wall_seconds=wall,
        reference=ref)


__all__ = ["ElectrodeRatesResult", "OnsagerResult", "TracerResult", "electrode_rates", "electrode_reference",
           "manning_onsager", "onsager_coefficients", "random_alloy", "tracer_correlation"]

