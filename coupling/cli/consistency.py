"""``halide-ionics consistency``: direct KMC of a nanoscale junction against the continuum fed by
KMC-derived coefficients (issue #6).

Example::

    halide-ionics consistency --quick --out consistency-out --workers 2 --json

Builds the KMC coefficient table at the comparison's vacancy level (cached), runs replicas of an
atomistic Br/Cl wire with self-consistent 1D Poisson electrostatics and electrode contacts, and the
same device in the continuum: (a) sources off, equilibrium screening against the continuum steady
state and Poisson–Boltzmann; (b) sources on, forward and reverse bias, profiles at several times.
Writes PNG figures and ``consistency.json`` (per-bin z-scores, fronts with SE, L2 composition
difference relative to the step height, refresh-interval and cross-section sensitivity) under
``--out``. Replica streams come from ``SeedSequence(seed, spawn_key=(case,))``, so the numbers do
not depend on ``--workers``. See :mod:`halide_ionics.coupling.consistency` for the model.
"""
from __future__ import annotations

import logging

MAX_WORKERS = 1024
MAX_REPLICAS = 10_000

HELP = "multiscale consistency: KMC junction under bias vs continuum with KMC-derived coefficients"
DESCRIPTION = __doc__

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true",
                   help="reduced sizes (4x4x48 cells, 6 replicas, refresh sensitivity only; <~2 min on 2 cores)")
    p.add_argument("--out", metavar="DIR", required=True, help="output directory (figures, consistency.json)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for the replicas (default: min(2, CPUs available))")
    p.add_argument("--seed", type=int, default=2020, help="root seed (default 2020)")
    p.add_argument("--replicas", type=int, default=None, help="KMC replicas per case (default 8; quick 6)")
    p.add_argument("--sensitivity", choices=("all", "refresh", "none"), default=None,
                   help="sensitivity runs (default: all; quick: refresh)")
    p.add_argument("--cache-dir", default=None,
                   help="coefficient-table cache (default $HALIDE_IONICS_CACHE_DIR or ~/.cache/halide-ionics)")
    p.add_argument("--json", action="store_true", help="print the discrepancy metrics as JSON on stdout")


def _brief(summary: dict) -> dict:
    m = summary["metrics"]
    eq = m["equilibrium"]
    out = {
        "pass": summary["pass"],
        "equilibrium": {k: eq.get(k) for k in (
            "pass", "pass_pb", "critical_t", "bins_compared", "max_abs_z_continuum", "rms_z_continuum", "max_abs_z_pb", "rms_z_pb",
            "bins_over_3se_continuum", "bins_over_3se_pb", "max_abs_z_continuum_excluding_junction_slabs",
            "junction_slabs_z_continuum", "junction_slabs_ratio_kmc_to_continuum",
            "continuum_window_max_rel_change")},
        "forward": m["forward"],
        "reverse": m["reverse"],
        "rectification": m["rectification"],
        "sensitivity": m["sensitivity"],
        "scales": summary["scales"],
        "timings_s": summary["timings_s"],
        "output": summary.get("output"),
    }
    return out


def run(args) -> int:
    from halide_ionics.coupling.consistency import ConsistencyConfig, run_consistency
    from halide_ionics.coupling.sweep import resolve_cache_dir
    from halide_ionics.errors import check_int_range, check_seed
    from halide_ionics.io import check_output_path, removed_on_failure
    from halide_ionics.parallel import available_cpus, cap_workers

    out = check_output_path("--out", args.out, kind="dir", expected_bytes=16 * 1024 * 1024)
    if args.workers is None:
        args.workers = min(2, available_cpus())
    check_int_range("--workers", args.workers, 1, MAX_WORKERS)
    check_seed("--seed", args.seed)
    if args.replicas is not None:
        check_int_range("--replicas", args.replicas, 2, MAX_REPLICAS, "one KMC wire each")
    cache_dir = resolve_cache_dir(args.cache_dir)
    cfg = ConsistencyConfig.quick() if args.quick else ConsistencyConfig()
    kw = {"seed": args.seed}
    if args.replicas is not None:
        kw["replicas"] = args.replicas
    cfg = cfg.replace(**kw)
    workers = cap_workers(args.workers, cfg.replicas, "replicas") if args.workers > 1 else 1
    sens = args.sensitivity or ("refresh" if args.quick else "all")
    with removed_on_failure(out):
        summary = run_consistency(cfg, out, workers=workers, cache_dir=cache_dir, sensitivity=sens)
    summary["output"] = str(out / "consistency.json")
    if args.json:
        from halide_ionics.coupling.cli import print_json

        print_json(_brief(summary))
    else:
        m = summary["metrics"]
        eq = m["equilibrium"]
        print(f"sources off: max |z| vs continuum {eq['max_abs_z_continuum']:.2f} "
              f"(PB {eq['max_abs_z_pb']:.2f}) over {eq['bins_compared']} bins, crit {eq['critical_t']:.2f} "
              f"-> {'PASS' if eq['pass'] else 'FAIL'}")
        for name in ("forward", "reverse"):
            for r in m[name]["times"]:
                print(f"{name:8s} t={r['time_s']:.3g} s: front KMC {r['front_kmc_A']:.2f}±{r['front_kmc_se_A']:.2f} Å, "
                      f"continuum {r['front_continuum_A']:.2f} Å (tol {r['front_tolerance_A']:.2f} = "
                      f"{r['critical_t_front']:.2f} SE); profile max |z| {r['max_abs_z_composition']:.2f} "
                      f"(crit {r['critical_t_composition']:.2f}), L2/step {r['l2_rel_step']:.3f} "
                      f"-> {'PASS' if r['pass'] else 'FAIL'}")
        for r in m["rectification"]["times"]:
            ratio = (f"{r['ratio_kmc']:.3g}±{r['ratio_kmc_se']:.2g}" if r["ratio_kmc"] is not None
                     else "unresolved (reverse migration within 3 SE of 0)")
            print(f"rectification t={r['time_s']:.3g} s: forward/reverse migration KMC {ratio}, "
                  f"continuum {r['ratio_continuum']:.3g} (diagnostic)")
        print(f"overall: {'PASS' if summary['pass'] else 'FAIL'}; written to {out}")
    return 0 if summary["pass"] else 1
