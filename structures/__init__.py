"""halide_ionics.structures — ASE cells and junction wires, halide-sublattice graphs, snapshots.

Knows nothing of KMC or continuum.

* :mod:`.lattice` — site graphs (:class:`SublatticeGraph`, :func:`build_lattice`).
* :mod:`.species` — occupancy codes ``BR``, ``CL``, ``VAC`` and sublattice codes.
* :mod:`.cells` — Pm-3m CsPbX3 unit cell and a table of lattice constants with sources.
* :mod:`.junction` — nanowire junctions along z, occupancy ↔ Atoms.
* :mod:`.snapshots` — extxyz and PNG writers (atomic).
"""
from .cells import (
    DEFAULT_LATTICE_CONSTANT_A,
    LATTICE_CONSTANTS,
    LatticeConstant,
    named_lattice_constant_A,
    perovskite_unit_cell,
    resolve_lattice_constant_A,
    vegard_lattice_constant_A,
)
from .junction import (
    SlabProfile,
    StepProfile,
    build_junction,
    halide_atom_indices,
    halide_occupancy,
    junction_graph,
    set_halide_occupancy,
    slab_profile,
    species_counts,
)
from .lattice import (
    BASES,
    COORDINATION,
    LATTICES,
    TRACER_CORRELATION_FACTOR,
    SublatticeGraph,
    build_lattice,
)
from .snapshots import SPECIES_STYLE, plot_junction, write_extxyz, write_junction_png
from .species import (
    BR,
    CL,
    HALIDE_SYMBOLS,
    OCCUPANCY_DTYPE,
    SUBLATTICE_CS,
    SUBLATTICE_HALIDE,
    SUBLATTICE_PB,
    VAC,
    VACANCY_SYMBOL,
    numbers_to_occupancy,
    occupancy_to_numbers,
)

__all__ = [
    "BASES",
    "BR",
    "CL",
    "COORDINATION",
    "DEFAULT_LATTICE_CONSTANT_A",
    "HALIDE_SYMBOLS",
    "LATTICES",
    "LATTICE_CONSTANTS",
    "LatticeConstant",
    "OCCUPANCY_DTYPE",
    "SPECIES_STYLE",
    "SUBLATTICE_CS",
    "SUBLATTICE_HALIDE",
    "SUBLATTICE_PB",
    "SlabProfile",
    "StepProfile",
    "SublatticeGraph",
    "TRACER_CORRELATION_FACTOR",
    "VAC",
    "VACANCY_SYMBOL",
    "build_junction",
    "build_lattice",
    "halide_atom_indices",
    "halide_occupancy",
    "junction_graph",
    "named_lattice_constant_A",
    "numbers_to_occupancy",
    "occupancy_to_numbers",
    "perovskite_unit_cell",
    "plot_junction",
    "resolve_lattice_constant_A",
    "set_halide_occupancy",
    "slab_profile",
    "species_counts",
    "vegard_lattice_constant_A",
    "write_extxyz",
    "write_junction_png",
]
