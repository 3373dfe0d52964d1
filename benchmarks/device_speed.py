"""Speed of the device solver against a straightforward scipy method-of-lines baseline.

Problem: the built-in paper device, forward 4 V/um for 4 h, 1000 nodes, rtol 1e-6 (atol as the
solver default).  Ours: the compiled variable-order NDF integrator (continuum.kernels.advance: analytic
Jacobian, block-tridiagonal LU, whole time loop in numba), best of ``--repeats`` runs after a
warm-up run that loads/compiles the kernels.  Baseline: ``scipy.integrate.solve_ivp(method="BDF")`` on
the same semi-discretisation (same residual kernel), with Poisson turned into a fast relaxation
``tau dpsi/dt = Poisson residual`` (solve_ivp has no mass matrix / DAE support) and a banded
``jac_sparsity`` so scipy builds its finite-difference Jacobian by column groups; same
rtol/atol on x_Br and x_V.  Accuracy: both runs are compared with a tight-tolerance run of ours
(``--reference-rtol``, rtol = atol = 1e-9 by default) at the final time -- migration length, max
|x_Br| difference, max relative x_V difference (floored at atol * x_V,ref) -- and with each other.
Prints JSON with both wall times, the ratio, the accuracy figures and the 1-minute load average
at the start and end (the timings are only meaningful on a quiet machine).

    python benchmarks/device_speed.py [--nodes 1000] [--hours 4] [--skip-baseline] [--skip-reference]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def ours(nodes, hours, field, rtol, repeats=5, atol=None):
    from halide_ionics.continuum import DeviceConfig, simulate

    kw = {} if atol is None else {"atol": atol}
    simulate(DeviceConfig.paper_device(field, 0.01, nodes=60, rtol=rtol))  # warm-up: numba cache / compile
    cfg = DeviceConfig.paper_device(field, hours, nodes=nodes, rtol=rtol, **kw)
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = simulate(cfg)
        dt = time.perf_counter() - t0
        if best is None or dt < best[0]:
            best = (dt, r)
    return best


def baseline(nodes, hours, field, rtol, tau_s=1e-12):
    from scipy.integrate import solve_ivp
    from scipy.sparse import diags

    from halide_ionics.continuum import DeviceConfig, DeviceModel
    from halide_ionics.continuum import kernels as K

    cfg = DeviceConfig.paper_device(field, hours, nodes=nodes, rtol=rtol)
    m = DeviceModel(cfg)
    V = cfg.bias.steps[0][1]
    args = m._args(V)
    n3 = 3 * m.n
    R = np.empty(n3)
    abT = np.empty((n3, K.LDAB))
    wk = np.empty((m.n, K.NW))
    zero = np.zeros(n3)
    vol = m.vol
    lap = np.zeros(m.n)
    lap[:-1] += 1.0 / m.hface
    lap[1:] += 1.0 / m.hface
    dir_ = m.dirich.astype(bool)
    psc = np.where(dir_, -1.0 / tau_s, 1.0 / (tau_s * lap))
    nevals = [0]

    def f(t, y):
        nevals[0] += 1
        if K.assemble(y, 0.0, zero, False, R, abT, wk, *args) != 0:
            return np.full(n3, np.nan)
        d = np.empty(n3)
        d[0::3] = -R[0::3] / vol
        d[1::3] = -R[1::3] / vol
        d[2::3] = R[2::3] * psc
        return d

    y0 = m.solve_potential(m.y_initial, V)
    sp = diags([np.ones(n3 - abs(k)) for k in range(-K.KL, K.KU + 1)], list(range(-K.KL, K.KU + 1)), format="csc")
    atol = np.empty(n3)
    atol[0::3] = cfg.solver.atol
    atol[1::3] = cfg.solver.atol * m.x_v_ref
    atol[2::3] = 1e-3
    T = cfg.bias.duration_s
    t_eval = np.linspace(0.0, T, cfg.solver.n_outputs)
    t0 = time.perf_counter()
    sol = solve_ivp(f, (0.0, T), y0, method="BDF", rtol=rtol, atol=atol, jac_sparsity=sp, t_eval=t_eval)
    wall = time.perf_counter() - t0
    return wall, sol, m, nevals[0]


def _profile_diffs(xb, xv, xb_ref, xv_ref, xv_floor):
    return {"max_abs_diff_x_br": float(np.abs(xb - xb_ref).max()),
            "max_rel_diff_x_v": float(np.max(np.abs(xv - xv_ref) / (np.abs(xv_ref) + xv_floor)))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--hours", type=float, default=4.0)
    p.add_argument("--field", type=float, default=4.0)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--reference-rtol", type=float, default=1e-9)
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--skip-reference", action="store_true")
    a = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    t_ours, r = ours(a.nodes, a.hours, a.field, a.rtol, a.repeats)
    out = {"nodes": a.nodes, "hours": a.hours, "field_V_per_um": a.field, "rtol": a.rtol,
           "atol": r.config.solver.atol, "ours_wall_s": t_ours, "ours_status": r.status, "ours_steps": r.steps,
           "ours_rejected_steps": r.rejected_steps, "ours_newton_iterations": r.newton_iterations,
           "ours_migration_length_um": r.final_migration_length_um,
           "ours_site_conservation_error": r.site_conservation_error,
           "ours_max_step_conservation_error": r.max_step_conservation_error, "target_ours_s": 0.5}
    xv_floor = r.config.solver.atol * float(r.x_v[0].max())
    ref = None
    if not a.skip_reference:
        _, ref = ours(a.nodes, a.hours, a.field, a.reference_rtol, repeats=1, atol=a.reference_rtol)
        Lr = ref.final_migration_length_um
        out.update({"reference_rtol": a.reference_rtol, "reference_steps": ref.steps,
                    "reference_migration_length_um": Lr,
                    "ours_migration_length_rel_err": abs(r.final_migration_length_um - Lr) / abs(Lr)})
        out.update({"ours_vs_reference_" + k: v for k, v in
                    _profile_diffs(r.x_br[-1], r.x_v[-1], ref.x_br[-1], ref.x_v[-1], xv_floor).items()})
    if not a.skip_baseline:
        from halide_ionics.continuum.observables import front_position

        wall, sol, m, nev = baseline(a.nodes, a.hours, a.field, a.rtol)
        yb = sol.y[:, -1]
        xb = yb[0::3]
        z = m.mesh.z_um
        f0 = front_position(z, sol.y[0::3, 0], 0.55, m.mesh.junction_um)
        f1 = front_position(z, xb, 0.55, f0)
        Lb = f0 - f1
        out.update({
            "baseline_wall_s": wall, "baseline_status": int(sol.status), "baseline_message": sol.message,
            "baseline_nfev": int(sol.nfev), "baseline_njev": int(sol.njev), "baseline_nlu": int(sol.nlu),
            "baseline_migration_length_um": Lb,
            "speedup": wall / t_ours, "target_speedup": 20.0,
            "migration_length_rel_diff": abs(Lb - r.final_migration_length_um) / abs(r.final_migration_length_um),
        })
        out.update({"ours_vs_baseline_" + k: v for k, v in
                    _profile_diffs(r.x_br[-1], r.x_v[-1], xb, yb[1::3], xv_floor).items()})
        if ref is not None:
            Lr = ref.final_migration_length_um
            out["baseline_migration_length_rel_err"] = abs(Lb - Lr) / abs(Lr)
            out.update({"baseline_vs_reference_" + k: v for k, v in
                        _profile_diffs(xb, yb[1::3], ref.x_br[-1], ref.x_v[-1], xv_floor).items()})
    out["load_average_1min"] = [load0, os.getloadavg()[0]]
    from halide_ionics.io import dumps_json

    print(dumps_json(out))  # strict JSON: NaN/inf -> null


if __name__ == "__main__":
    main()
