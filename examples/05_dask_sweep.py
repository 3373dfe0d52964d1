"""A KMC coefficient sweep on a Dask cluster: the same code a cluster scheduler takes.

    python examples/05_dask_sweep.py [--quick] [--out DIR] [--scheduler ADDRESS]

Without --scheduler a LocalCluster on this machine stands in for the cluster. Every task's random
stream is keyed by its identity, so the table does not depend on the number of workers, and the
finished tasks are cached: an interrupted sweep started again computes only what is missing.
"""
import argparse
from pathlib import Path

from distributed import Client, LocalCluster

from halide_ionics.coupling.coefficients import CoefficientConfig, compute_table, write_table
from halide_ionics.coupling.materials import CSPB_BR_CL_298K



def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="a tiny table")
    p.add_argument("--out", default="examples-out/dask")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (tcp://host:8786)")
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    out = Path(args.out)

    cfg = (CoefficientConfig(compositions=5, onsager_cells=4, onsager_replicas=2, onsager_hops_per_replica=5_000,
                             onsager_equilibration_hops=200, electrode_cells=4, electrode_replicas=2,
                             electrode_events_per_replica=1000, transfer_compositions=(0.0,))
           if args.quick else CoefficientConfig())

    cluster = None if args.scheduler else LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    with Client(args.scheduler or cluster) as client:
        table = compute_table(CSPB_BR_CL_298K, cfg, seed=2020, executor=client.get_executor(pure=False),
                              cache_dir=args.cache_dir)
    if cluster is not None:
        cluster.close()
    write_table(table, out / "table.nc")
    print(f"{table.sizes['composition']} compositions -> {out}/table.nc")


if __name__ == "__main__":  # Dask worker processes may import this file: only the parent runs
    main()
