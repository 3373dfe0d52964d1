"""``halide-ionics coefficients``: KMC coefficient-generation sweep → one labelled NetCDF table.

Example::

    halide-ionics coefficients --compositions 21 --workers 2 --out table.nc

Runs, per composition c = x_Cl/(x_Br + x_Cl), the Onsager/tracer KMC and the grand-canonical
electrode KMC, with standard errors from independent replicas. Every task's random stream is
keyed by its identity (``SeedSequence(seed, spawn_key=...)``), so the table does not depend on
``--workers``; finished tasks are kept in the cache, so an interrupted run started again only
computes what is missing. ``--scheduler ADDRESS`` runs the tasks on a Dask distributed cluster.
"""
from __future__ import annotations

import contextlib
import time

from halide_ionics.errors import InputError, check_int_range, check_seed

MAX_WORKERS = 1024

HELP = "KMC coefficient tables: Onsager l_ij(c), tracer factors, x_V^eq(c), electrode rate law"
DESCRIPTION = __doc__


def default_workers() -> int:
    from halide_ionics.parallel import available_cpus

    return available_cpus()


def add_execution_arguments(p) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: the CPUs available to this process)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="Dask distributed scheduler address (needs the 'cluster' extra); overrides --workers")
    p.add_argument("--cache-dir", default=None,
                   help="cache directory (default $HALIDE_IONICS_CACHE_DIR or ~/.cache/halide-ionics)")
    p.add_argument("--seed", type=int, default=2020, help="root seed (default 2020)")
    p.add_argument("--progress", action="store_true", help="show progress bars")


def add_arguments(p) -> None:
    p.add_argument("--compositions", type=int, default=None, help="number of compositions in [0, 1] (default 21)")
    p.add_argument("--quick", action="store_true", help="reduced run sizes (larger error bars)")
    p.add_argument("--onsager-replicas", type=int, default=None, help="replicas per composition (Onsager)")
    p.add_argument("--onsager-hops", type=int, default=None, help="hops per replica (Onsager)")
    p.add_argument("--electrode-replicas", type=int, default=None, help="replicas per point (electrode)")
    p.add_argument("--electrode-events", type=int, default=None, help="events per replica (electrode)")
    p.add_argument("--out", metavar="FILE.nc", required=True, help="where to write the table (NetCDF)")
    add_execution_arguments(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def coefficient_config(args):
    from dataclasses import replace

    from halide_ionics.coupling.coefficients import CoefficientConfig

    cfg = CoefficientConfig.quick() if args.quick else CoefficientConfig()
    over = {"compositions": args.compositions, "onsager_replicas": args.onsager_replicas,
            "onsager_hops_per_replica": args.onsager_hops, "electrode_replicas": args.electrode_replicas,
            "electrode_events_per_replica": args.electrode_events}
    over = {k: v for k, v in over.items() if v is not None}
    try:
        return replace(cfg, **over)
    except InputError as exc:  # name the option the user typed
        opt = {"compositions": "--compositions", "onsager_replicas": "--onsager-replicas",
               "onsager_hops_per_replica": "--onsager-hops", "electrode_replicas": "--electrode-replicas",
               "electrode_events_per_replica": "--electrode-events"}
        if exc.field in opt and exc.field in over:
            raise InputError(opt[exc.field], exc.value, exc.reason) from None
        raise


def check_execution_args(args) -> None:
    """Validate --seed, --workers, --scheduler (format) and --cache-dir before any work.

    ``args.cache_dir`` is replaced by the validated folder (from the option or the environment).
    """
    from halide_ionics.coupling.sweep import check_scheduler_address, resolve_cache_dir

    check_seed("--seed", args.seed)
    if args.workers is not None:
        check_int_range("--workers", args.workers, 1, MAX_WORKERS)
    if args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    args.cache_dir = resolve_cache_dir(args.cache_dir)


def executor_from_args(args):
    """(executor or None, workers, client or None); validates the execution options first."""
    check_execution_args(args)
    if args.scheduler is not None:
        from halide_ionics.coupling.sweep import dask_executor

        client, ex = dask_executor(args.scheduler)
        return ex, 1, client
    workers = default_workers() if args.workers is None else int(args.workers)
    return None, workers, None


@contextlib.contextmanager
def execution(args):
    """``with execution(args) as (executor, workers):`` — :func:`executor_from_args`, and the Dask
    client (if any) closed however the block ends."""
    ex, workers, client = executor_from_args(args)
    try:
        yield ex, workers
    finally:
        if client is not None:
            client.close()


def run(args) -> int:

    from halide_ionics.coupling.cli import print_json
    from halide_ionics.coupling.coefficients import compute_table, table_key, write_table
    from halide_ionics.coupling.materials import CSPB_BR_CL_298K
    from halide_ionics.io import check_output_path

    cfg = coefficient_config(args)  # validates
    out = check_output_path("--out", args.out, suffixes=(".nc", ".h5", ".nc4"))
    t0 = time.perf_counter()
    with execution(args) as (ex, workers):
        ds = compute_table(CSPB_BR_CL_298K, cfg, seed=args.seed, workers=workers, executor=ex,
                           cache_dir=args.cache_dir, progress=args.progress)
    write_table(ds, out)
    summary = {"out": str(out), "table_key": table_key(CSPB_BR_CL_298K, cfg, args.seed), "seed": args.seed,
               "compositions": int(ds.sizes["composition"]), "workers": workers,
               "wall_seconds": time.perf_counter() - t0, "config": cfg.to_dict()}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {out} ({summary['compositions']} compositions, {summary['wall_seconds']:.1f} s)")
    return 0
