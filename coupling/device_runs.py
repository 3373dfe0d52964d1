"""Device runs driven by KMC-derived inputs: picklable task functions and the observables the
paper's targets need.

Continuum inputs travel between processes as plain tables (:class:`ContinuumInputs`), so any
``concurrent.futures`` executor can run them; each worker rebuilds the continuum objects.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.integrate import trapezoid

from .materials import Material


@dataclass(frozen=True)
class ContinuumInputs:
    """Everything the device solver takes from the coupling layer, as plain tables.

    ``c``: composition grid (Cl fraction of the ions); ``l_*_Hz``: per-vacancy Onsager
    coefficients; ``x_v_eq``: equilibrium vacancy site fraction; ``k_create0_per_s`` /
    ``k_annihilate0_per_s``: electrode rates (per ion site / per vacancy) at |ΔV| = 1 V for
    ``voltage_exponent`` 1 (the paper's linear pump), or the rates themselves for exponent 0
    (the KMC law); ``br_fraction``: the electrode's Br share of exchanged ions (None: the local
    composition); ``transfer_coefficient``: β of the overpotential factor (None: none);
    ``electrode_mode``: the law's name (:mod:`.electrode`); ``contact_mode``: "region"/"line".
    """

    c: tuple
    l_brbr_Hz: tuple
    l_brcl_Hz: tuple
    l_clcl_Hz: tuple
    x_v_eq: tuple
    k_create0_per_s: tuple
    k_annihilate0_per_s: tuple
    temperature_K: float
    lattice_constant_A: float
    permittivity_rel: float
    source: str = "KMC-derived (halide_ionics.coupling)"
    voltage_exponent: float = 1.0
    br_fraction: tuple | None = None
    transfer_coefficient: float | None = None
    electrode_mode: str = "paper-linear"
    contact_mode: str = "region"

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def device_config(self, field_V_per_um: float, hours: float, sources: bool = True, **solver_kw):
        from halide_ionics.continuum import (BiasSchedule, DeviceConfig, ElectrodeKinetics, Geometry,
                                             OnsagerCoefficients, SolverOptions, VacancyEquilibrium)
        from halide_ionics.continuum import Material as DeviceMaterial

        g = Geometry()
        return DeviceConfig(
            geometry=g,
            material=DeviceMaterial(temperature_K=self.temperature_K, lattice_constant_A=self.lattice_constant_A,
                                    coordination=8, permittivity_rel=self.permittivity_rel),
            onsager=OnsagerCoefficients.from_table(self.c, self.l_brbr_Hz, self.l_brcl_Hz, self.l_clcl_Hz,
                                                   source=self.source),
            vacancy=VacancyEquilibrium.from_table(self.c, self.x_v_eq, source=self.source),
            electrode=ElectrodeKinetics(c=self.c, k_create0_per_s=self.k_create0_per_s,
                                        k_annihilate0_per_s=self.k_annihilate0_per_s,
                                        voltage_exponent=self.voltage_exponent, source=self.source,
                                        br_fraction=self.br_fraction,
                                        transfer_coefficient=self.transfer_coefficient),
            sources=sources,
            bias=BiasSchedule.constant_field(field_V_per_um, hours=hours, gap_um=g.gap_um),
            solver=SolverOptions(**{"contact_mode": self.contact_mode, **solver_kw}),
        )


def inputs_from_dict(d: dict) -> ContinuumInputs:
    return ContinuumInputs(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def front_width_um(z_um: np.ndarray, x_br: np.ndarray, lo: float = 0.1, hi: float = 0.9) -> float:
    """Width of a falling composition step between the levels ``hi`` and ``lo`` of its height.

    x_Br is normalised between the profile's end values; the width runs from the first crossing
    of ``hi`` to the last crossing of ``lo`` (so a Cl tail running ahead of the front counts).
    """
    a, b = float(x_br[0]), float(x_br[-1])
    u = (np.asarray(x_br, float) - b) / (a - b)

    def crossings(level):
        s = np.sign(u - level)
        idx = np.nonzero(s[:-1] * s[1:] <= 0)[0]
        du = u[idx + 1] - u[idx]
        t = np.where(du == 0, 0.0, (level - u[idx]) / np.where(du == 0, 1.0, du))
        return z_um[idx] + t * (z_um[idx + 1] - z_um[idx])

    zh, zl = crossings(hi), crossings(lo)
    if zh.size == 0 or zl.size == 0:
        return float("nan")
    return float(zl.max() - zh.min())


def device_task(seed, inputs: dict, field_V_per_um: float, hours: float, sources: bool,
                solver: dict, profile_hours: tuple = (0.0, 1.0, 2.0, 4.0), overrides: dict | None = None) -> dict:
    """Run one device; return migration vs time, a few profiles and the target observables.

    ``seed`` is unused (the continuum is deterministic) but keeps the sweep signature uniform.
    ``overrides`` (studies; ``None`` is the plain device) may hold ``junction_offset_um`` (initial
    front position from mid-gap, + toward the Cl end), ``x_v_scale`` (multiplies the equilibrium
    vacancy level x_V^eq(c), hence the initial and background vacancy amount) and
    ``contact_source_scale`` ((Br-side, Cl-side) electrode source multipliers) and
    ``annihilation_scale`` (multiplies the electrode annihilation rate table: with ``x_v_scale``
    = s and ``annihilation_scale`` = 1/s an equilibrium-reservoir electrode law keeps its fixed
    point at the scaled x_V^eq).
    """
    from halide_ionics.continuum import simulate

    inp = inputs_from_dict(inputs)
    ov = dict(overrides or {})
    if "x_v_scale" in ov:
        from dataclasses import replace

        inp = replace(inp, x_v_eq=tuple(float(ov.pop("x_v_scale")) * np.asarray(inp.x_v_eq)))
    if "annihilation_scale" in ov:
        from dataclasses import replace

        inp = replace(inp, k_annihilate0_per_s=tuple(float(ov.pop("annihilation_scale"))
                                                     * np.asarray(inp.k_annihilate0_per_s)))
    out_times = sorted(set(np.linspace(0.0, hours * 3600.0, 25).tolist()) | {h * 3600.0 for h in profile_hours})
    cfg = inp.device_config(field_V_per_um, hours, sources=sources, output_times_s=tuple(out_times), **solver)
    if "junction_offset_um" in ov:
        from dataclasses import replace

        cfg = cfg.replace(geometry=replace(cfg.geometry, junction_offset_um=float(ov.pop("junction_offset_um"))))
    if "contact_source_scale" in ov:
        cfg = cfg.replace(contact_source_scale=tuple(ov.pop("contact_source_scale")))
    if ov:
        raise ValueError(f"unknown device overrides: {sorted(ov)}")
    r = simulate(cfg)
    z = np.asarray(r.mesh.z_um)
    g = cfg.geometry
    gap = (z >= 0.5 * (g.wire_length_um - g.gap_um)) & (z <= 0.5 * (g.wire_length_um + g.gap_um))
    br_end = 0.5 * (g.wire_length_um - g.gap_um) - g.electrode_width_um  # Br-side electrode outer edge
    prof_idx = [int(np.argmin(np.abs(r.times_s - h * 3600.0))) for h in profile_hours]
    width0 = front_width_um(z[gap], r.x_br[0][gap])
    width1 = front_width_um(z[gap], r.x_br[-1][gap])
    # Cl tail: largest Cl fraction of the ions in the Br segment ahead of the front (front - 0.25 um
    # down to the Br-side electrode), at the end of the run
    front = float(r.front_um[-1])
    ahead = (z < front - 0.25) & (z > br_end)
    xcl = r.x_cl[-1] / np.maximum(r.x_br[-1] + r.x_cl[-1], 1e-300)
    cl_tail = float(xcl[ahead].max()) if ahead.any() else float("nan")
    # vacancy level at the composition front (Fig. 3: refilled by injection or not)
    near = np.abs(z - front) <= 0.25
    x_v_front = float(trapezoid(r.x_v[-1][near], z[near]) / (z[near][-1] - z[near][0])) if near.sum() > 1 \
        else float("nan")
    # the same vacancy level relative to equilibrium at the local composition (refilled or not)
    c_near = (r.x_cl[-1] / np.maximum(r.x_br[-1] + r.x_cl[-1], 1e-300))[near]
    x_eq_near = np.interp(c_near, np.asarray(inp.c), np.asarray(inp.x_v_eq))
    x_v_front_eq = float(trapezoid(x_eq_near, z[near]) / (z[near][-1] - z[near][0])) if near.sum() > 1 \
        else float("nan")
    # Cl background of the Br segment at t = 0 in the same window (relative to the initial front)
    front0 = float(r.front_um[0])
    ahead0 = (z < front0 - 0.25) & (z > br_end)
    xcl0 = r.x_cl[0] / np.maximum(r.x_br[0] + r.x_cl[0], 1e-300)
    cl_tail0 = float(xcl0[ahead0].max()) if ahead0.any() else float("nan")
    return {
        "field_V_per_um": float(field_V_per_um),
        "sources": bool(sources),
        "status": r.status,
        "message": r.message,
        "times_s": np.asarray(r.times_s),
        "migration_length_um": np.asarray(r.migration_length_um),
        "final_migration_length_um": r.final_migration_length_um,
        "front_um": np.asarray(r.front_um),
        "site_conservation_error": float(r.site_conservation_error),
        # ion inventories (Br, Cl) against the integrated electrode exchange; the vacancy ledger (an
        # inventory ~1e-7 of the sites balanced against an exchange ~1e10 s^-1) is reported apart
        "ion_conservation_error": float(max(r.conservation_by_species["Br"], r.conservation_by_species["Cl"])),
        "vacancy_ledger_error": float(r.conservation_by_species["V"]),
        "max_x_v": float(r.max_x_v),
        "end_time_s": float(r.times_s[-1]) if len(r.times_s) else 0.0,
        "steps": int(r.steps),
        "wall_seconds": float(r.wall_seconds),
        "z_um": z,
        "profile_hours": tuple(profile_hours),
        "x_br": np.asarray(r.x_br)[prof_idx],
        "x_cl": np.asarray(r.x_cl)[prof_idx],
        "x_v": np.asarray(r.x_v)[prof_idx],
        "psi_V": np.asarray(r.psi_V)[prof_idx],
        "x_v_gap_mean": np.asarray(r.x_v_gap_mean),
        "front_width_initial_um": width0,
        "front_width_final_um": width1,
        "cl_tail": cl_tail,
        "cl_tail_initial": cl_tail0,
        "x_v_front": x_v_front,
        "x_v_front_over_eq": x_v_front / x_v_front_eq if x_v_front_eq > 0 else float("nan"),
    }


def material_inputs_defaults(material: Material) -> dict:
    return dict(temperature_K=material.temperature_K, lattice_constant_A=material.lattice_constant_A,
                permittivity_rel=material.epsilon_r)


# ------------------------------------------------------------------------------ device sweeps
def device_tasks(inputs: ContinuumInputs, fields, hours, sources, solver, tag: str):
    """One cached sweep task per field (content-hashed on the inputs, field, duration, solver)."""
    from .sweep import Task

    d = inputs.to_dict()
    return [Task(key=f"{tag}/{float(f):+.3f}/{int(bool(sources))}", func="halide_ionics.coupling.device_runs:device_task",
                 kwargs=dict(inputs=d, field_V_per_um=float(f), hours=float(hours), sources=bool(sources),
                             solver=dict(solver)), spawn_key=())
            for f in fields]


def run_devices(inputs: ContinuumInputs, fields, cfg, workdir, sources=True, executor=None, workers=1, tag="run",
                progress=False, solver: dict | None = None) -> dict:
    """Device results keyed by field (cached in ``workdir`` by content hash).

    ``cfg`` supplies ``hours``, ``seed`` and (unless ``solver`` is given) ``solver()``.
    """
    from .sweep import run_sweep

    tasks = device_tasks(inputs, fields, cfg.hours, sources, solver if solver is not None else cfg.solver(), tag)
    res = run_sweep(tasks, workdir, root_seed=cfg.seed, executor=executor, workers=workers, progress=progress,
                    description=f"device runs ({tag})")
    return {float(f): res[t.key] for f, t in zip(fields, tasks)}


def run_many(jobs, cfg, workdir, executor=None, workers=1, progress=False, description="device runs",
             solver: dict | None = None) -> list:
    """Run ``jobs`` = [(inputs, field, sources, tag), ...] as one cached sweep; results in order."""
    from .sweep import run_sweep

    tasks = []
    for inp, f, src, tag in jobs:
        tasks += device_tasks(inp, [f], cfg.hours, src, solver if solver is not None else cfg.solver(), tag)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("run_many: duplicate (tag, field, sources) among the jobs")
    res = run_sweep(tasks, workdir, root_seed=cfg.seed, executor=executor, workers=workers, progress=progress,
                    description=description)
    return [res[k] for k in keys]


def padded_series(rows, n):
    """Stack time series, NaN-padding a run that ended early (its status says why)."""
    out = np.full((len(rows), n), np.nan)
    for i, r in enumerate(rows):
        r = np.asarray(r, float)[:n]
        out[i, : r.size] = r
    return out


def run_ok(r: dict, hours: float) -> bool:
    """A run feeds a target only if it finished (status ok) and reached its end time."""
    return r.get("status") == "ok" and r.get("end_time_s", 0.0) >= hours * 3600.0 * (1 - 1e-9)
