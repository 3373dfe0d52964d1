"""``halide-ionics reproduce``: the main job — Kong et al. (Nano Lett. 2020) through the package's
own multiscale chain.

KMC coefficients (from the cache, else computed) → both electrode models (the KMC-derived law,
the default, and the paper's calibrated linear pump) → device runs at 0, ±1.5 … ±4 V/µm for 4 h,
no-source controls, 2x-mesh checks, propagated KMC errors and a sensitivity table → figures (PNG),
``summary.json`` with every target of docs/model.md §5 and its kind, ``report.md``,
``coefficients.nc`` and ``migration.nc`` in ``--out``.
"""
from __future__ import annotations

import time

from halide_ionics.coupling.cli.coefficients import add_execution_arguments, check_execution_args, execution
from halide_ionics.io import removed_on_failure

HELP = "reproduce the paper's ionic rectification end to end (the main job)"
DESCRIPTION = __doc__


def add_arguments(p) -> None:
    p.add_argument("--out", default="reproduce-out", metavar="DIR", help="output directory (default reproduce-out)")
    p.add_argument("--quick", action="store_true", help="reduced sizes and fields: a smoke run in about a minute")
    p.add_argument("--electrode", choices=("kmc", "paper-linear"), default=None,
                   help="default electrode model whose numbers fill the summary's top level (both are run): "
                        "'kmc' (default; the KMC-derived law, no fitted constant) or 'paper-linear' (the paper's "
                        "phenomenological pump, two constants fitted at +-2 V/um)")
    p.add_argument("--config", default=None, metavar="TOML",
                   help="TOML with an [electrode] section: mode = 'kmc' | 'paper-linear' (the option wins)")
    p.add_argument("--studies", choices=("all",), default=None,
                   help="'all': after the main job, run every supplementary study (halide-ionics study --list) "
                        "into OUT/studies/, sharing the cache, linked from report.md")
    add_execution_arguments(p)
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    p.add_argument("--json", action="store_true", help="print summary.json on stdout")


def run(args) -> int:
    from dataclasses import replace

    from halide_ionics.coupling.cli import print_json
    from halide_ionics.coupling.reproduce import ReproduceConfig, reproduce
    from halide_ionics.io import check_output_path

    mode = args.electrode or (electrode_from_toml(args.config) if args.config is not None else None) or "kmc"
    out = check_output_path("--out", args.out, kind="dir", expected_bytes=64 * 1024 * 1024)
    check_execution_args(args)
    cfg = ReproduceConfig.quick(electrode=mode) if args.quick else ReproduceConfig(electrode=mode)
    cfg = replace(cfg, seed=int(args.seed))
    t0 = time.perf_counter()
    with execution(args) as (ex, workers), removed_on_failure(out):
        s = reproduce(args.out, quick=args.quick, workers=workers, executor=ex, cache_dir=args.cache_dir,
                      progress=args.progress, config=cfg, studies=args.studies == "all")
    if args.json:
        print_json(s)
    else:
        print(f"halide-ionics reproduce: {time.perf_counter() - t0:.1f} s, outputs in {args.out}/")
        print(f"  electrode mode: {s['electrode_mode']} (both modes side by side in report.md)")
        for r in s["targets"]:
            v = r["value"]
            vs = f"{v:.4g}" if isinstance(v, (int, float)) else str(v)
            print(f"  [{'PASS' if r['pass'] else 'FAIL'}] ({r['kind']}) {r['name']}: {vs} (accept {r['accept']})")
        fmt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
        print(f"  rectification ratio at +-4 V/um: {fmt(s['rectification_ratio_4V'], '.3g')}; "
              f"forward slope {fmt(s['forward_slope_um_per_V_per_um'], '.4f')} um per V/um "
              f"(R^2 {fmt(s['forward_r2'], '.4f')}); max x_V {fmt(s['max_x_v'], '.3g')}")
    return 1 if (args.strict and not s["all_targets_pass"]) else 0


def electrode_from_toml(path) -> str | None:
    """``[electrode] mode`` of a reproduce TOML (None when absent); bad files are InputErrors."""
    from halide_ionics.continuum.config import read_toml
    from halide_ionics.errors import InputError

    d = read_toml(path, "--config")
    unknown = set(d) - {"electrode"}
    if unknown:
        raise InputError(sorted(unknown)[0], "", "unknown section (reproduce reads only [electrode])")
    el = d.get("electrode", {})
    if not isinstance(el, dict) or set(el) - {"mode"}:
        raise InputError("electrode", el, "only the key 'mode' is allowed")
    mode = el.get("mode")
    if mode is not None and mode not in ("kmc", "paper-linear"):
        raise InputError("electrode.mode", mode, "must be 'kmc' or 'paper-linear'")
    return mode
