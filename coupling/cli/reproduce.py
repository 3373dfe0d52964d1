"""``halide-ionics reproduce``: the main job — reproduce Kong et al. (Nano Lett. 2020) from the
package's own KMC-derived inputs.

KMC coefficients (from the cache, else computed) → calibration on the ±2 V/µm data → device runs
at 0, ±1.5 … ±4 V/µm for 4 h → figures (PNG), ``summary.json`` with a pass/fail row for every
target of docs/model.md §5, ``report.md``, ``coefficients.nc`` and ``migration.nc`` in ``--out``.
"""
from __future__ import annotations

import time

from halide_ionics.coupling.cli.coefficients import add_execution_arguments, check_execution_args, executor_from_args
from halide_ionics.io import removed_on_failure

HELP = "reproduce the paper's ionic rectification end to end (the main job)"
DESCRIPTION = __doc__


def add_arguments(p) -> None:
    p.add_argument("--out", default="reproduce-out", metavar="DIR", help="output directory (default reproduce-out)")
    p.add_argument("--quick", action="store_true", help="reduced sizes and fields: a smoke run in about a minute")
    add_execution_arguments(p)
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    p.add_argument("--json", action="store_true", help="print summary.json on stdout")


def run(args) -> int:
    from dataclasses import replace

    from halide_ionics.coupling.cli import print_json
    from halide_ionics.coupling.reproduce import ReproduceConfig, reproduce
    from halide_ionics.io import check_output_path

    out = check_output_path("--out", args.out, kind="dir", expected_bytes=64 * 1024 * 1024)
    check_execution_args(args)
    cfg = ReproduceConfig.quick() if args.quick else ReproduceConfig()
    cfg = replace(cfg, seed=int(args.seed))
    ex, workers, client = executor_from_args(args)
    t0 = time.perf_counter()
    try:
        with removed_on_failure(out):
            s = reproduce(args.out, quick=args.quick, workers=workers, executor=ex, cache_dir=args.cache_dir,
                          progress=args.progress, config=cfg)
    finally:
        if client is not None:
            client.close()
    if args.json:
        print_json(s)
    else:
        print(f"halide-ionics reproduce: {time.perf_counter() - t0:.1f} s, outputs in {args.out}/")
        for r in s["targets"]:
            v = r["value"]
            vs = f"{v:.4g}" if isinstance(v, (int, float)) else str(v)
            print(f"  [{'PASS' if r['pass'] else 'FAIL'}] {r['target']}: {vs} (accept {r['accept']})")
        print(f"  rectification ratio at +-4 V/um: {s['rectification_ratio_4V']:.3g}; "
              f"forward slope {s['forward_slope_um_per_V_per_um']:.4f} um per V/um (R^2 {s['forward_r2']:.4f})")
    return 1 if (args.strict and not s["all_targets_pass"]) else 0
