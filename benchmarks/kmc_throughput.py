"""KMC throughput on the perovskite X sublattice; prints JSON with ``hops_per_second``.

Setup: 16³ cubic cells (12 288 halide sites, periodic), 50/50 random Br/Cl alloy, w_Cl/w_Br =
0.1, uniform field on, environment-dependent barriers on, composition-dependent vacancy
formation energies on; one vacancy, and 1 % vacancies. Exponential clock, no per-ion tracking
(the default Simulation settings); also with per-ion tracking and with the mean-residence-time
clock (no logarithm per hop; what the Onsager estimators use). Compilation is excluded (a warm-up run comes first).

Usage: python benchmarks/kmc_throughput.py [--hops N] [--cells C]
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads must not steal the core

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from halide_ionics.kmc import RateModel, Simulation, random_alloy  # noqa: E402
from halide_ionics.structures import build_lattice  # noqa: E402


def measure(graph, n_vac, hops, track_ions=False, seed=1, clock="exponential"):
    rng = np.random.default_rng(seed)
    occ = random_alloy(graph.n_sites, 0.5, n_vac, rng)
    model = RateModel.from_rate_ratio(0.1, barrier_shift_br_eV=0.01, barrier_shift_cl_eV=0.02,
                                      vacancy_formation_br_eV=1.32, vacancy_formation_cl_eV=1.44,
                                      field_V_per_A=1e-3)
    sim = Simulation(graph, occ, model, rng, track_ions=track_ions, clock=clock)
    sim.run(hops=10_000)  # compile / warm up
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        sim.run(hops=hops)
        best = max(best, hops / (time.perf_counter() - t0))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hops", type=int, default=5_000_000)
    ap.add_argument("--cells", type=int, default=16)
    a = ap.parse_args()
    g = build_lattice("perovskite-x", a.cells)
    n1 = max(1, round(0.01 * g.n_sites))
    out = {
        "lattice": "perovskite-x", "cells": a.cells, "n_sites": g.n_sites, "x_cl": 0.5, "rate_ratio": 0.1,
        "field": True, "environment_barriers": True,
        "single_vacancy": {"n_vacancies": 1, "hops_per_second": measure(g, 1, a.hops)},
        "one_percent_vacancies": {"n_vacancies": n1, "hops_per_second": measure(g, n1, a.hops // 5)},
        "single_vacancy_tracking_ions": {"n_vacancies": 1, "hops_per_second": measure(g, 1, a.hops, True)},
        "single_vacancy_mean_clock": {"n_vacancies": 1, "hops_per_second": measure(g, 1, a.hops, clock="mean")},
        "cpu": platform.processor() or platform.machine(),
    }
    out["hops_per_second"] = out["single_vacancy"]["hops_per_second"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
