"""Per-vacancy Onsager coefficients l_ij(c) from the lattice KMC, with error bars, against
Manning's random-alloy closed form (docs/model.md §3).

    python examples/02_onsager_vs_manning.py [--quick] [--out DIR]
"""
import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from halide_ionics.continuum import manning_maa
from halide_ionics.kmc import onsager_coefficients

p = argparse.ArgumentParser()
p.add_argument("--quick", action="store_true", help="few compositions, short runs (large error bars)")
p.add_argument("--out", default="examples-out/onsager")
args = p.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

ratio = 0.1  # w_Cl / w_Br
comps = np.linspace(0.1, 0.9, 3 if args.quick else 9)
hops = 20_000 if args.quick else 400_000
rows = []
for c in comps:
    # one vacancy per replica in a periodic random alloy; errors from independent replicas
    r = onsager_coefficients("perovskite-x", 4 if args.quick else 6, float(c), ratio, replicas=4,
                             hops_per_replica=hops, seed=7)
    rows.append((r.l[0, 0], r.l_se[0, 0], r.l[0, 1], r.l_se[0, 1], r.l[1, 1], r.l_se[1, 1]))
rows = np.array(rows)  # in units of w_Br

cf = np.linspace(0.01, 0.99, 200)
ref = manning_maa(cf, 1.0, ratio)  # (l_BrBr, l_BrCl, l_ClCl)
fig = Figure(figsize=(5.5, 4))
ax = fig.add_subplot()
for k, (name, col) in enumerate((("Br-Br", "C2"), ("Br-Cl", "C3"), ("Cl-Cl", "C0"))):
    ax.errorbar(comps, rows[:, 2 * k], yerr=rows[:, 2 * k + 1], fmt="o", color=col, capsize=3, label=f"KMC l_{name}")
    ax.plot(cf, ref[k], "-", color=col, lw=1, label=f"Manning l_{name}")
ax.set_xlabel("Cl fraction of the ions c")
ax.set_ylabel("per-vacancy Onsager coefficient (units of w_Br)")
ax.set_title(f"w_Cl/w_Br = {ratio}", fontsize=9)
ax.legend(fontsize=7, ncol=2)
fig.savefig(out / "onsager_vs_manning.png", dpi=120, bbox_inches="tight")
np.savetxt(out / "onsager.csv", np.column_stack([comps, rows]), delimiter=",",
           header="c,l_brbr,se,l_brcl,se,l_clcl,se (units of w_Br)")
print(f"wrote {out}/onsager_vs_manning.png and onsager.csv")
