"""Wall time of every study, cold (empty cache) and warm (everything cached).

Runs ``run_all_studies`` into a fresh cache (cold: KMC tables, calibration, device runs), then
each study again from that cache (warm: the acceptance is <= 30 s per study; the cold total of
``reproduce --studies all`` <= 10 min on 2 cores). Prints JSON with the timings, the 1-minute load
average at start and end (timings are only meaningful on a quiet machine) and each study's
targets.

    python benchmarks/studies_timing.py [--electrode paper-linear] [--workers 2] [--quick] [--cache-dir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--electrode", default="paper-linear")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--cache-dir", default=None, help="default: a fresh temporary directory (cold start)")
    a = p.parse_args()

    from halide_ionics.coupling.studies import STUDIES, run_all_studies, run_study

    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cache = a.cache_dir or os.path.join(tmp, "cache")
        t0 = time.perf_counter()
        index = run_all_studies(os.path.join(tmp, "cold"), mode=a.electrode, cache_dir=cache, workers=a.workers,
                                quick=a.quick)
        cold = time.perf_counter() - t0
        warm = {}
        for name in STUDIES:
            t = time.perf_counter()
            run_study(name, a.electrode, os.path.join(tmp, "warm", name), a.workers, quick=a.quick, cache_dir=cache)
            warm[name] = time.perf_counter() - t
    print(json.dumps({"electrode": a.electrode, "workers": a.workers, "quick": a.quick, "cold_all_s": cold,
                      "warm_s": warm, "warm_max_s": max(warm.values()), "load_1min": [load0, os.getloadavg()[0]],
                      "targets": {n: e["targets"] for n, e in index.items()}}, indent=2))


if __name__ == "__main__":
    main()
