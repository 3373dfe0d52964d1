"""halide_ionics.structures — ASE cells and junction wires, halide-sublattice graphs, snapshots.

Knows nothing of KMC or continuum.
"""
from .lattice import (
    BASES,
    COORDINATION,
    LATTICES,
    TRACER_CORRELATION_FACTOR,
    SublatticeGraph,
    build_lattice,
)

__all__ = [
    "BASES",
    "COORDINATION",
    "LATTICES",
    "TRACER_CORRELATION_FACTOR",
    "SublatticeGraph",
    "build_lattice",
]
