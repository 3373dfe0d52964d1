"""``halide-ionics study NAME``: the paper's supplementary studies, low field and temperature
(the science in :mod:`halide_ionics.coupling.studies`)."""
from __future__ import annotations

from dataclasses import replace

from halide_ionics.coupling.studies import STUDIES, StudyConfig, check_study_args, run_study
from halide_ionics.errors import InputError

DESCRIPTION = ("Run one of the paper's supplementary studies (s11-s16), the low-field regime or the temperature "
               "study, in either electrode mode, reusing the cached KMC tables and device runs. Writes NAME.nc "
               "(runs), PNG figures and NAME.json (numbers, each with its kind, and the paper's claims as targets) "
               "into --out. 'halide-ionics study --list' names the studies.")


HELP = "the paper's supplementary studies (S11-S16), the low-field regime and temperature"


def add_arguments(p) -> None:
    from halide_ionics.coupling.cli.coefficients import add_execution_arguments

    p.add_argument("name", nargs="?", default=None, help=f"study name: {', '.join(STUDIES)}")
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    p.add_argument("--electrode", default="kmc", help="electrode law: kmc (default) or paper-linear")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default study-NAME)")
    p.add_argument("--quick", action="store_true", help="reduced sizes: a smoke run")
    p.add_argument("--json", action="store_true", help="print the study JSON on stdout")
    add_execution_arguments(p)


def run(args) -> int:
    from halide_ionics.io import check_output_path, removed_on_failure

    from halide_ionics.coupling.cli import print_json
    from halide_ionics.coupling.cli.coefficients import check_execution_args, execution

    if args.list:
        for n, (title, _) in STUDIES.items():
            print(f"{n:12s} {title}")
        return 0
    if args.name is None:
        raise InputError("study", None, f"give a study name ({', '.join(STUDIES)}) or --list")
    check_study_args(args.name, args.electrode)
    out = check_output_path("--out", args.out or f"study-{args.name}", kind="dir")
    check_execution_args(args)
    cfg = StudyConfig.quick_config() if args.quick else StudyConfig()
    if args.seed != cfg.run.seed:
        cfg = replace(cfg, run=replace(cfg.run, seed=int(args.seed)))
    with execution(args) as (ex, workers), removed_on_failure(out):
        rec = run_study(args.name, args.electrode, out, workers, ex, args.quick, args.cache_dir, config=cfg)
    if args.json:
        print_json(rec)
    else:
        print(f"halide-ionics study {args.name} ({args.electrode}): {rec['wall_seconds']:.1f} s, outputs in {out}/")
        for t in rec["targets"]:
            v = t["value"]
            vs = f"{v:.4g}" if isinstance(v, (int, float)) and v is not None else str(v)
            print(f"  [{'PASS' if t['pass'] else 'FAIL'}] ({t['kind']}) {t['target']}: {vs} (accept {t['accept']})")
    return 0
