"""Write ``dilute_solute_f.json``: exact dilute-solute tracer correlation factors (Green-function
method of the ``onsager`` package, D. R. Trinkle, https://pypi.org/project/onsager/).

Five-frequency model with one solute and one vacancy: every vacancy jump has rate w0 except the
solute–vacancy exchange w2 (w1 = w3 = w4 = w0, no binding). The solute's tracer correlation factor is
``f = L_ss / L_ss^bare``, ``L_ss^bare = ½ Σ_k w2 dx_k ⊗ dx_k`` over the vacancy's neighbour sites
of the solute (the uncorrelated exchange term, in the same units as ``Lij``'s ``L_ss``).

Run: ``python tests/data/make_dilute_solute_references.py`` (needs ``pip install onsager``);
output next to this script, with provenance.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

RATIOS = (0.01, 0.1, 1.0, 10.0, 100.0)
# Conventional cubic cell (a = 1) with the basis of the diffusing sublattice and the NN cutoff.
LATTICES = {
    "perovskite-x": ([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]], 0.75),  # X of ABX3, B at 0
    "sc": ([[0.0, 0.0, 0.0]], 1.1),
    "bcc": ([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], 0.9),
    "fcc": ([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]], 0.75),
}


def solute_f(lattice: str, ratio: float, ngfmax: int = 4) -> float:
    from onsager import OnsagerCalc, crystal

    basis, cutoff = LATTICES[lattice]
    crys = crystal.Crystal(np.eye(3), [np.array(b) for b in basis])
    chem = 0
    sitelist = crys.sitelist(chem)
    jn = crys.jumpnetwork(chem, cutoff)
    diffuser = OnsagerCalc.VacancyMediated(crys, chem, sitelist, jn, 1, ngfmax)
    tdict = {"preV": np.ones(len(sitelist)), "eneV": np.zeros(len(sitelist)),
             "preT0": np.ones(len(jn)), "eneT0": np.zeros(len(jn)),
             "preS": np.ones(len(sitelist)), "eneS": np.zeros(len(sitelist))}
    tdict.update(diffuser.maketracerpreene(**tdict))
    tdict["preT2"] = tdict["preT2"] * ratio  # exchange jump w2 = ratio · w0
    kT = 1.0
    _, lss, _, _ = diffuser.Lij(*diffuser.preene2betafree(kT, **tdict))
    # bare solute term: the vacancy on one of the z neighbour sites exchanging at w2
    dxs = [dx for jlist in jn for (i, j), dx in jlist if i == 0]
    bare = 0.5 * ratio * sum(np.outer(dx, dx) for dx in dxs)
    return float(np.trace(lss) / np.trace(bare))


def main() -> int:
    import onsager

    out = {"model": "five-frequency, w1 = w3 = w4 = w0, no solute-vacancy binding; f = L_ss/L_ss^bare",
           "method": "onsager.OnsagerCalc.VacancyMediated (Green function), Nthermo=1, NGFmax=4",
           "provenance": {"package": "onsager", "version": getattr(onsager, "__version__", "1.4"),
                          "script": "tests/data/make_dilute_solute_references.py",
                          "python": sys.version.split()[0], "numpy": np.__version__},
           "f": {}}
    for lat in LATTICES:
        out["f"][lat] = {repr(r): solute_f(lat, r) for r in RATIOS}
        print(lat, out["f"][lat], flush=True)
    dest = Path(__file__).with_name("dilute_solute_f.json")
    tmp = dest.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
