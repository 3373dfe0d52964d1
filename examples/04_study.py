"""One of the paper's supplementary studies from Python: which contact controls the rate (Fig. S16).

    python examples/04_study.py [--quick] [--out DIR] [--electrode kmc|paper-linear]

The same as `halide-ionics study s16`; `halide-ionics study --list` names them all. The KMC table,
the calibration and every device run are cached (content hash), so a second run takes seconds.
"""
import argparse

from halide_ionics.coupling.studies import run_study

p = argparse.ArgumentParser()
p.add_argument("--quick", action="store_true", help="reduced sizes")
p.add_argument("--out", default="examples-out/s16")
p.add_argument("--electrode", default="paper-linear", help="kmc or paper-linear")
p.add_argument("--cache-dir", default=None)
args = p.parse_args()

rec = run_study("s16", args.electrode, args.out, quick=args.quick, cache_dir=args.cache_dir)
for field, c in rec["results"]["controlling"].items():
    print(f"{field} V/um: {c['controlling_contact']} controls "
          f"(d ln m / d ln k = {c['controlling_sensitivity']['value']:.2f}; other {c['other_sensitivity']['value']:.2g})")
for t in rec["targets"]:
    print(f"[{'PASS' if t['pass'] else 'FAIL'}] ({t['kind']}) {t['target']}")
print(f"outputs (NetCDF, PNG, JSON) in {args.out}/")
