"""Full multiscale-consistency run (issue #6); prints the discrepancy metrics as JSON.

KMC junction (6×6×60 cells, 8 replicas, self-consistent 1D Poisson, electrode contacts) against
the continuum fed by the full KMC coefficient table at the same vacancy level; sources off
(equilibrium screening vs continuum steady state and Poisson–Boltzmann), sources on (forward and
reverse bias at 5, 15, 30 s); refresh interval halved and a cross-section two cells wider.

Usage: python benchmarks/consistency_full.py [--workers 2] [--out consistency-full] [--seed 2020]
       [--cache-dir DIR] [--table quick|full]
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from halide_ionics.coupling.cli.consistency import _brief  # noqa: E402
from halide_ionics.coupling.consistency import ConsistencyConfig, run_consistency  # noqa: E402
from halide_ionics.io import dumps_json  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="consistency-full")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--table", choices=("quick", "full"), default="full")
    p.add_argument("--replicas", type=int, default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    cfg = ConsistencyConfig().replace(seed=a.seed, table_size=a.table)
    if a.replicas:
        cfg = cfg.replace(replicas=a.replicas)
    s = run_consistency(cfg, a.out, workers=a.workers, cache_dir=a.cache_dir, sensitivity="all")
    s["output"] = os.path.join(a.out, "consistency.json")
    out = _brief(s)
    out["config"] = cfg.to_dict()
    sys.stdout.write(dumps_json(out) + "\n")
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
