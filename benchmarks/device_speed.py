"""Speed of the device solver against a straightforward scipy method-of-lines baseline.

Problem: the built-in paper device, forward 4 V/um for 4 h, 1000 nodes, rtol 1e-6 (atol as the
solver default).  Ours: adaptive BDF2 + analytic banded Newton in numba, timed after a warm-up
run that loads/compiles the kernels.  Baseline: ``scipy.integrate.solve_ivp(method="BDF")`` on
the same semi-discretisation (same residual kernel), with Poisson turned into a fast relaxation
``tau dpsi/dt = Poisson residual`` (solve_ivp has no mass matrix / DAE support) and a banded
``jac_sparsity`` so scipy builds its finite-difference Jacobian by column groups; same
rtol/atol on x_Br and x_V.  Prints JSON with both wall times, the ratio and the agreement of the
final migration length and profiles.

    python benchmarks/device_speed.py [--nodes 1000] [--hours 4] [--skip-baseline]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def ours(nodes, hours, field, rtol, repeats=3):
    from halide_ionics.continuum import DeviceConfig, simulate

    simulate(DeviceConfig.paper_device(field, 0.01, nodes=60, rtol=rtol))  # warm-up: numba cache / compile
    cfg = DeviceConfig.paper_device(field, hours, nodes=nodes, rtol=rtol)
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--hours", type=float, default=4.0)
    p.add_argument("--field", type=float, default=4.0)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--skip-baseline", action="store_true")
    a = p.parse_args(argv)
    t_ours, r = ours(a.nodes, a.hours, a.field, a.rtol)
    out = {"nodes": a.nodes, "hours": a.hours, "field_V_per_um": a.field, "rtol": a.rtol,
           "atol": r.config.solver.atol, "ours_wall_s": t_ours, "ours_steps": r.steps,
           "ours_newton_iterations": r.newton_iterations, "ours_migration_length_um": r.final_migration_length_um,
           "ours_site_conservation_error": r.site_conservation_error, "target_ours_s": 0.5}
    if not a.skip_baseline:
        from halide_ionics.continuum.observables import front_position

        wall, sol, m, nev = baseline(a.nodes, a.hours, a.field, a.rtol)
        yb = sol.y[:, -1]
        xb = yb[0::3]
        z = m.mesh.z_um
        f0 = front_position(z, sol.y[0::3, 0], 0.55, m.mesh.junction_um)
        f1 = front_position(z, xb, 0.55, f0)
        out.update({
            "baseline_wall_s": wall, "baseline_status": int(sol.status), "baseline_message": sol.message,
            "baseline_steps": int(sol.t.size and len(sol.t)), "baseline_nfev": int(sol.nfev), "baseline_njev": int(sol.njev),
            "baseline_nlu": int(sol.nlu), "baseline_migration_length_um": f0 - f1,
            "max_abs_diff_x_br_final": float(np.abs(xb - r.x_br[-1]).max()),
            "max_rel_diff_x_v_final": float(np.max(np.abs(yb[1::3] - r.x_v[-1]) / (np.abs(r.x_v[-1]) + 1e-6 * 1e-7))),
            "speedup": wall / t_ours, "target_speedup": 20.0,
        })
        out["migration_length_rel_diff"] = abs(out["baseline_migration_length_um"] - r.final_migration_length_um) / abs(
            r.final_migration_length_um)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
