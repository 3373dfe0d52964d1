"""Build a CsPbBr3–CsPbCl3 junction wire and picture it (the paper's Fig. 1c).

    python examples/01_junction.py [--quick] [--out DIR]

Writes junction.extxyz (open it in OVITO or `ase gui`) and junction.png.
"""
import argparse
from pathlib import Path

from halide_ionics.structures import build_junction, write_extxyz, write_junction_png

p = argparse.ArgumentParser()
p.add_argument("--quick", action="store_true", help="a small wire")
p.add_argument("--out", default="examples-out/junction")
args = p.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# cubic cells (x, y, z); the Br segment occupies z < interface, the Cl segment (x_Br = 0.1,
# incompletely exchanged, as in the paper) z > interface; 1 % of the halide sites are vacancies
cells = (3, 3, 12) if args.quick else (6, 6, 40)
atoms = build_junction(cells=cells, interface_z_fraction=0.5, x_br_ends=(1.0, 0.1), vacancy_fraction=0.01, seed=1)

write_extxyz(atoms, out / "junction.extxyz")
write_junction_png(atoms, out / "junction.png", title="CsPbBr3 | CsPbCl3 junction")
print(f"{len(atoms)} atoms -> {out}/junction.extxyz, {out}/junction.png")
