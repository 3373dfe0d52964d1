"""``halide-ionics structure``: build a CsPbBr3–CsPbCl3 nanowire junction and write snapshots.

Example::

    halide-ionics structure --cells 6 6 40 --interface 0.5 --x-br-ends 1.0 0.1 \\
        --vacancy-fraction 0.01 --seed 1 --out j.extxyz --png j.png --json

Every argument is validated (and the junction built) before any file is written, so bad
input leaves no file behind.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from halide_ionics.errors import InputError, check_fraction, check_seed
from halide_ionics.io import atomic_path
from halide_ionics.structures.cells import (
    DEFAULT_LATTICE_CONSTANT_A,
    LATTICE_CONSTANTS,
    resolve_lattice_constant_A,
)
from halide_ionics.structures.junction import build_junction, species_counts
from halide_ionics.structures.snapshots import EXTXYZ_SUFFIXES, write_extxyz, write_junction_png

HELP = "build a Br/Cl nanowire junction (ASE atoms), write extxyz and a PNG picture"
DESCRIPTION = (
    "Build an nx×ny×nz-cell cubic CsPb(Br,Cl)3 nanowire along z with a step in the Br "
    "fraction, random Br/Cl placement and halide vacancies (species X), then write an extxyz "
    "snapshot and/or a PNG picture. Lengths in Å unless stated."
)

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--cells", nargs=3, type=int, metavar=("NX", "NY", "NZ"), default=[6, 6, 40],
                        help="cubic cells along x, y and the wire axis z (default 6 6 40)")
    parser.add_argument("--interface", type=float, default=0.5, metavar="Z_FRACTION",
                        help="interface position as a fraction of the wire length, in [0, 1] (default 0.5)")
    parser.add_argument("--x-br-ends", nargs=2, type=float, default=[1.0, 0.1], metavar=("LOW_Z", "HIGH_Z"),
                        help="Br fraction of the halide sites at the low-z and high-z ends (default 1.0 0.1)")
    parser.add_argument("--vacancy-fraction", type=float, default=0.0, metavar="F",
                        help="probability that a halide site is vacant, in [0, 1] (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (non-negative integer, default 0)")
    parser.add_argument("--lattice-constant", default=str(DEFAULT_LATTICE_CONSTANT_A), metavar="A",
                        help="cubic lattice constant in Å, or one of "
                        f"{', '.join(sorted(LATTICE_CONSTANTS))} (default {DEFAULT_LATTICE_CONSTANT_A})")
    parser.add_argument("--periodic-z", action="store_true", help="make the wire periodic along z (default open ends)")
    parser.add_argument("--out", type=Path, metavar="FILE.extxyz", help="extxyz snapshot to write")
    parser.add_argument("--png", type=Path, metavar="FILE.png", help="PNG picture to write")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


#: Largest junction built (cells along each axis, all cells): ASE keeps 5 atoms per cell in memory.
MAX_CELLS_PER_AXIS = 10_000
MAX_TOTAL_CELLS = 1_000_000


def _check_output(field: str, path: Path | None, suffixes) -> None:
    from halide_ionics.io import check_output_path

    if path is None:
        return
    check_output_path(field, path, suffixes=suffixes)


def run(args) -> int:
    # validate everything first: nothing is written unless all arguments are good
    for c in args.cells:
        if not 0 < c <= MAX_CELLS_PER_AXIS:
            raise InputError("cells", list(args.cells), f"must be integers in [1, {MAX_CELLS_PER_AXIS}]")
    n_cells = args.cells[0] * args.cells[1] * args.cells[2]
    if n_cells > MAX_TOTAL_CELLS:
        raise InputError("cells", list(args.cells), f"{n_cells} cells: at most {MAX_TOTAL_CELLS} (5 atoms each "
                                                    "held in memory)")
    check_fraction("interface", args.interface)
    for x in args.x_br_ends:
        check_fraction("x_br_ends", x)
    check_fraction("vacancy_fraction", args.vacancy_fraction)
    check_seed("seed", args.seed)
    a = resolve_lattice_constant_A(args.lattice_constant)
    _check_output("out", args.out, EXTXYZ_SUFFIXES)
    _check_output("png", args.png, (".png",))
    if args.out is not None and args.png is not None and args.out.resolve() == args.png.resolve():
        raise InputError("png", str(args.png), "must differ from --out")

    atoms = build_junction(
        cells=tuple(args.cells),
        lattice_constant_A=a,
        interface_z_fraction=args.interface,
        x_br_ends=tuple(args.x_br_ends),
        vacancy_fraction=args.vacancy_fraction,
        seed=args.seed,
        periodic_z=args.periodic_z,
    )
    counts = species_counts(atoms)
    files = {}
    # both files are written to temporary names and renamed only when both succeeded: a failed
    # picture never leaves a lone extxyz behind
    with contextlib.ExitStack() as stack:
        if args.out is not None:
            write_extxyz(atoms, stack.enter_context(atomic_path(args.out)))
            files["extxyz"] = str(args.out)
        if args.png is not None:
            write_junction_png(atoms, stack.enter_context(atomic_path(args.png)))
            files["png"] = str(args.png)

    n_sites = int(atoms.info["n_halide_sites"])
    summary = {
        "cells": list(args.cells),
        "lattice_constant_A": a,
        "cell_lengths_A": [float(v) for v in atoms.cell.lengths()],
        "interface_z_fraction": float(atoms.info["interface_z_fraction"]),
        "x_br_ends": [float(v) for v in atoms.info["x_br_ends"]],
        "vacancy_fraction_requested": float(args.vacancy_fraction),
        "seed": int(args.seed),
        "periodic_z": bool(args.periodic_z),
        "n_atoms": len(atoms),
        "n_halide_sites": n_sites,
        "counts": counts,
        "vacancy_fraction": counts["vacancy"] / n_sites,
        "files": files,
    }
    if args.json:
        from halide_ionics.coupling.cli import print_json

        print_json(summary)
    else:
        written = ", ".join(files.values()) or "no file (use --out/--png)"
        print(f"{len(atoms)} atoms, {n_sites} halide sites: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; wrote {written}")
    return 0
