"""``halide-ionics reproduce``: the main job, composed of stages that each live in the module of
their concept; data flows one way and this module only composes them.

1. KMC coefficient table (cached; :mod:`.coefficients`) → smooth fits (:mod:`.bridge`).
2. Continuum inputs per electrode mode (:mod:`.electrode` derives the laws,
   :mod:`.calibration` builds the tables and fits what the mode has to fit: nothing in ``kmc``, λ
   and δ_el on the ±2 V/µm data in ``paper-linear``).
3. Device runs (:mod:`.device_runs`): every field of Fig. 1e, the no-source controls and the same
   fields on a 2x finer mesh (numerics target).
4. Propagated KMC standard errors and the sensitivity table (:mod:`.uncertainty`).
5. Targets with their kinds (:mod:`.targets`).
6. Outputs: ``summary.json``, ``report.md`` (:mod:`.report`), figures (:mod:`.figures`),
   ``coefficients.nc``, ``migration.nc``.

Both modes run every time; ``electrode`` names the default one whose numbers fill the summary's
top-level keys.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .bridge import fit_table  # noqa: F401  (re-exported for callers)
from .device_runs import run_many, run_ok
from .electrode import DEFAULT_ELECTRODE_MODE, ELECTRODE_MODES, check_mode
from .materials import Material

log = logging.getLogger(__name__)

#: the paper's field set of Fig. 1e (V/µm)
PAPER_FIELDS = (0.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0)


def summary_key(mode: str) -> str:
    """``paper-linear`` → ``paper_linear`` (summary.json keys)."""
    return mode.replace("-", "_")


# ------------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class ReproduceConfig:
    """Settings of the main job (defaults: the full reproduction; :meth:`quick`: a smoke run)."""

    fields_V_per_um: tuple = PAPER_FIELDS
    hours: float = 4.0
    #: the default electrode mode (its numbers fill the summary's top level); both modes are run
    electrode: str = DEFAULT_ELECTRODE_MODE
    modes: tuple = ELECTRODE_MODES
    #: paper-linear calibration field (V/µm) — the paper fitted its source strengths on ±2 V/µm
    calibration_field_V_per_um: float = 2.0
    #: paper's rectification ratio, used at ±calibration field for δ_el (paper-linear only)
    calibration_ratio: float = 20.0
    #: draws of the KMC-derived inputs for the propagated error bars (per mode; a mode with
    #: calibrated constants is recalibrated per draw, so it gets ``uncertainty_samples_calibrated``)
    uncertainty_samples: int = 16
    uncertainty_samples_calibrated: int = 8
    sensitivity: bool = True
    #: mesh: 1200 nodes graded 400:1 toward the key points; every reported migration is checked
    #: against 2x the nodes (reverse-bias fronts move ~nm and converge slowly, about N^-1.3)
    nodes: int = 1200
    grading_ratio: float = 400.0
    rtol: float = 1e-6
    seed: int = 2020

    def __post_init__(self):
        check_mode(self.electrode)
        for m in self.modes:
            check_mode(m)
        if self.electrode not in self.modes:
            object.__setattr__(self, "modes", tuple(self.modes) + (self.electrode,))

    @classmethod
    def quick(cls, **kw) -> "ReproduceConfig":
        d = dict(fields_V_per_um=(0.0, 1.5, 2.0, 3.0, 4.0, -2.0, -4.0), uncertainty_samples=3,
                 uncertainty_samples_calibrated=2, nodes=500, rtol=1e-5)
        d.update(kw)
        return cls(**d)

    def solver(self) -> dict:
        return {"nodes": int(self.nodes), "rtol": float(self.rtol), "grading_ratio": float(self.grading_ratio)}

    def fine_solver(self) -> dict:
        return dict(self.solver(), nodes=2 * int(self.nodes))

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["fields_V_per_um"] = list(self.fields_V_per_um)
        d["modes"] = list(self.modes)
        return d


# ------------------------------------------------------------------------------ one mode
def _control_fields(fields):
    return sorted({f for f in (4.0, -4.0) if f in fields} or {max(fields), min(fields)})


def run_mode(mode: str, fits, material: Material, cfg: ReproduceConfig, devdir, executor=None, workers=1,
             progress=False, table_ref: dict | None = None) -> dict:
    """Every device run, SE and target of one electrode mode (plain data for the summary)."""
    import time

    from .calibration import calibrate
    from .targets import evaluate_targets
    from .uncertainty import propagate, sensitivity

    t0 = time.perf_counter()
    from dataclasses import replace

    prep = replace(calibrate(mode, fits, material, cfg, devdir, executor=executor, workers=workers),
                   table_ref=table_ref)
    t_cal = time.perf_counter() - t0
    fields = [float(f) for f in cfg.fields_V_per_um]
    ctrl = _control_fields(fields)
    key = summary_key(mode)
    jobs = ([(prep.inputs, f, True, f"{key}-main") for f in fields]
            + [(prep.inputs, f, False, f"{key}-nosrc") for f in ctrl])
    res = run_many(jobs, cfg, devdir, executor=executor, workers=workers, progress=progress,
                   description=f"device runs ({mode})")
    runs = dict(zip(fields, res[:len(fields)]))
    nosrc = dict(zip(ctrl, res[len(fields):]))
    fine = dict(zip(fields, run_many([(prep.inputs, f, True, f"{key}-fine") for f in fields], cfg, devdir,
                                     executor=executor, workers=workers, solver=cfg.fine_solver(),
                                     description=f"2x mesh ({mode})")))
    t_runs = time.perf_counter() - t0 - t_cal
    n = cfg.uncertainty_samples_calibrated if prep.calibrated else cfg.uncertainty_samples
    unc = propagate(prep, material, cfg, devdir, n, fields, executor=executor, workers=workers)
    sens = sensitivity(prep, material, cfg, devdir, executor=executor, workers=workers) if cfg.sensitivity else []
    t_unc = time.perf_counter() - t0 - t_cal - t_runs
    cal = dict(prep.record, field_V_per_um=cfg.calibration_field_V_per_um) if prep.record else None
    tgt = evaluate_targets(mode, runs, nosrc, fine, cfg.hours, unc, calibration=cal,
                           other_max_x_v=unc.get("max_x_v", 0.0))
    bad = [f for f in fields if not run_ok(runs[f], cfg.hours)]
    if bad:
        log.warning("%s: device runs did not finish at fields %s", mode, bad)
    return {
        "prep": prep, "runs": runs, "nosrc": nosrc, "fine": fine,
        "summary": {
            **tgt,
            "calibrated": prep.calibrated,
            "uncertainty": {k: v for k, v in unc.items() if k != "migration_se"},
            "sensitivity": sens,
            "fine_mesh_migration_um": {f"{f:g}": fine[f]["final_migration_length_um"] for f in fields},
            "runs": {f"{f:g}": {k: runs[f][k] for k in ("status", "steps", "site_conservation_error", "max_x_v",
                                                          "end_time_s", "wall_seconds")} for f in fields},
            "timings_s": {"calibration_s": t_cal, "device_runs_s": t_runs, "uncertainty_and_sensitivity_s": t_unc},
        },
    }


# ------------------------------------------------------------------------------ the main job
def reproduce(out_dir, quick: bool = False, workers: int = 1, executor=None, cache_dir=None, progress: bool = False,
              material: Material | None = None, config: ReproduceConfig | None = None,
              coefficient_config=None, studies: bool = False) -> dict:
    """Run the whole reproduction into ``out_dir``; returns the summary (also ``summary.json``).

    ``studies``: then run every supplementary study (:mod:`.studies`) into ``out_dir/studies/``,
    linked from the report and indexed under ``summary["studies"]``."""
    import time
    from pathlib import Path

    from halide_ionics import __version__
    from halide_ionics.io import json_safe, provenance

    from .coefficients import CoefficientConfig, compute_table
    from .materials import CSPB_BR_CL_298K
    from .report import write_outputs
    from .sweep import default_cache_dir

    t_start = time.perf_counter()
    out = Path(out_dir)
    material = material or CSPB_BR_CL_298K
    cfg = config or (ReproduceConfig.quick() if quick else ReproduceConfig())
    ccfg = coefficient_config or (CoefficientConfig.quick() if quick else CoefficientConfig())
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    timings = {}

    from .calibration import table_reference

    import contextlib

    from halide_ionics.parallel import cap_workers, pool_scope

    if executor is None:
        workers = cap_workers(workers, 1 << 20, "processes wanted")
    # one pool for the whole job (a pool per sweep costs a fork and imports each time)
    with (pool_scope(workers) if executor is None and workers > 1 else contextlib.nullcontext(executor)) as executor:
        t = time.perf_counter()
        table = compute_table(material, ccfg, seed=cfg.seed, workers=workers, executor=executor, cache_dir=cache,
                              progress=progress)
        timings["coefficients_s"] = time.perf_counter() - t
        fits = fit_table(table, material)
        devdir = cache / "devices"
        ref = table_reference(material, ccfg, cfg.seed, cache)
        per_mode = {}
        for mode in cfg.modes:
            t = time.perf_counter()
            per_mode[mode] = run_mode(mode, fits, material, cfg, devdir, executor=executor, workers=workers,
                                      progress=progress, table_ref=ref)
            timings[f"{summary_key(mode)}_s"] = time.perf_counter() - t
    d = per_mode[cfg.electrode]["summary"]
    t = time.perf_counter()
    summary = {
        "electrode_mode": cfg.electrode,
        "rectification_ratio_4V": d["rectification_ratio_4V"],
        "rectification_ratio_4V_se": d["rectification_ratio_4V_se"],
        "reverse_migration_sign": d["reverse_migration_sign"],
        "migration_length_um": d["migration_length_um"],
        "migration_length_se_um": d["migration_length_se_um"],
        "forward_slope_um_per_V_per_um": d["forward_slope_um_per_V_per_um"],
        "forward_slope_se": d["forward_slope_se"],
        "forward_r2": d["forward_r2"],
        "no_source_migration_um": d["no_source_migration_um"],
        "max_x_v": d["max_x_v"],
        "targets": d["targets"],
        "all_targets_pass": d["all_targets_pass"],
        "calibrated": d["calibrated"],
        "sensitivity": d["sensitivity"],
        "modes": {summary_key(m): pm["summary"] for m, pm in per_mode.items()},
        "kmc": {
            "transfer_coefficient": None if fits.transfer is None else fits.transfer.beta,
            "transfer_coefficient_se": None if fits.transfer is None else fits.transfer.beta_se,
            "onsager_psd_projection": fits.onsager.psd_projection_max,
            "x_v_eq_ratio_c0.9": float(np.squeeze(fits.x_v_eq(np.array([0.9])) / fits.x_v_eq(np.array([0.0])))),
            "rate_ratio_cl_br": material.rate_ratio_cl_br,
        },
        "material": material.to_dict(),
        "timings_s": timings,
        "quick": bool(quick),
        "provenance": provenance(config={"reproduce": cfg.to_dict(), "coefficients": ccfg.to_dict(),
                                         "material": material.to_dict()}, seed=cfg.seed, version=__version__),
    }
    summary = json_safe(summary)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(out, table, fits, material, cfg, per_mode, summary, cache_dir=cache)
    timings["outputs_s"] = time.perf_counter() - t
    if studies:  # every study after the main job, sharing its cache (tables, calibration, device runs)
        from .studies import run_all_studies

        t = time.perf_counter()
        summary["studies"] = json_safe(run_all_studies(out, mode=cfg.electrode, cache_dir=cache, workers=workers,
                                                       quick=quick, material=material))
        timings["studies_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_start
    summary["timings_s"] = json_safe(timings)
    from halide_ionics.io import write_json_atomic, write_text_atomic
    from .report import render_report

    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "report.md", render_report(summary))
    return summary
