"""Stage 2 of the pipeline: bridge fits → continuum inputs for one electrode mode, calibrated
where that mode has constants (none in ``kmc``; λ and δ_el in ``paper-linear``).

* :func:`continuum_inputs` — the device tables of one mode from a set of fits, with optional
  sensitivity multipliers (:class:`InputScales`).
* :func:`sample_fits` — one draw of every fitted KMC input from its covariance (for propagated
  standard errors; each draw is then calibrated anew where the mode has constants).
* :func:`calibrate_paper_linear` — λ on forward +2 V/µm, δ_el on the ±2 V/µm ratio (the paper's
  own calibration of its source strengths; never on the ±4 V/µm points reported).
* :func:`prepare_inputs` — table → fits → (calibrated) inputs for a mode: what ``reproduce`` and
  the studies call.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np

from .bridge import (BridgeFits, creation_law, fit_table, manning_reference, onsager_with_reference,
                     sample_log_polynomial, sample_onsager)
from .device_runs import ContinuumInputs, run_many, run_ok
from .electrode import check_mode, kmc_law
from .materials import Material

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputScales:
    """Multipliers of the KMC-derived inputs for the sensitivity study (1 = as derived).

    ``onsager``: all ℓ_ij; ``x_v_eq``: x_V^eq(c) at fixed hop rates; ``exchange``: the electrode
    exchange prefactor (creation and annihilation together; paper-linear: λ); ``split``: the Cl:Br
    odds of the electrode's species split; ``beta``: the transfer coefficient (clipped to [0, 1]);
    ``rate_ratio``: w_Cl/w_Br (through the closed-form reference under the KMC correction);
    ``vacancy_level``: the material's vacancy level with w_Br recalibrated on the mobility
    (ℓ ∝ w_Br ∝ 1/level, the KMC electrode rates likewise, x_V^eq ∝ level).
    """

    onsager: float = 1.0
    x_v_eq: float = 1.0
    exchange: float = 1.0
    split: float = 1.0
    beta: float = 1.0
    rate_ratio: float = 1.0
    vacancy_level: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def sample_fits(fits: BridgeFits, material: Material, rng: np.random.Generator) -> BridgeFits:
    """One draw of all fitted KMC inputs from their fitted normal distributions."""
    from .bridge import RateLawFit

    transfer = fits.transfer
    if transfer is not None:
        b = float(np.clip(rng.normal(transfer.beta, transfer.beta_se), 0.0, 1.0))
        transfer = RateLawFit(transfer.degree, transfer.coef, b, transfer.cov, transfer.chi2, transfer.kT_eV)
    return replace(fits, onsager=sample_onsager(fits.onsager, manning_reference(material.w_br_Hz, material.w_cl_Hz),
                                                rng),
                   x_v_eq=sample_log_polynomial(fits.x_v_eq, rng), creation_br=sample_log_polynomial(fits.creation_br, rng),
                   creation_cl=sample_log_polynomial(fits.creation_cl, rng), transfer=transfer)


def continuum_inputs(fits: BridgeFits, material: Material, mode: str, constants: dict | None = None,
                     scales: InputScales | None = None, contact_mode: str = "region", n_grid: int = 41,
                     split: str = "composition") -> ContinuumInputs:
    """Continuum tables of electrode mode ``mode`` from ``fits`` (``constants``: paper-linear's λ, δ_el;
    ``split``: the kmc mode's species-split rule, :func:`~.electrode.kmc_law`)."""
    mode = check_mode(mode)
    sc = scales or InputScales()
    constants = constants or {}
    grid = np.linspace(0.0, 1.0, n_grid)
    ons = fits.onsager
    if sc.rate_ratio != 1.0:
        ons = onsager_with_reference(ons, manning_reference(material.w_br_Hz, material.w_cl_Hz * sc.rate_ratio))
    bb, bc, cc = ons(grid)
    lv = sc.vacancy_level
    l_scale = sc.onsager / lv
    x_eq = np.minimum(fits.x_v_eq(grid) * sc.x_v_eq * lv, 0.5)
    common = dict(c=tuple(grid), l_brbr_Hz=tuple(np.maximum(bb, 0.0) * l_scale), l_brcl_Hz=tuple(bc * l_scale),
                  l_clcl_Hz=tuple(np.maximum(cc, 0.0) * l_scale), x_v_eq=tuple(x_eq),
                  temperature_K=material.temperature_K, lattice_constant_A=material.lattice_constant_A,
                  permittivity_rel=material.epsilon_r, contact_mode=contact_mode, electrode_mode=mode)
    if mode == "kmc":
        beta = float(np.clip(fits.beta * sc.beta, 0.0, 1.0))
        law = kmc_law(fits.creation_br, fits.creation_cl, lambda c: np.minimum(fits.x_v_eq(c) * sc.x_v_eq * lv, 0.5),
                      grid, beta, fits.kmc_odds0, fits.material_odds0 * lv, exchange_scale=sc.exchange / lv,
                      split_scale=sc.split, split=split)
        # the composition split is the solver's own rule (exact); a table otherwise
        phi = None if (split == "composition" and sc.split == 1.0) else tuple(law.br_fraction)
        return ContinuumInputs(**common, k_create0_per_s=tuple(law.creation_Hz),
                               k_annihilate0_per_s=tuple(law.annihilation_Hz), voltage_exponent=0.0,
                               br_fraction=phi, transfer_coefficient=beta,
                               source=f"KMC electrode law (beta={beta:.4g}, level shift {law.level_shift:.4g}); "
                                      "no calibrated constant")
    lam = float(constants["lambda_per_s_per_V"]) * sc.exchange
    delta = float(constants["delta_el_eV"])
    k = lam * creation_law(fits, grid, delta)
    return ContinuumInputs(**common, k_create0_per_s=tuple(k), k_annihilate0_per_s=tuple(k), voltage_exponent=1.0,
                           source=f"paper-linear pump; lambda={lam:.6g} /s/V, delta_el={delta:.6g} eV (calibrated)")


# ------------------------------------------------------------------------------ paper-linear calibration
#: calibration tolerance: |log(migration / target)| at both calibration points
CALIBRATION_LOG_TOL = 2e-3


def calibrate_paper_linear(fits: BridgeFits, material: Material, cfg, workdir, executor=None, workers=1,
                           scales: InputScales | None = None, tag: str = "calibration", start: dict | None = None,
                           max_iter: int = 15) -> dict:
    """λ and δ_el of the paper-linear pump from the ±2 V/µm data. Returns a record.

    Two equations, log m(+E) = log(target) and log |m(−E)| = log(target/ratio), in the unknowns
    (ln λ, δ_el), solved by Broyden's method: the Jacobian from finite differences at the start
    (or ``start["jacobian"]``, e.g. the main calibration's for an uncertainty draw), then rank-one
    updates; each residual is the ±E pair of device runs, run side by side. ``start``: initial
    ``{"lambda_per_s_per_V", "delta_el_eV"}`` (and optionally ``"jacobian"``)."""
    from .targets import paper_slope_um_per_V_per_um

    E = float(cfg.calibration_field_V_per_um)
    fwd_target = paper_slope_um_per_V_per_um(cfg.hours * 3600.0) * E
    rev_target = fwd_target / cfg.calibration_ratio
    u = np.array([np.log(3.0e-6), fits.delta_kmc_eV])
    J = None
    if start:
        u = np.array([np.log(float(start["lambda_per_s_per_V"])), float(start["delta_el_eV"])])
        if start.get("jacobian") is not None:
            J = np.array(start["jacobian"], float)
    runs = []
    n_eval = [0]

    def resid(v):
        lam, delta = float(np.exp(v[0])), float(v[1])
        inp = continuum_inputs(fits, material, "paper-linear", {"lambda_per_s_per_V": lam, "delta_el_eV": delta},
                               scales=scales)
        n_eval[0] += 1
        rf, rr = run_many([(inp, E, True, f"{tag}-{n_eval[0]}"), (inp, -E, True, f"{tag}-{n_eval[0]}")], cfg,
                          workdir, executor=executor, workers=workers, description=tag)
        for f, r in ((E, rf), (-E, rr)):
            runs.append({"lambda_per_s_per_V": lam, "delta_el_eV": delta, "field_V_per_um": f,
                         "migration_um": r["final_migration_length_um"], "status": r["status"]})
            if not run_ok(r, cfg.hours):
                raise RuntimeError(f"calibration run failed at {f:+g} V/um: {r['message']}")
        mf, mr = rf["final_migration_length_um"], rr["final_migration_length_um"]
        if not (mf > 0 and mr != 0):
            raise RuntimeError(f"calibration: no forward motion or no reverse motion (m+ = {mf:.3g}, m- = {mr:.3g})")
        return np.array([np.log(mf / fwd_target), np.log(abs(mr) / rev_target)])

    r = resid(u)
    if J is None:  # forward differences: 5 % in λ, −5 meV in δ_el
        J = np.empty((2, 2))
        for k, h in enumerate((0.05, -0.005)):
            v = u.copy()
            v[k] += h
            J[:, k] = (resid(v) - r) / h
    for _ in range(max_iter):
        if np.max(np.abs(r)) < CALIBRATION_LOG_TOL:
            break
        try:
            step = -np.linalg.solve(J, r)
        except np.linalg.LinAlgError:
            raise RuntimeError("calibration stalled: singular Jacobian (the targets do not depend on λ, δ_el)") from None
        step[0] = np.clip(step[0], -2.0, 2.0)  # at most e^±2 in λ and ±50 meV in δ_el per step
        step[1] = np.clip(step[1], -0.05, 0.05)
        r_new = resid(u + step)
        J = J + np.outer(r_new - r - J @ step, step) / float(step @ step)
        u, r = u + step, r_new
    if np.max(np.abs(r)) >= CALIBRATION_LOG_TOL:
        raise RuntimeError(f"calibration did not converge (log residuals {r[0]:.3g}, {r[1]:.3g})")
    lam, delta = float(np.exp(u[0])), float(u[1])
    return {
        "constants": {"lambda_per_s_per_V": lam, "delta_el_eV": delta},
        "calibrated": {
            "lambda_per_s_per_V": {
                "value": lam,
                "fitted_to": f"forward migration at +{E:g} V/um after {cfg.hours:g} h = paper mobility line "
                             f"({fwd_target:.4f} um)"},
            "delta_el_eV": {
                "value": delta,
                "fitted_to": f"forward/|reverse| migration at +-{E:g} V/um = paper rectification ratio "
                             f"({cfg.calibration_ratio:g})"},
        },
        "delta_lattice_eV": fits.delta_kmc_eV,
        "field_V_per_um": E,
        "forward_target_um": fwd_target,
        "reverse_target_um": rev_target,
        "jacobian": J.tolist(),
        "residual_evaluations": n_eval[0],
        "runs": runs,
    }


@dataclass(frozen=True)
class Prepared:
    """Inputs of one electrode mode, ready for device runs."""

    mode: str
    inputs: ContinuumInputs
    fits: BridgeFits
    constants: dict  # the calibrated constants by name (empty in the kmc mode)
    calibrated: dict  # {name: {"value", "fitted_to"}}
    record: dict  # the calibration record (runs, targets), {} when nothing was calibrated
    #: where the fits came from ({material, coefficient_config, seed, cache_dir}): lets a worker
    #: process rebuild them from the cached table (parallel recalibration of uncertainty draws)
    table_ref: dict | None = None


def calibrate(mode: str, fits: BridgeFits, material: Material, cfg, workdir, executor=None, workers=1,
              scales: InputScales | None = None, contact_mode: str = "region", tag: str = "calibration",
              start: dict | None = None) -> Prepared:
    """Calibrate ``mode`` on ``fits`` (nothing to do for ``kmc``) and build its inputs."""
    mode = check_mode(mode)
    if mode == "kmc":
        return Prepared(mode, continuum_inputs(fits, material, mode, scales=scales, contact_mode=contact_mode), fits,
                        {}, {}, {})
    rec = calibrate_paper_linear(fits, material, cfg, workdir, executor=executor, workers=workers, scales=scales,
                                 tag=tag, start=start)
    return Prepared(mode, continuum_inputs(fits, material, mode, rec["constants"], scales=scales,
                                           contact_mode=contact_mode),
                    fits, rec["constants"], rec["calibrated"], rec)


def table_reference(material: Material, coefficient_config, seed: int, cache_dir) -> dict:
    return {"material": material.to_dict(), "coefficient_config": coefficient_config.to_dict(), "seed": int(seed),
            "cache_dir": str(cache_dir)}


def prepare_inputs(mode: str, material: Material, cfg, cache_dir, workers: int = 1, executor=None,
                   coefficient_config=None, table=None, progress: bool = False) -> Prepared:
    """KMC table (cached) → fits → inputs of electrode mode ``mode`` (calibrated where it has constants)."""
    from pathlib import Path

    from .coefficients import CoefficientConfig, compute_table

    ccfg = coefficient_config or CoefficientConfig()
    if table is None:
        table = compute_table(material, ccfg, seed=cfg.seed, workers=workers, executor=executor,
                              cache_dir=cache_dir, progress=progress)
    fits = fit_table(table, material)
    prep = calibrate(mode, fits, material, cfg, Path(cache_dir) / "devices", executor=executor, workers=workers)
    return replace(prep, table_ref=table_reference(material, ccfg, cfg.seed, cache_dir))


def calibrated_draw_task(seed, k: int, mode: str, table_ref: dict, config: dict, start: dict, fields: list) -> dict:
    """One uncertainty draw of a mode with calibrated constants, whole, in one worker: rebuild the
    fits from the cached table, draw them (stream ``(7, k)`` of the run's seed, as the serial path
    does), recalibrate, run ``fields``. Module level so any executor can run it."""
    from pathlib import Path

    from .coefficients import CoefficientConfig, compute_table
    from .reproduce import ReproduceConfig

    mat = Material(**table_ref["material"])
    ccfg = CoefficientConfig(**{k_: (tuple(v) if isinstance(v, list) else v)
                                for k_, v in table_ref["coefficient_config"].items()})
    cfg = ReproduceConfig(**{k_: (tuple(v) if isinstance(v, list) else v) for k_, v in config.items()})
    cache = Path(table_ref["cache_dir"])
    table = compute_table(mat, ccfg, seed=table_ref["seed"], workers=1, cache_dir=cache)
    fits = fit_table(table, mat)
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(7, k)))
    fk = sample_fits(fits, mat, rng)
    devdir = cache / "devices"
    try:
        pk = calibrate(mode, fk, mat, cfg, devdir, workers=1, tag=f"draw-cal-{k}", start=start)
    except RuntimeError as e:
        return {"ok": False, "message": str(e)}
    res = run_many([(pk.inputs, float(f), True, f"draw-{mode}-{k}") for f in fields], cfg, devdir, workers=1)
    return {"ok": True, "constants": pk.constants, "runs": [{key: r[key] for key in
            ("final_migration_length_um", "status", "end_time_s", "max_x_v", "message")} for r in res]}
