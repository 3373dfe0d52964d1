"""KMC throughput on the perovskite X sublattice; prints JSON with ``hops_per_second``.

Setup: 16³ cubic cells (12 288 halide sites, periodic), 50/50 random Br/Cl alloy, w_Cl/w_Br =
0.1, uniform field on, environment-dependent barriers on, composition-dependent vacancy
formation energies on; one vacancy, and 1 % vacancies (the many-vacancy fast path and, beside
it, the general loop it reproduces bit for bit). Exponential clock, no per-ion tracking
(the default Simulation settings); also with per-ion tracking and with the mean-residence-time
clock (what the Onsager estimators use). Compilation is excluded (a warm-up run comes first);
each case is timed ``--repeats`` times and the median is reported (with the maximum and all
values, and the load average before and after: the machine should be quiet).

Usage: python benchmarks/kmc_throughput.py [--hops N] [--cells C]
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads must not steal the core

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from halide_ionics.kmc import RateModel, Simulation, random_alloy  # noqa: E402
from halide_ionics.structures import build_lattice  # noqa: E402


def measure(graph, n_vac, hops, track_ions=False, seed=1, clock="exponential", repeats=5, fast=True):
    """Hops per second of ``repeats`` consecutive runs of ``hops`` hops after a warm-up:
    ``{"median", "max", "all"}``."""
    rng = np.random.default_rng(seed)
    occ = random_alloy(graph.n_sites, 0.5, n_vac, rng)
    model = RateModel.from_rate_ratio(0.1, barrier_shift_br_eV=0.01, barrier_shift_cl_eV=0.02,
                                      vacancy_formation_br_eV=1.32, vacancy_formation_cl_eV=1.44,
                                      field_V_per_A=1e-3)
    sim = Simulation(graph, occ, model, rng, track_ions=track_ions, clock=clock)
    sim._fast = fast  # False: the general loop (the reference the fast paths reproduce bit for bit)
    sim.run(hops=10_000)  # compile / warm up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim.run(hops=hops)
        rates.append(hops / (time.perf_counter() - t0))
    return {"median": float(np.median(rates)), "max": max(rates), "all": rates}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hops", type=int, default=5_000_000)
    ap.add_argument("--cells", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per case (median reported)")
    a = ap.parse_args()
    g = build_lattice("perovskite-x", a.cells)
    n1 = max(1, round(0.01 * g.n_sites))
    load0 = os.getloadavg()
    out = {
        "lattice": "perovskite-x", "cells": a.cells, "n_sites": g.n_sites, "x_cl": 0.5, "rate_ratio": 0.1,
        "field": True, "environment_barriers": True,
        "single_vacancy": {"n_vacancies": 1, "hops_per_second": measure(g, 1, a.hops, repeats=a.repeats)},
        "one_percent_vacancies": {"n_vacancies": n1,
                                  "hops_per_second": measure(g, n1, a.hops // 5, repeats=a.repeats)},
        "one_percent_vacancies_general_loop": {
            "n_vacancies": n1, "hops_per_second": measure(g, n1, a.hops // 5, repeats=a.repeats, fast=False)},
        "single_vacancy_tracking_ions": {"n_vacancies": 1,
                                         "hops_per_second": measure(g, 1, a.hops, True, repeats=a.repeats)},
        "single_vacancy_mean_clock": {"n_vacancies": 1,
                                      "hops_per_second": measure(g, 1, a.hops, clock="mean", repeats=a.repeats)},
        "cpu": platform.processor() or platform.machine(),
        "load_average_before_after": [load0, os.getloadavg()],
    }
    out["hops_per_second"] = out["single_vacancy"]["hops_per_second"]["median"]
    out["one_percent_over_single"] = (out["one_percent_vacancies"]["hops_per_second"]["median"]
                                      / out["single_vacancy"]["hops_per_second"]["median"])
    out["one_percent_fast_over_general"] = (out["one_percent_vacancies"]["hops_per_second"]["median"]
                                            / out["one_percent_vacancies_general_loop"]["hops_per_second"]["median"])
    from halide_ionics.io import dumps_json

    print(dumps_json(out))  # strict JSON: NaN/inf -> null


if __name__ == "__main__":
    main()
