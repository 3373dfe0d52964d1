"""``halide-ionics reproduce``: KMC coefficients → calibrated device runs → the paper's figures.

Pipeline
--------
1. Coefficient table from the KMC (cached; :mod:`.coefficients`).
2. Bridge (:mod:`.bridge`): smooth PSD ℓ_ij(c), x_V^eq(c) and the electrode creation law's
   composition dependence ĝ(c) = r_c(c)/r_c(0), all from the table.
3. Electrode source in the paper's linearised form S_V = k(c,ΔV)(1 − x_V) − k(c,ΔV) x_V with
   k(c, ΔV) = λ ĝ(c) |ΔV| (creation = annihilation prefactor, as the paper's r_c = r_d = α|Δψ|/2).
   The polarity asymmetry comes only from ĝ(c): a Br-rich contact creates vacancies faster than a
   Cl-rich one (half the formation-energy difference, Brønsted factor ½, and the species-resolved
   transfer barrier).
4. Two calibrated constants, fitted on the ±2 V/µm data as the paper fitted its source strengths
   (never on the ±4 V/µm points reported):
   * λ, the electrode activation per volt: forward migration at +2 V/µm after 4 h equals the
     paper's mobility line, μ E t = 0.490 µm;
   * δ_el, the Cl–Br difference of the electrode-transfer barrier (the KMC measures the creation
     rate per species, so δ_el rescales the Cl share exactly): forward/|reverse| migration at
     ±2 V/µm equals the paper's rectification ratio, 20 (the paper gives reverse migration only
     as ≈ 1/20 of forward and nearly bias independent).
5. Device runs at every field (cached), a no-source control, KMC standard errors propagated by
   redrawing all fitted inputs from their covariances, figures, ``summary.json``, ``report.md``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .bridge import (fit_log_polynomial, fit_onsager, fit_rate_law, sample_log_polynomial, sample_onsager)
from .device_runs import ContinuumInputs
from .materials import Material

log = logging.getLogger(__name__)

#: the paper's field set of Fig. 1e (V/µm)
PAPER_FIELDS = (0.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0)


@dataclass(frozen=True)
class BridgeFits:
    onsager: object
    x_v_eq: object
    creation_br: object  # fit of the Br-removal creation rate per ion site at η = 0
    creation_cl: object  # fit of the Cl-removal creation rate per ion site at η = 0 (KMC δ)
    transfer: object | None  # rate-law fit with the overpotential (transfer coefficient)
    delta_kmc_eV: float
    kT_eV: float


def _reference(material: Material):
    from halide_ionics.continuum import manning_maa

    return lambda c: manning_maa(np.asarray(c, float), material.w_br_Hz, material.w_cl_Hz)


def fit_table(table, material: Material) -> BridgeFits:
    """All smooth fits of a coefficient table."""
    c = table.composition.values
    l = {p: table[f"l_{p}"].values for p in ("brbr", "brcl", "clcl")}
    se = {p: np.maximum(table[f"l_{p}_se"].values, 1e-12 * np.abs(table[f"l_{p}"].values).max())
          for p in ("brbr", "brcl", "clcl")}
    ons = fit_onsager(c, l, se, reference=_reference(material))
    xv = fit_log_polynomial(c, table.x_v_eq.values, np.maximum(table.x_v_eq_se.values, 1e-6 * table.x_v_eq.values))
    eta = table.overpotential.values
    j0 = int(np.argmin(np.abs(eta)))
    cr = table.creation_rate.values[:, j0]
    cr_se = table.creation_rate_se.values[:, j0]
    split = table.creation_species_fraction.values[:, j0]
    fits = []
    for s in (0, 1):
        part = cr * split[:, s]
        ok = part > 0
        rel = cr_se[ok] / cr[ok]
        fits.append(fit_log_polynomial(c[ok], part[ok], part[ok] * np.maximum(rel, 1e-4)))
    mask = np.isfinite(table.creation_rate.values)
    cc, ee = np.meshgrid(c, eta, indexing="ij")
    transfer = None
    if (mask & (ee != 0)).any():
        transfer = fit_rate_law(cc[mask], ee[mask], table.creation_rate.values[mask],
                                table.creation_rate_se.values[mask], kT_eV=material.kT_eV)
    return BridgeFits(ons, xv, fits[0], fits[1], transfer, material.barrier_cl_eV - material.barrier_br_eV,
                      material.kT_eV)


def creation_law(fits: BridgeFits, c, delta_el_eV: float, cr_br=None, cr_cl=None):
    """ĝ(c) = r_c(c; δ_el)/r_c(0; δ_el): composition dependence of the creation rate per ion site."""
    c = np.asarray(c, float)
    fb = cr_br or fits.creation_br
    fc = cr_cl or fits.creation_cl
    scale = np.exp(-(delta_el_eV - fits.delta_kmc_eV) / fits.kT_eV)

    def total(x):
        x = np.asarray(x, float)
        br = np.where(x < 1.0, fb(np.minimum(x, 1.0)), 0.0)
        cl = np.where(x > 0.0, fc(np.maximum(x, 0.0)), 0.0)
        return br + scale * cl

    return total(c) / total(0.0)


def continuum_inputs(fits: BridgeFits, material: Material, lam_per_s_per_V: float, delta_el_eV: float,
                     rng: np.random.Generator | None = None, n_grid: int = 41) -> ContinuumInputs:
    """Continuum tables from the fits (or, with ``rng``, from one draw of their uncertainty)."""
    grid = np.linspace(0.0, 1.0, n_grid)
    ons, xv, fb, fc = fits.onsager, fits.x_v_eq, None, None
    if rng is not None:
        ons = sample_onsager(fits.onsager, _reference(material), rng)
        xv = sample_log_polynomial(fits.x_v_eq, rng)
        fb = sample_log_polynomial(fits.creation_br, rng)
        fc = sample_log_polynomial(fits.creation_cl, rng)
    bb, bc, cc = ons(grid)
    x_eq = xv(grid)
    x_eq = x_eq * material.vacancy_fraction_br / xv(0.0)  # absolute level: the material's x_V(Br)
    k = lam_per_s_per_V * creation_law(fits, grid, delta_el_eV, fb, fc)
    return ContinuumInputs(
        c=tuple(grid), l_brbr_Hz=tuple(np.maximum(bb, 0.0)), l_brcl_Hz=tuple(bc), l_clcl_Hz=tuple(np.maximum(cc, 0.0)),
        x_v_eq=tuple(x_eq), k_create0_per_s=tuple(k), k_annihilate0_per_s=tuple(k),
        temperature_K=material.temperature_K, lattice_constant_A=material.lattice_constant_A,
        permittivity_rel=material.epsilon_r,
        source=f"KMC-derived; lambda={lam_per_s_per_V:.6g} /s/V, delta_el={delta_el_eV:.6g} eV",
    )


# ------------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class ReproduceConfig:
    """Settings of the main job (defaults: the full reproduction; :meth:`quick`: a smoke run)."""

    fields_V_per_um: tuple = PAPER_FIELDS
    hours: float = 4.0
    #: calibration field (V/µm) — the paper fitted its source strengths on ±2 V/µm
    calibration_field_V_per_um: float = 2.0
    #: paper's rectification ratio, used at ±calibration field for δ_el
    calibration_ratio: float = 20.0
    #: draws of the KMC-derived inputs for the propagated error bars
    uncertainty_samples: int = 4
    nodes: int = 600
    rtol: float = 1e-5
    seed: int = 2020

    @classmethod
    def quick(cls) -> "ReproduceConfig":
        return cls(fields_V_per_um=(0.0, 2.0, 4.0, -2.0, -4.0), uncertainty_samples=2, nodes=300, rtol=1e-4)

    def solver(self) -> dict:
        return {"nodes": int(self.nodes), "rtol": float(self.rtol)}

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["fields_V_per_um"] = list(self.fields_V_per_um)
        return d


# ------------------------------------------------------------------------------ device sweeps
def _device_tasks(inputs: ContinuumInputs, fields, hours, sources, solver, tag: str):
    from .sweep import Task

    d = inputs.to_dict()
    return [Task(key=f"{tag}/{float(f):+.3f}/{int(bool(sources))}", func="halide_ionics.coupling.device_runs:device_task",
                 kwargs=dict(inputs=d, field_V_per_um=float(f), hours=float(hours), sources=bool(sources),
                             solver=dict(solver)), spawn_key=())
            for f in fields]


def run_devices(inputs: ContinuumInputs, fields, cfg: ReproduceConfig, workdir, sources=True, executor=None,
                workers=1, tag="run", progress=False) -> dict:
    """Device results keyed by field (cached in ``workdir`` by content hash)."""
    from .sweep import run_sweep

    tasks = _device_tasks(inputs, fields, cfg.hours, sources, cfg.solver(), tag)
    res = run_sweep(tasks, workdir, root_seed=cfg.seed, executor=executor, workers=workers, progress=progress,
                    description=f"device runs ({tag})")
    return {float(f): res[t.key] for f, t in zip(fields, tasks)}


def _secant_log(fn, x0, x1, target, log_x: bool, tol=2e-3, max_iter=12):
    """Solve log fn(x) = log target by the secant method (in log x when ``log_x``)."""
    tx = np.log if log_x else (lambda v: v)
    ix = np.exp if log_x else (lambda v: v)
    u0, u1 = tx(x0), tx(x1)
    g0 = np.log(fn(ix(u0))) - np.log(target)
    g1 = np.log(fn(ix(u1))) - np.log(target)
    for _ in range(max_iter):
        if abs(g1) < tol:
            break
        if g1 == g0:
            raise RuntimeError("calibration stalled: the target does not depend on the parameter")
        u2 = u1 - g1 * (u1 - u0) / (g1 - g0)
        u0, g0 = u1, g1
        u1 = u2
        g1 = np.log(fn(ix(u1))) - np.log(target)
    if abs(g1) >= tol:
        raise RuntimeError(f"calibration did not converge (log residual {g1:.3g})")
    return float(ix(u1))


def calibrate(fits: BridgeFits, material: Material, cfg: ReproduceConfig, workdir, executor=None, workers=1):
    """λ and δ_el from the ±2 V/µm data (see the module docstring). Returns a record."""
    from .targets import paper_slope_um_per_V_per_um

    E = cfg.calibration_field_V_per_um
    fwd_target = paper_slope_um_per_V_per_um(cfg.hours * 3600.0) * E
    state = {"delta": fits.delta_kmc_eV, "lam": 3.0e-6}
    runs = []

    def migration(lam, delta, field):
        inp = continuum_inputs(fits, material, lam, delta)
        r = run_devices(inp, [field], cfg, workdir, executor=executor, workers=workers, tag="calibration")[float(field)]
        runs.append({"lambda_per_s_per_V": lam, "delta_el_eV": delta, "field_V_per_um": field,
                     "migration_um": r["final_migration_length_um"], "status": r["status"]})
        if r["status"] != "ok":
            raise RuntimeError(f"calibration run failed at {field} V/um: {r['message']}")
        return r["final_migration_length_um"]

    for _ in range(3):  # alternate: λ on the forward point, δ_el on the ratio
        lam = _secant_log(lambda x: migration(x, state["delta"], E), state["lam"], 1.3 * state["lam"], fwd_target,
                          log_x=True)
        state["lam"] = lam
        rev_target = fwd_target / cfg.calibration_ratio
        delta = _secant_log(lambda d: abs(migration(lam, d, -E)), state["delta"], state["delta"] - 0.01, rev_target,
                            log_x=False)
        moved = abs(delta - state["delta"])
        state["delta"] = delta
        if moved < 1e-4 and abs(np.log(migration(lam, delta, E) / fwd_target)) < 2e-3:
            break
    return {
        "lambda_per_s_per_V": state["lam"],
        "delta_el_eV": state["delta"],
        "delta_lattice_eV": fits.delta_kmc_eV,
        "fitted_to": {
            "lambda_per_s_per_V": f"forward migration at +{E:g} V/um after {cfg.hours:g} h = paper mobility line "
                                  f"({fwd_target:.4f} um)",
            "delta_el_eV": f"forward/|reverse| migration at +-{E:g} V/um = paper rectification ratio "
                           f"({cfg.calibration_ratio:g})",
        },
        "forward_target_um": fwd_target,
        "reverse_target_um": fwd_target / cfg.calibration_ratio,
        "runs": runs,
    }


# ------------------------------------------------------------------------------ the main job
def _gap_edges(inputs: ContinuumInputs):
    from halide_ionics.continuum import Geometry

    g = Geometry()
    a = 0.5 * (g.wire_length_um - g.gap_um)
    b = 0.5 * (g.wire_length_um + g.gap_um)
    return [(a - g.electrode_width_um, a), (b, b + g.electrode_width_um)]


def reproduce(out_dir, quick: bool = False, workers: int = 1, executor=None, cache_dir=None, progress: bool = False,
              material: Material | None = None, config: ReproduceConfig | None = None,
              coefficient_config=None) -> dict:
    """Run the whole reproduction into ``out_dir``; returns the summary (also ``summary.json``)."""
    import time
    from pathlib import Path

    import xarray as xr

    from halide_ionics import __version__
    from halide_ionics.io import provenance, write_json_atomic, write_text_atomic

    from . import figures
    from .coefficients import CoefficientConfig, compute_table, write_table
    from .materials import CSPB_BR_CL_298K
    from .sweep import default_cache_dir
    from .targets import evaluate_targets, paper_slope_um_per_V_per_um

    t_start = time.perf_counter()
    out = Path(out_dir)
    material = material or CSPB_BR_CL_298K
    cfg = config or (ReproduceConfig.quick() if quick else ReproduceConfig())
    ccfg = coefficient_config or (CoefficientConfig.quick() if quick else CoefficientConfig())
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    timings = {}

    # 1. coefficients (KMC)
    t = time.perf_counter()
    table = compute_table(material, ccfg, seed=cfg.seed, workers=workers, executor=executor, cache_dir=cache,
                          progress=progress)
    timings["coefficients_s"] = time.perf_counter() - t
    fits = fit_table(table, material)

    # 2. calibration on the ±2 V/µm data
    t = time.perf_counter()
    devdir = cache / "devices"
    cal = calibrate(fits, material, cfg, devdir, executor=executor, workers=workers)
    timings["calibration_s"] = time.perf_counter() - t
    inputs = continuum_inputs(fits, material, cal["lambda_per_s_per_V"], cal["delta_el_eV"])

    # 3. device runs, no-source controls, propagated uncertainty
    t = time.perf_counter()
    fields = [float(f) for f in cfg.fields_V_per_um]
    runs = run_devices(inputs, fields, cfg, devdir, executor=executor, workers=workers, tag="main", progress=progress)
    ctrl_fields = sorted({f for f in (4.0, -4.0) if f in fields} or {max(fields), min(fields)})
    nosrc = run_devices(inputs, ctrl_fields, cfg, devdir, sources=False, executor=executor, workers=workers,
                        tag="nosrc")
    draws = []
    for k in range(cfg.uncertainty_samples):
        rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(7, k)))
        inp_k = continuum_inputs(fits, material, cal["lambda_per_s_per_V"], cal["delta_el_eV"], rng=rng)
        rk = run_devices(inp_k, fields, cfg, devdir, executor=executor, workers=workers, tag=f"draw{k}")
        # a draw whose run did not finish carries no value for that field (never a partial run)
        draws.append([rk[f]["final_migration_length_um"] if rk[f]["status"] == "ok" else np.nan for f in fields])
    timings["device_runs_s"] = time.perf_counter() - t
    mig = {f: runs[f]["final_migration_length_um"] for f in fields}
    d = np.asarray(draws, dtype=float).reshape(len(draws), len(fields))
    n_ok = np.isfinite(d).sum(axis=0)
    mig_se = np.full(len(fields), np.nan)
    for i in np.nonzero(n_ok >= 2)[0]:
        mig_se[i] = np.nanstd(d[:, i], ddof=1)
    if (n_ok < len(draws)).any():
        log.warning("uncertainty draws that did not finish were left out at fields %s",
                    [f for f, n in zip(fields, n_ok) if n < len(draws)])
    bad = [f for f in fields if runs[f]["status"] != "ok"]
    if bad:
        log.warning("device runs did not finish at fields %s", bad)

    # 4. targets
    f_fwd = max(fields)
    f_rev = min(fields)
    run_f, run_r = runs[f_fwd], runs[f_rev]
    tgt = evaluate_targets(
        mig, no_source_migration_um=nosrc[f_fwd]["final_migration_length_um"], cl_tail_forward=run_f["cl_tail"],
        front_width_growth_um=run_f["front_width_final_um"] - run_f["front_width_initial_um"],
        x_v_front_forward=run_f["x_v_front"], x_v_front_forward_no_sources=nosrc[f_fwd]["x_v_front"],
        x_v_front_reverse=run_r["x_v_front"], duration_s=cfg.hours * 3600.0)

    # 5. outputs
    out.mkdir(parents=True, exist_ok=True)
    write_table(table, out / "coefficients.nc")
    times = max((runs[f]["times_s"] for f in fields), key=len)
    dsm = xr.Dataset(
        {"migration_length": (("field", "time"), _padded([runs[f]["migration_length_um"] for f in fields], len(times)),
                              {"units": "um", "long_name": "composition-front migration toward the Br end"}),
         "migration_length_se": ("field", mig_se, {"units": "um", "long_name": "KMC errors propagated"}),
         "site_conservation_error": ("field", [runs[f]["site_conservation_error"] for f in fields], {"units": "1"})},
        coords={"field": ("field", fields, {"units": "V/um"}), "time": ("time", times, {"units": "s"})})
    from halide_ionics.io import atomic_path, provenance_attrs

    dsm.attrs.update(provenance_attrs(config=cfg.to_dict(), seed=cfg.seed, calibration=json_safe(cal)))
    with atomic_path(out / "migration.nc") as tmp:
        dsm.to_netcdf(tmp, engine="h5netcdf")

    gap_edges = _gap_edges(inputs)
    slope = paper_slope_um_per_V_per_um(cfg.hours * 3600.0)
    from halide_ionics.structures import build_junction
    from halide_ionics.structures.snapshots import write_junction_png

    atoms = build_junction(cells=(6, 6, 40), interface_z_fraction=0.5, x_br_ends=(1.0, 0.1),
                           vacancy_fraction=0.01, seed=cfg.seed)
    write_junction_png(atoms, out / "fig1c_junction.png")
    figures.save(figures.migration_vs_field(fields, [mig[f] for f in fields], mig_se, slope,
                                            cfg.calibration_field_V_per_um), out / "fig1e_migration_vs_field.png")
    figures.save(figures.composition_profiles(run_f, run_r, gap_edges), out / "fig2_composition_profiles.png")
    figures.save(figures.vacancy_profiles({(f_fwd, True): run_f, (f_fwd, False): nosrc[f_fwd],
                                           (f_rev, True): run_r, (f_rev, False): nosrc[f_rev]}, gap_edges),
                 out / "fig3_vacancy_profiles.png")
    figures.save(figures.no_source_control(run_f, nosrc[f_fwd]), out / "figS10_no_sources.png")
    cg = np.linspace(0, 1, 101)
    figures.save(figures.coefficient_tables(table, fits, material,
                                            (cg, creation_law(fits, cg, cal["delta_el_eV"]))),
                 out / "coefficients.png")

    timings["total_s"] = time.perf_counter() - t_start
    summary = {
        "rectification_ratio_4V": tgt["rectification_ratio_4V"],
        "reverse_migration_sign": tgt["reverse_migration_sign"],
        "migration_length_um": {f"{f:g}": mig[f] for f in fields},
        "migration_length_se_um": {f"{f:g}": float(s) for f, s in zip(fields, mig_se)},
        "forward_slope_um_per_V_per_um": tgt["forward_slope_um_per_V_per_um"],
        "forward_r2": tgt["forward_r2"],
        "no_source_migration_um": tgt["no_source_migration_um"],
        "targets": tgt["targets"],
        "all_targets_pass": tgt["all_pass"],
        "paper_slope_um_per_V_per_um": tgt["paper_slope_um_per_V_per_um"],
        "forward_intercept_um": tgt["forward_intercept_um"],
        "calibration": json_safe({k: v for k, v in cal.items() if k != "runs"}),
        "kmc": {
            "transfer_coefficient": None if fits.transfer is None else fits.transfer.beta,
            "transfer_coefficient_se": None if fits.transfer is None else fits.transfer.beta_se,
            "onsager_psd_projection": fits.onsager.psd_projection_max,
            "creation_law_g_c0.9": float(creation_law(fits, [0.9], cal["delta_el_eV"])[0]),
            "x_v_eq_ratio_c0.9": float(np.squeeze(fits.x_v_eq(np.array([0.9])) / fits.x_v_eq(np.array([0.0])))),
        },
        "runs": {f"{f:g}": {k: runs[f][k] for k in ("status", "steps", "site_conservation_error", "wall_seconds")}
                 for f in fields},
        "timings_s": timings,
        "quick": bool(quick),
        "provenance": provenance(config={"reproduce": cfg.to_dict(), "coefficients": ccfg.to_dict(),
                                         "material": material.to_dict()}, seed=cfg.seed, version=__version__),
    }
    summary = json_safe(summary)
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "report.md", render_report(summary))
    return summary


def _padded(rows, n):
    """Stack time series, NaN-padding a run that ended early (its status says why)."""
    out = np.full((len(rows), n), np.nan)
    for i, r in enumerate(rows):
        r = np.asarray(r, float)[:n]
        out[i, : r.size] = r
    return out


def json_safe(obj):
    """Plain-JSON copy (numpy scalars/arrays → Python; NaN/inf kept as floats)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def render_report(s: dict) -> str:
    rows = "\n".join(
        f"| {r['target']} | {r['paper']} | {r['value']:.4g} | {r['accept']} | {'PASS' if r['pass'] else 'FAIL'} |"
        if isinstance(r["value"], (int, float)) else
        f"| {r['target']} | {r['paper']} | {r['value']} | {r['accept']} | {'PASS' if r['pass'] else 'FAIL'} |"
        for r in s["targets"])
    mig = "\n".join(f"| {f} | {m:+.4f} | {s['migration_length_se_um'][f]:.4f} |"
                    for f, m in s["migration_length_um"].items())
    cal = s["calibration"]
    return f"""# halide-ionics reproduction of Kong et al., Nano Lett. 2020

halide-ionics {s['provenance']['version']}, seed {s['provenance']['seed']}, created {s['provenance']['created_utc']}{' (QUICK run: reduced sizes)' if s['quick'] else ''}.

Lattice KMC → Onsager coefficients ℓ_ij(c), x_V^eq(c), electrode creation law ĝ(c) → 1D device
solver (reaction–drift–diffusion + Poisson) → migration of the CsPbBr3–CsPbCl3 composition front.

## Targets (docs/model.md §5)

| target | paper | this run | accept | result |
|---|---|---|---|---|
{rows}

Rectification ratio at ±4 V/µm: **{s['rectification_ratio_4V']:.3g}** (forward / |reverse| migration).
Forward slope {s['forward_slope_um_per_V_per_um']:.4f} µm per V/µm (paper {s['paper_slope_um_per_V_per_um']:.4f}),
R² = {s['forward_r2']:.4f}.

## Calibrated constants (fitted on the ±2 V/µm data only)

* λ = {cal['lambda_per_s_per_V']:.4g} s⁻¹ V⁻¹ — {cal['fitted_to']['lambda_per_s_per_V']}
* δ_el = {cal['delta_el_eV']*1e3:.2f} meV — {cal['fitted_to']['delta_el_eV']}
  (the lattice hop-barrier difference is {cal['delta_lattice_eV']*1e3:.2f} meV)

Everything else is derived by the KMC: ℓ_ij(c), x_V^eq(c) (relative to pure CsPbBr3), the
composition dependence of the electrode creation rate and its transfer coefficient
β = {s['kmc']['transfer_coefficient']} (KMC; Brønsted ½ expected).

## Migration length after 4 h

| field (V/µm) | migration (µm) | ± KMC-propagated SE (µm) |
|---|---|---|
{mig}

## Figures

![Fig. 1c junction snapshot](fig1c_junction.png)

![Fig. 1e migration vs field](fig1e_migration_vs_field.png)

![Fig. 2 composition profiles](fig2_composition_profiles.png)

![Fig. 3 composition and vacancy profiles](fig3_vacancy_profiles.png)

![Fig. S10 no-source control](figS10_no_sources.png)

![KMC coefficients](coefficients.png)

Timings: {', '.join(f'{k} {v:.1f}' for k, v in s['timings_s'].items())}.
"""
