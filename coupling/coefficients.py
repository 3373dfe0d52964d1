"""Coefficient-generation runs: KMC sweeps over composition → one labelled NetCDF table.

What is computed (all on the perovskite X sublattice, with the material's KMC rate model:
species barriers, composition-dependent vacancy formation energy, T):

* per-vacancy Onsager coefficients ℓ_ij(c) (Hz) and tracer correlation factors f_Br, f_Cl, with
  standard errors from independent replicas (one vacancy per replica, random alloy);
* the electrode rate law and the equilibrium vacancy fraction: grand-canonical KMC of a contact
  (every site exchanges vacancies with the electrode) at each composition and a few overpotentials:
  creation rate per ion site, annihilation rate per vacancy and the time-averaged vacancy
  fraction, with standard errors. x_V^eq(c) relative to pure CsPbBr3 comes from the zero-overpotential
  runs; its absolute level is the material's ``vacancy_fraction_br``.

Tasks run through :func:`halide_ionics.coupling.sweep.run_sweep` (any ``concurrent.futures``
executor; resumable; RNG stream per task from ``SeedSequence(seed, spawn_key=(kind, index))``),
and the assembled table is cached under a content hash of the material, the configuration, the
seed, the package version and the code that computes it (:func:`halide_ionics.coupling.sweep.code_hash`).
A cached table carries its key, seed, configuration hash and a checksum of its arrays; a table that
is unreadable, damaged or belongs to another key/seed is reported with a warning and recomputed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from halide_ionics import __version__
from halide_ionics.errors import InputError, check_positive_int
from halide_ionics.io import provenance_attrs, write_netcdf_atomic

from .materials import CSPB_BR_CL_298K, Material
from .sweep import Task, code_hash, content_hash, default_cache_dir, run_sweep

log = logging.getLogger(__name__)

#: Layout version of the table (variables and their meaning); the code hash covers the rest.
TABLE_SCHEMA = 2  # 2: f is the per-ion MSD ladder estimator (was the 8-jump cosine window)


#: Relative standard error of the diagonal ℓ_ii times sqrt(replicas · hops per replica), measured
#: with the material's rate model on 6³ perovskite-X cells over x_Cl = 0.05–0.95 (8×400k and
#: 16×200k hops): ℓ_BrBr 30–49, ℓ_ClCl 29–68 (ℓ_BrCl 150–1500: it is small and a difference of
#: large correlated terms). The budget rule uses the upper ends.
ONSAGER_SE_KAPPA = {"l_brbr": 50.0, "l_clcl": 70.0, "l_brcl": 1500.0}


def onsager_rel_se(replicas: int, hops_per_replica: int) -> dict:
    """The relative SE per Onsager coefficient that a (replicas, hops) budget delivers (upper
    estimate from :data:`ONSAGER_SE_KAPPA`)."""
    n = float(replicas) * float(hops_per_replica)
    return {k: v / np.sqrt(n) for k, v in ONSAGER_SE_KAPPA.items()}

#: Upper bounds on the run sizes: beyond them a run cannot finish in reasonable memory/time.
MAX_COMPOSITIONS = 1001
MAX_CELLS = 64          # 3 * 64^3 = 786k halide sites per replica
MAX_REPLICAS = 10_000
MAX_EVENTS = 10**12


@dataclass(frozen=True)
class CoefficientConfig:
    """Sizes of the coefficient-generation runs.

    The defaults (8 replicas × 400 000 hops) give ~2 % SE on ℓ_BrBr and ℓ_ClCl (≤ 2.8 % and
    ≤ 3.9 % by :func:`onsager_rel_se`; measured 1.7–2.8 % and 1.6–3.8 %) and 10–80 % on ℓ_BrCl,
    in ~1 min on 2 cores. :meth:`for_target_se` sets the hop budget from a target relative SE.
    """

    compositions: int = 21
    onsager_cells: int = 6
    onsager_replicas: int = 8
    onsager_hops_per_replica: int = 400_000
    onsager_equilibration_hops: int = 20_000
    electrode_cells: int = 6
    electrode_replicas: int = 4
    electrode_events_per_replica: int = 60_000
    #: vacancy fraction of pure CsPbBr3 in the electrode KMC (dilute but countable; the
    #: composition dependence, not this level, is what the continuum takes)
    electrode_kmc_vacancy_fraction: float = 2e-3
    #: electrode overpotentials (V) at which the rate law's potential dependence (transfer
    #: coefficient) is measured, at the compositions ``transfer_compositions``; every
    #: composition is measured at zero overpotential
    overpotentials_V: tuple = (-0.05, 0.0, 0.05)
    transfer_compositions: tuple = (0.0, 0.5, 0.9)

    def __post_init__(self):
        for f in ("compositions", "onsager_cells", "onsager_replicas", "onsager_hops_per_replica",
                  "electrode_cells", "electrode_replicas", "electrode_events_per_replica"):
            check_positive_int(f, getattr(self, f))
        bounds = {"compositions": (MAX_COMPOSITIONS, "one KMC sweep point each"),
                  "onsager_cells": (MAX_CELLS, "3 cells^3 sites per replica in memory"),
                  "electrode_cells": (MAX_CELLS, "3 cells^3 sites per replica in memory"),
                  "onsager_replicas": (MAX_REPLICAS, "one KMC run each"),
                  "electrode_replicas": (MAX_REPLICAS, "one KMC run each"),
                  "onsager_hops_per_replica": (MAX_EVENTS, "run time"),
                  "electrode_events_per_replica": (MAX_EVENTS, "run time")}
        for f, (hi, why) in bounds.items():
            if int(getattr(self, f)) > hi:
                raise InputError(f, getattr(self, f), f"must be <= {hi} ({why})")
        if isinstance(self.onsager_equilibration_hops, bool) or not float(self.onsager_equilibration_hops).is_integer() \
                or not 0 <= int(self.onsager_equilibration_hops) <= MAX_EVENTS:
            raise InputError("onsager_equilibration_hops", self.onsager_equilibration_hops,
                             f"must be an integer in [0, {MAX_EVENTS}]")
        if self.electrode_cells < 3:
            raise InputError("electrode_cells", self.electrode_cells, "must be >= 3 (periodic electrode box)")
        if self.compositions < 5:
            raise InputError("compositions", self.compositions, "need at least 5 compositions for the fits")
        if self.onsager_replicas < 2 or self.electrode_replicas < 2:
            raise InputError("replicas", min(self.onsager_replicas, self.electrode_replicas),
                             "need at least 2 replicas for a standard error")
        if not 0.0 < self.electrode_kmc_vacancy_fraction < 0.05:
            raise InputError("electrode_kmc_vacancy_fraction", self.electrode_kmc_vacancy_fraction,
                             "must lie in (0, 0.05) (dilute)")
        if 0.0 not in tuple(self.overpotentials_V):
            raise InputError("overpotentials_V", self.overpotentials_V, "must include 0")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["overpotentials_V"] = list(self.overpotentials_V)
        d["transfer_compositions"] = list(self.transfer_compositions)
        return d

    @classmethod
    def for_target_se(cls, rel_se: float = 0.01, replicas: int = 8, **kw) -> "CoefficientConfig":
        """A configuration whose Onsager runs reach relative SE ``rel_se`` on ℓ_BrBr and ℓ_ClCl
        (hops per replica from :data:`ONSAGER_SE_KAPPA`); other fields from ``kw``."""
        if not 0.0 < float(rel_se) < 1.0:
            raise InputError("rel_se", rel_se, "must lie in (0, 1)")
        replicas = check_positive_int("replicas", replicas)
        kappa = max(ONSAGER_SE_KAPPA["l_brbr"], ONSAGER_SE_KAPPA["l_clcl"])
        hops = int(np.ceil((kappa / float(rel_se)) ** 2 / replicas))
        return cls(onsager_replicas=replicas, onsager_hops_per_replica=hops, **kw)

    def promised_rel_se(self) -> dict:
        """Relative SE per Onsager coefficient this configuration promises (upper estimate)."""
        return onsager_rel_se(self.onsager_replicas, self.onsager_hops_per_replica)

    @classmethod
    def quick(cls) -> "CoefficientConfig":
        """Reduced sizes for smoke tests and ``--quick`` (larger error bars)."""
        return cls(compositions=11, onsager_cells=5, onsager_replicas=4, onsager_hops_per_replica=100_000,
                   onsager_equilibration_hops=5_000, electrode_cells=5, electrode_replicas=3,
                   electrode_events_per_replica=20_000)


def compositions(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def kmc_rate_model(material: Material):
    """The KMC rate model of a material (barriers from the calibrated w_Br and w_Cl/w_Br)."""
    from halide_ionics.kmc import RateModel

    return RateModel(
        temperature_K=material.temperature_K,
        attempt_frequency_Hz=material.attempt_frequency_Hz,
        barrier_br_eV=material.barrier_br_eV,
        barrier_cl_eV=material.barrier_cl_eV,
        barrier_shift_br_eV=material.barrier_shift_per_cl_eV,
        barrier_shift_cl_eV=material.barrier_shift_per_cl_eV,
        vacancy_formation_br_eV=material.vacancy_formation_br_eV,
        vacancy_formation_cl_eV=material.vacancy_formation_cl_eV,
    )


def _seed_int(seed: np.random.SeedSequence) -> int:
    return int(seed.generate_state(1, np.uint32)[0])


# ------------------------------------------------------------------------------------ tasks
def onsager_task(seed, x_cl: float, material: dict, cells: int, replicas: int, hops_per_replica: int,
                 equilibration_hops: int) -> dict:
    """ℓ_ij (Hz) and tracer factors at one composition (module level: runs in any executor)."""
    from halide_ionics.kmc import onsager_coefficients

    m = Material(**material)
    res = onsager_coefficients("perovskite-x", cells, x_cl, m.rate_ratio_cl_br, replicas, hops_per_replica,
                               _seed_int(seed), rate_model=kmc_rate_model(m),
                               equilibration_hops=equilibration_hops, lattice_constant_A=m.lattice_constant_A)
    w = kmc_rate_model(m).hop_rate_Hz(0)
    return {"l_Hz": res.l * w, "l_se_Hz": res.l_se * w, "f": np.asarray(res.f),
            "f_se": np.asarray(res.f_se), "hops": res.hops, "wall_seconds": res.wall_seconds}


def electrode_task(seed, x_cl: float, overpotential_V: float, material: dict, cells: int, replicas: int,
                   events_per_replica: int, kmc_vacancy_fraction: float) -> dict:
    """Grand-canonical KMC of a contact at one composition and overpotential (module level)."""
    from halide_ionics.kmc import electrode_rates

    m = Material(**material)
    rm = kmc_rate_model(m).reservoir_for_vacancy_fraction(kmc_vacancy_fraction, "Br")
    res = electrode_rates(x_cl, overpotential_V, rm, cells, replicas, events_per_replica, seed,
                          lattice_constant_A=m.lattice_constant_A)
    counts = np.asarray(res.counts, dtype=float)  # [kind (create, annihilate), species (Br, Cl)]
    created = counts[0].sum()
    split = counts[0] / created if created > 0 else np.array([np.nan, np.nan])
    return {
        "creation_rate_Hz": res.creation_rate_Hz, "creation_rate_se_Hz": res.creation_rate_se_Hz,
        "creation_species_fraction": split,
        "annihilation_rate_Hz": res.annihilation_rate_Hz, "annihilation_rate_se_Hz": res.annihilation_rate_se_Hz,
        "vacancy_fraction": res.vacancy_fraction, "vacancy_fraction_se": res.vacancy_fraction_se,
        "counts": counts, "electrode_rate_Hz": res.electrode_rate_Hz, "wall_seconds": res.wall_seconds,
        "reference": res.reference,
    }


# ------------------------------------------------------------------------------------ the table
def _tasks(material: Material, cfg: CoefficientConfig) -> list[Task]:
    mat = material.to_dict()
    tasks = []
    for i, c in enumerate(compositions(cfg.compositions)):
        tasks.append(Task(key=f"onsager/{i}", func=f"{__name__}:onsager_task", spawn_key=(0, i),
                          kwargs=dict(x_cl=float(c), material=mat, cells=cfg.onsager_cells,
                                      replicas=cfg.onsager_replicas, hops_per_replica=cfg.onsager_hops_per_replica,
                                      equilibration_hops=cfg.onsager_equilibration_hops)))
        for j, eta in enumerate(cfg.overpotentials_V):
            if eta != 0.0 and not np.isclose(cfg.transfer_compositions, c).any():
                continue
            tasks.append(Task(key=f"electrode/{i}/{j}", func=f"{__name__}:electrode_task", spawn_key=(1, i, j),
                              kwargs=dict(x_cl=float(c), overpotential_V=float(eta), material=mat,
                                          cells=cfg.electrode_cells, replicas=cfg.electrode_replicas,
                                          events_per_replica=cfg.electrode_events_per_replica,
                                          kmc_vacancy_fraction=cfg.electrode_kmc_vacancy_fraction)))
    return tasks


def table_config_hash(material: Material, cfg: CoefficientConfig) -> str:
    """Hash of what the table computes (material and run sizes), without the seed."""
    return content_hash({"table_schema": TABLE_SCHEMA, "material": material.to_dict(), "config": cfg.to_dict()})


def table_key(material: Material, cfg: CoefficientConfig, seed: int) -> str:
    """Cache key of a table: material, run sizes, seed, package version and the producing code."""
    return content_hash({"table_schema": TABLE_SCHEMA, "material": material.to_dict(), "config": cfg.to_dict(),
                         "seed": int(seed), "code": code_hash(__name__)})


def dataset_checksum(ds) -> str:
    """SHA-256 over every variable of ``ds`` (name, dtype, shape and bytes; text by value)."""
    h = hashlib.sha256()
    for name in sorted(map(str, ds.variables)):
        a = np.asarray(ds[name].values)
        h.update(f"{name}|{a.shape}|".encode())
        if a.dtype.kind in "fiub":
            h.update(str(a.dtype).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(json.dumps([str(v) for v in a.ravel()]).encode())
    return h.hexdigest()


def _read_cached_table(path: Path, key: str, seed: int, config_hash: str):
    """The verified cached table at ``path``, or ``None`` (with a warning) when it cannot be trusted."""
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except Exception as exc:  # noqa: BLE001 - truncated/garbage files raise anything
        log.warning("coefficient table %s is unreadable (%s); recomputing", path, type(exc).__name__)
        return None
    a = ds.attrs
    problems = []
    if a.get("cache_key") != key:
        problems.append(f"key {a.get('cache_key')!r} != {key!r}")
    if str(a.get("seed")) != str(int(seed)):
        problems.append(f"seed {a.get('seed')!r} != {int(seed)}")
    if a.get("config_hash") != config_hash:
        problems.append("configuration hash differs")
    if not problems and a.get("data_checksum") != dataset_checksum(ds):
        problems.append("data checksum differs")
    if problems:
        log.warning("coefficient table %s cannot be used (%s); recomputing", path, "; ".join(problems))
        return None
    return ds


def compute_table(material: Material = CSPB_BR_CL_298K, cfg: CoefficientConfig | None = None, seed: int = 2020,
                  workers: int = 1, executor=None, cache_dir=None, progress: bool = False):
    """Run (or resume) the coefficient sweep and return the labelled table (xarray Dataset).

    Finished tasks live under ``<cache_dir>/tasks/<table key>/``; the assembled table is cached
    as ``<cache_dir>/coefficients-<table key>.nc`` (returned as is when present).
    """
    import xarray as xr

    cfg = cfg or CoefficientConfig()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = table_key(material, cfg, seed)
    chash = table_config_hash(material, cfg)
    path = cache / f"coefficients-{key}.nc"
    if path.exists():
        ds = _read_cached_table(path, key, seed, chash)
        if ds is not None:
            log.info("coefficient table: cache hit %s", path)
            return ds
    cache.mkdir(parents=True, exist_ok=True)
    with _table_lock(cache / f"coefficients-{key}.lock"):  # one run computes, concurrent ones wait
        if path.exists():
            ds = _read_cached_table(path, key, seed, chash)
            if ds is not None:
                log.info("coefficient table: computed by a concurrent run %s", path)
                return ds
        for part in cache.glob(f".{path.name}.*.part*"):  # left by a killed run
            part.unlink(missing_ok=True)
        log.info("coefficient table: computing %s", key)
        res = run_sweep(_tasks(material, cfg), cache / "tasks" / key, root_seed=seed, executor=executor,
                        workers=workers, progress=progress, description="KMC coefficients")
        ds = assemble_table(res, material, cfg, seed)
        ds.attrs.update(cache_key=key, config_hash=chash)
        ds.attrs["data_checksum"] = dataset_checksum(ds)
        write_table(ds, path)
    return ds


@contextlib.contextmanager
def _table_lock(path: Path):
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process dies
        yield
    finally:
        os.close(fd)


def assemble_table(results: dict, material: Material, cfg: CoefficientConfig, seed: int):
    """Collect task results into one labelled dataset with units, SEs and provenance."""
    import xarray as xr

    c = compositions(cfg.compositions)
    eta = np.asarray(cfg.overpotentials_V, dtype=float)
    n = c.size
    l = np.zeros((n, 2, 2))
    lse = np.zeros((n, 2, 2))
    f = np.zeros((n, 2))
    fse = np.zeros((n, 2))
    for i in range(n):
        r = results[f"onsager/{i}"]
        l[i], lse[i], f[i], fse[i] = r["l_Hz"], r["l_se_Hz"], r["f"], r["f_se"]
    shape = (n, eta.size)
    cr, cr_se, an, an_se, xv, xv_se = (np.zeros(shape) for _ in range(6))
    split = np.zeros(shape + (2,))
    cr[:], cr_se[:], an[:], an_se[:], xv[:], xv_se[:], split[:] = (np.nan,) * 7
    for i in range(n):
        for j in range(eta.size):
            r = results.get(f"electrode/{i}/{j}")
            if r is None:  # potential dependence measured at the transfer compositions only
                continue
            cr[i, j], cr_se[i, j] = r["creation_rate_Hz"], r["creation_rate_se_Hz"]
            an[i, j], an_se[i, j] = r["annihilation_rate_Hz"], r["annihilation_rate_se_Hz"]
            xv[i, j], xv_se[i, j] = r["vacancy_fraction"], r["vacancy_fraction_se"]
            split[i, j] = r["creation_species_fraction"]
    j0 = int(np.argmin(np.abs(eta)))
    odds = xv[:, j0] / (1 - xv[:, j0])
    odds0 = odds[0]
    rel = odds / odds0  # x_V^eq odds relative to pure CsPbBr3
    rel_se = rel * np.sqrt((xv_se[:, j0] / (xv[:, j0] * (1 - xv[:, j0]))) ** 2
                           + (xv_se[0, j0] / (xv[0, j0] * (1 - xv[0, j0]))) ** 2 * (np.arange(n) > 0))
    x_ref = material.vacancy_fraction_br
    x_eq = x_ref * rel / (1 + x_ref * rel)
    x_eq_se = x_eq * rel_se / np.maximum(rel, 1e-300)
    units = {"l": "Hz", "c": "1 (Cl fraction of the ions)", "eta": "V"}
    ds = xr.Dataset(
        {
            "l_brbr": ("composition", l[:, 0, 0], {"units": units["l"], "long_name": "per-vacancy Onsager l_BrBr"}),
            "l_brcl": ("composition", l[:, 0, 1], {"units": units["l"], "long_name": "per-vacancy Onsager l_BrCl"}),
            "l_clcl": ("composition", l[:, 1, 1], {"units": units["l"], "long_name": "per-vacancy Onsager l_ClCl"}),
            "l_brbr_se": ("composition", lse[:, 0, 0], {"units": units["l"]}),
            "l_brcl_se": ("composition", lse[:, 0, 1], {"units": units["l"]}),
            "l_clcl_se": ("composition", lse[:, 1, 1], {"units": units["l"]}),
            "f_br": ("composition", f[:, 0], {"units": "1", "long_name": "tracer correlation factor, Br"}),
            "f_cl": ("composition", f[:, 1], {"units": "1", "long_name": "tracer correlation factor, Cl"}),
            "f_br_se": ("composition", fse[:, 0], {"units": "1"}),
            "f_cl_se": ("composition", fse[:, 1], {"units": "1"}),
            "x_v_eq": ("composition", x_eq, {"units": "1 (per halide site)",
                                             "long_name": "equilibrium vacancy fraction (KMC composition "
                                                          "dependence x material vacancy_fraction_br)"}),
            "x_v_eq_se": ("composition", x_eq_se, {"units": "1"}),
            "creation_rate": (("composition", "overpotential"), cr,
                              {"units": "Hz", "long_name": "electrode vacancy creation rate per ion site (KMC)"}),
            "creation_rate_se": (("composition", "overpotential"), cr_se, {"units": "Hz"}),
            "creation_species_fraction": (("composition", "overpotential", "species"), split,
                                          {"units": "1", "long_name": "fraction of creations removing Br, Cl"}),
            "annihilation_rate": (("composition", "overpotential"), an,
                                  {"units": "Hz", "long_name": "electrode vacancy annihilation rate per vacancy"}),
            "annihilation_rate_se": (("composition", "overpotential"), an_se, {"units": "Hz"}),
            "kmc_vacancy_fraction": (("composition", "overpotential"), xv,
                                     {"units": "1", "long_name": "vacancy fraction in the electrode KMC"}),
            "kmc_vacancy_fraction_se": (("composition", "overpotential"), xv_se, {"units": "1"}),
        },
        coords={
            "composition": ("composition", c, {"units": units["c"]}),
            "overpotential": ("overpotential", eta, {"units": units["eta"]}),
            "species": ("species", ["Br", "Cl"]),
        },
    )
    ds.attrs.update(provenance_attrs(config={"material": material.to_dict(), "coefficients": cfg.to_dict()},
                                     seed=int(seed), table_schema=TABLE_SCHEMA,
                                     kmc_barrier_br_eV=material.barrier_br_eV,
                                     kmc_barrier_cl_eV=material.barrier_cl_eV,
                                     w_br_Hz=material.w_br_Hz,
                                     onsager_promised_rel_se=cfg.promised_rel_se()))
    return ds


def write_table(ds, path) -> None:
    """Write a table as NetCDF atomically (serialised in memory; I/O failures raise ``OSError``)."""
    write_netcdf_atomic(ds, path)
