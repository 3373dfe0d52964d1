"""Stage 4 of the pipeline: propagated KMC standard errors and the input sensitivity table.

* :func:`propagate` — redraw every fitted KMC input from its covariance (ℓ_ij, x_V^eq, the
  per-species creation law, the transfer coefficient), redo the mode's calibration per draw
  (paper-linear: λ and δ_el; kmc: nothing to redo), run the forward fields and −4 V/µm, and take
  the spread of migration, forward slope and rectification ratio over the draws as their SE. A
  draw whose run did not finish is left out (never a partial run) and counted.
* :func:`sensitivity` — migration at ±4 V/µm and the ratio when each input is scaled by ½ and 2
  (:class:`~.calibration.InputScales`), plus the contact model (line instead of region) and, in
  paper-linear mode, the calibrated δ_el; nothing is recalibrated (the table shows what each input
  does to the prediction at fixed everything else).
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from .calibration import InputScales, Prepared, calibrate, continuum_inputs, sample_fits
from .device_runs import run_many, run_ok
from .targets import linear_fit

log = logging.getLogger(__name__)

#: the inputs of the sensitivity table: (InputScales field, label)
SENSITIVITY_INPUTS = (
    ("onsager", "Onsager coefficients l_ij"),
    ("x_v_eq", "equilibrium vacancy fraction x_V^eq(c)"),
    ("exchange", "electrode creation law (exchange prefactor)"),
    ("split", "electrode species split (its Cl:Br odds)"),
    ("beta", "transfer coefficient beta"),
    ("rate_ratio", "w_Cl/w_Br"),
    ("vacancy_level", "vacancy level (w_Br recalibrated on the mobility)"),
)
SCALES = (0.5, 2.0)
#: KMC outputs the paper-linear pump does not use (its source has no split table and no overpotential)
NOT_IN_PAPER_LINEAR = ("split", "beta")


def _ratio(fwd, rev):
    return fwd / abs(rev) if np.isfinite(fwd) and np.isfinite(rev) and rev != 0 else float("nan")


def sensitivity(prep: Prepared, material, cfg, workdir, executor=None, workers=1, field: float = 4.0) -> list:
    """Rows {input, label, scale, forward_um, reverse_um, ratio, max_x_v, ok} (first row: as derived)."""
    variants = [("baseline", "as derived / calibrated", 1.0, prep.inputs)]
    for name, label in SENSITIVITY_INPUTS:
        if prep.mode == "paper-linear" and name in NOT_IN_PAPER_LINEAR:
            continue
        lab = label if not (name == "exchange" and prep.mode == "paper-linear") else "pump strength lambda (calibrated)"
        for s in SCALES:
            inp = continuum_inputs(prep.fits, material, prep.mode, prep.constants, scales=InputScales(**{name: s}))
            variants.append((name, lab, s, inp))
    if prep.mode == "paper-linear":
        for s in SCALES:
            c = dict(prep.constants, delta_el_eV=prep.constants["delta_el_eV"] * s)
            variants.append(("delta_el", "electrode barrier difference delta_el (calibrated)", s,
                             continuum_inputs(prep.fits, material, prep.mode, c)))
    else:
        variants.append(("contact_mode", "contact model: line (paper) instead of region", float("nan"),
                         replace(prep.inputs, contact_mode="line")))
        variants.append(("split_rule", "species split: the KMC boxes' creation split instead of the composition",
                         float("nan"), continuum_inputs(prep.fits, material, prep.mode, prep.constants, split="kmc")))
    jobs = []
    for i, (_, _, _, inp) in enumerate(variants):
        jobs += [(inp, field, True, f"sens-{prep.mode}-{i}"), (inp, -field, True, f"sens-{prep.mode}-{i}")]
    res = run_many(jobs, cfg, workdir, executor=executor, workers=workers, description=f"sensitivity ({prep.mode})")
    rows = []
    for i, (name, label, s, _) in enumerate(variants):
        rf, rr = res[2 * i], res[2 * i + 1]
        ok = run_ok(rf, cfg.hours) and run_ok(rr, cfg.hours)
        f = rf["final_migration_length_um"] if run_ok(rf, cfg.hours) else float("nan")
        r = rr["final_migration_length_um"] if run_ok(rr, cfg.hours) else float("nan")
        rows.append({"input": name, "label": label, "scale": s, "forward_um": f, "reverse_um": r,
                     "ratio": _ratio(f, r), "max_x_v": max(rf["max_x_v"], rr["max_x_v"]), "ok": bool(ok),
                     "status": "ok" if ok else f"{rf['status']}/{rr['status']}"})
    return rows


def _start(prep: Prepared) -> dict | None:
    """Where a draw's recalibration starts: the main calibration's constants and Jacobian."""
    if not prep.constants:
        return None
    return dict(prep.constants, jacobian=prep.record.get("jacobian"))


def propagate(prep: Prepared, material, cfg, workdir, n_draws: int, fields, executor=None, workers=1) -> dict:
    """Propagated SEs of migration (by field), forward slope and the ±4 ratio over ``n_draws`` draws."""
    fields = [float(f) for f in fields]
    fwd = [f for f in fields if 1.5 - 1e-9 <= f <= 4 + 1e-9]
    need = sorted(set(fwd) | ({-4.0} if -4.0 in fields else set()))
    draws, jobs = [], []
    M = np.full((0, len(need)), np.nan)
    max_xv = 0.0
    if prep.calibrated and prep.table_ref is not None:
        # recalibration per draw: each draw whole in one worker (the calibration is sequential)
        from .sweep import Task, run_sweep

        tasks = [Task(key=f"draw-{prep.mode}-{k}", func="halide_ionics.coupling.calibration:calibrated_draw_task",
                      kwargs=dict(k=k, mode=prep.mode, table_ref=prep.table_ref, config=cfg.to_dict(),
                                  start=_start(prep), fields=list(need)), spawn_key=())
                 for k in range(n_draws)]
        out = run_sweep(tasks, workdir, root_seed=cfg.seed, executor=executor, workers=workers,
                        description=f"uncertainty draws ({prep.mode})")
        rows = []
        for k, t in enumerate(tasks):
            r = out[t.key]
            if not r["ok"]:
                log.warning("uncertainty draw %d: calibration failed (%s); left out", k, r["message"])
                continue
            draws.append(k)
            rows.append([x["final_migration_length_um"] if run_ok(x, cfg.hours) else np.nan for x in r["runs"]])
            max_xv = max([max_xv] + [float(x["max_x_v"]) for x in r["runs"]])
        M = np.asarray(rows, float).reshape(len(draws), len(need))
    else:
        for k in range(n_draws):
            rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(7, k)))
            fk = sample_fits(prep.fits, material, rng)
            try:
                pk = calibrate(prep.mode, fk, material, cfg, workdir, executor=executor, workers=workers,
                               tag=f"draw-cal-{k}", start=_start(prep))
            except RuntimeError as e:  # a draw whose calibration cannot be done carries no value
                log.warning("uncertainty draw %d: calibration failed (%s); left out", k, e)
                continue
            draws.append(k)
            jobs += [(pk.inputs, f, True, f"draw-{prep.mode}-{k}") for f in need]
        res = run_many(jobs, cfg, workdir, executor=executor, workers=workers,
                       description=f"uncertainty draws ({prep.mode})")
        max_xv = max([float(r["max_x_v"]) for r in res] + [0.0])
        M = np.full((len(draws), len(need)), np.nan)
        for i in range(len(draws)):
            for j in range(len(need)):
                r = res[i * len(need) + j]
                if run_ok(r, cfg.hours):
                    M[i, j] = r["final_migration_length_um"]
    col = {f: j for j, f in enumerate(need)}
    slopes, ratios = [], []
    for i in range(len(draws)):
        y = [M[i, col[f]] for f in fwd]
        if len(fwd) >= 3 and np.all(np.isfinite(y)):
            slopes.append(linear_fit(fwd, y).slope)
        if 4.0 in col and -4.0 in col:
            ratios.append(_ratio(M[i, col[4.0]], M[i, col[-4.0]]))
    ratios = [r for r in ratios if np.isfinite(r)]

    def se(v):
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        return float(np.std(v, ddof=1)) if v.size >= 2 else float("nan")

    return {
        "draws_requested": int(n_draws),
        "draws_used": int(len(draws)),
        "runs_failed": int(np.isnan(M).sum()),
        "max_x_v": max_xv,
        "migration_se": {f: se(M[:, col[f]]) for f in need},
        "slope_se": se(slopes),
        "ratio_se": se(ratios),
        "ratio_draws": [float(r) for r in ratios],
        "slope_draws": [float(s) for s in slopes],
    }
