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

Tracer correlation factors: ``f_K = 1 + 2 Σ_{k=1..K} ⟨cos θ_k⟩`` over consecutive jumps of the
same ion (window ``K``, default 8; correlations of more distant jumps are below 1e-5 for the
cubic lattices), which is an unbiased, low-variance estimator of the limit
``f = lim ⟨R²⟩/(n s²)``. The plain ``Σ R²/Σ n s²`` over the whole run (``f_msd``) is reported as
well; it is biased by O(1/n) for n jumps per ion.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from halide_ionics.errors import InputError, check_choice, check_fraction, check_positive, check_positive_int
from halide_ionics.structures import COORDINATION, LATTICES, TRACER_CORRELATION_FACTOR, build_lattice
from halide_ionics.structures.species import BR, CL, VAC

from .rates import RateModel
from .simulation import Simulation


def manning_onsager(c_B: float, w_A: float, w_B: float, f0: float) -> tuple[float, float, float]:
    """Manning / Moleko–Allnatt–Allnatt random-alloy ℓ_AA, ℓ_AB, ℓ_BB (dilute vacancies).

    docs/model.md §3: with M0 = 2f0/(1−f0), ⟨w⟩ = c_A w_A + c_B w_B, w̄ = c_A w_B + c_B w_A and Ω
    the larger root of Ω² − Ω(M0⟨w⟩ + 2w̄) + 2M0 c_A c_B (w_A − w_B)² = 0:
    ℓ_AA = c_A w_A (1 − 2c_B w_A/Ω), ℓ_BB = c_B w_B (1 − 2c_A w_B/Ω), ℓ_AB = 2c_A c_B w_A w_B/Ω.
    """
    cb = check_fraction("c_B", c_B)
    wa = check_positive("w_A", w_A)
    wb = check_positive("w_B", w_B)
    f = float(f0)
    if not 0.0 < f < 1.0:
        raise InputError("f0", f0, "must lie in (0, 1)")
    ca = 1.0 - cb
    m0 = 2.0 * f / (1.0 - f)
    wm = ca * wa + cb * wb
    wx = ca * wb + cb * wa
    b = m0 * wm + 2.0 * wx
    om = 0.5 * (b + np.sqrt(max(b * b - 8.0 * m0 * ca * cb * (wa - wb) ** 2, 0.0)))
    return (ca * wa * (1.0 - 2.0 * cb * wa / om), 2.0 * ca * cb * wa * wb / om, cb * wb * (1.0 - 2.0 * ca * wb / om))


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
    while done < hops:
        n = min(seg, hops - done)
        r0 = sim.species_displacement_half.astype(np.float64)
        t0 = sim.time_s
        sim.run(hops=n)
        d = sim.species_displacement_half.astype(np.float64) - r0
        a += d @ d.T
        t_tot += sim.time_s - t0
        done += n
    out = {"A": a, "T": t_tot, "hops": sim.hops}
    if task["track_ions"]:
        out.update(sim.tracer_sums())
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
    hops: int
    wall_seconds: float
    manning: tuple[float, float, float]

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
            "f_br": self.f_window[0], "f_cl": self.f_window[1],
            "f_br_se": self.f_window_se[0], "f_cl_se": self.f_window_se[1],
            "f_msd_br": self.f_msd[0], "f_msd_cl": self.f_msd[1],
            "min_eigenvalue": self.min_eigenvalue, "psd": bool(self.min_eigenvalue >= 0.0),
            "manning": {"l_brbr": self.manning[0], "l_brcl": self.manning[1], "l_clcl": self.manning[2]},
            "isotope_limit": {"l_brbr": ca * (ca + cb * f0), "l_brcl": ca * cb * (1 - f0),
                              "l_clcl": cb * (cb + ca * f0)},
            "tracer_correlation_exact": f0,
            "hops": self.hops, "wall_seconds": self.wall_seconds,
        }


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
    f0 = TRACER_CORRELATION_FACTOR[lattice]
    w_cl = model.hop_rate_Hz(CL) / w_br
    man = manning_onsager(x_cl, 1.0, w_cl, f0) if 0.0 < x_cl < 1.0 else (
        (1.0 - x_cl) * 1.0, 0.0, x_cl * w_cl)
    return OnsagerResult(lattice=lattice, cells=cells, x_cl=x_cl, rate_ratio=float(w_cl), replicas=replicas,
                         hops_per_replica=hops, seed=int(seed), l=l, l_se=lse, l_vv=l_vv, l_vv_se=l_vv_se,
                         f_window=fw, f_window_se=fws, f_msd=fm, f_msd_se=fms,
                         hops=int(sum(r["hops"] for r in results)), wall_seconds=wall, manning=man)


@dataclass(frozen=True)
class TracerResult:
    lattice: str
    f: float
    se: float
    f_msd: float
    f_msd_se: float
    exact: float
    hops: int


def tracer_correlation(lattice: str, cells: int, replicas: int, hops_per_replica: int, seed: int,
                       executor=None, tracer_window: int = 8) -> TracerResult:
    """Tracer correlation factor of the single-vacancy mechanism (all ions one species)."""
    r = onsager_coefficients(lattice, cells, 0.0, 1.0, replicas, hops_per_replica, seed, executor,
                             tracer_window=tracer_window)
    return TracerResult(lattice=lattice, f=float(r.f_window[0]), se=float(r.f_window_se[0]),
                        f_msd=float(r.f_msd[0]), f_msd_se=float(r.f_msd_se[0]),
                        exact=TRACER_CORRELATION_FACTOR[lattice], hops=r.hops)


__all__ = ["OnsagerResult", "TracerResult", "manning_onsager", "onsager_coefficients", "random_alloy",
           "tracer_correlation"]
