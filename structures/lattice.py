"""Lattice site graphs: the data structure the KMC engine hops on.

A :class:`SublatticeGraph` lists the sites of one sublattice in a block of ``nx × ny × nz``
conventional cubic cells, their nearest-neighbour table and the jump vector of every
neighbour link. Sites are ordered cell-major with the cell index ``(iz*ny + iy)*nx + ix`` and
the basis index fastest, so sites with the same ``iz`` are contiguous (slabs along the wire).

Lattices (conventional cubic cell of edge ``a``):

=============== ===================================== === ===============
name            basis (fractional)                     z   jump distance
=============== ===================================== === ===============
``perovskite-x`` X sites of Pm-3m ABX3 at edge midpoints  8   a/√2
``sc``          (0,0,0)                                6   a
``bcc``         (0,0,0), (½,½,½)                       8   a√3/2
``fcc``         (0,0,0), (½,½,0), (½,0,½), (0,½,½)    12   a/√2
=============== ===================================== === ===============

The transverse directions x, y are always periodic; z (the wire axis) is open or periodic.
Across an open end a neighbour entry is ``-1``.
"""
from __future__ import annotations

from halide_ionics.constants import F0_PEROVSKITE_X

from dataclasses import dataclass, field

import numpy as np

from halide_ionics.errors import InputError, check_choice, check_positive, check_positive_int

#: Fractional basis coordinates of each lattice within one conventional cubic cell.
BASES: dict[str, np.ndarray] = {
    # Pm-3m ABX3 with B (Pb) at the cube corners and A (Cs) at the centre: X at edge midpoints.
    "perovskite-x": np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]]),
    "sc": np.array([[0.0, 0.0, 0.0]]),
    "bcc": np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]),
    "fcc": np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]),
}

#: Coordination number of each lattice.
COORDINATION: dict[str, int] = {"perovskite-x": 8, "sc": 6, "bcc": 8, "fcc": 12}

#: Exact tracer correlation factors of the single-vacancy mechanism (validation targets).
#: sc/bcc/fcc: Montet (1973), Koiwa & Ishioka (1983); perovskite X sublattice: Green-function
#: value 0.68891612 (Ishigaki et al. 1988 quote 0.69); see docs/model.md §2.
TRACER_CORRELATION_FACTOR: dict[str, float] = {
    "sc": 0.65310884,
    "bcc": 0.72719414,
    "fcc": 0.78145142,
    "perovskite-x": F0_PEROVSKITE_X,
}

LATTICES = tuple(BASES)


@dataclass(frozen=True)
class SublatticeGraph:
    """Sites, neighbour table and jump vectors of one sublattice (lengths in Å)."""

    name: str
    lattice_constant_A: float
    cells: tuple[int, int, int]
    periodic: tuple[bool, bool, bool]
    positions_A: np.ndarray = field(repr=False)  # (N, 3) float64
    neighbors: np.ndarray = field(repr=False)  # (N, z) int64, -1 across an open end
    jump_vectors_A: np.ndarray = field(repr=False)  # (z_basis..., 3) per site: (N, z, 3)
    basis_index: np.ndarray = field(repr=False)  # (N,) int8, which basis site (sublattice)
    cell_index: np.ndarray = field(repr=False)  # (N, 3) int32, (ix, iy, iz) of the cell

    @property
    def n_sites(self) -> int:
        return int(self.positions_A.shape[0])

    @property
    def coordination(self) -> int:
        return int(self.neighbors.shape[1])

    @property
    def jump_distance_A(self) -> float:
        return float(np.linalg.norm(self.jump_vectors_A[0, 0]))

    @property
    def cell_lengths_A(self) -> np.ndarray:
        return self.lattice_constant_A * np.asarray(self.cells, dtype=float)

    @property
    def site_density_per_m3(self) -> float:
        """Sites per m³ (3/a³ for the perovskite X sublattice)."""
        return BASES[self.name].shape[0] / (self.lattice_constant_A * 1e-10) ** 3

    @property
    def z_A(self) -> np.ndarray:
        return self.positions_A[:, 2]

    def region_mask(self, z_min_A: float, z_max_A: float) -> np.ndarray:
        """Boolean mask of sites with ``z_min_A <= z < z_max_A``."""
        z = self.z_A
        return (z >= z_min_A) & (z < z_max_A)

    def slab_index(self, n_slabs: int | None = None) -> np.ndarray:
        """Slab (bin along z) of every site; default one slab per conventional cell."""
        nz = self.cells[2]
        n = nz if n_slabs is None else check_positive_int("n_slabs", n_slabs)
        iz = self.cell_index[:, 2].astype(np.int64)
        return (iz * n) // nz

    def n_open_links(self) -> int:
        return int((self.neighbors < 0).sum())


def _neighbor_offsets(basis: np.ndarray, z: int):
    """For each basis site: (target basis, cell offset, jump vector in units of a), length z."""
    nb = basis.shape[0]
    out = []
    for b in range(nb):
        cands = []
        for bp in range(nb):
            for off in np.ndindex(3, 3, 3):
                o = np.array(off) - 1
                d = basis[bp] + o - basis[b]
                r = float(np.linalg.norm(d))
                if r > 1e-9:
                    cands.append((r, bp, tuple(o), tuple(d)))
        rmin = min(c[0] for c in cands)
        nn = [c for c in cands if abs(c[0] - rmin) < 1e-9]
        # deterministic order: by jump vector components
        nn.sort(key=lambda c: c[3])
        if len(nn) != z:
            raise RuntimeError(f"basis site {b}: found {len(nn)} neighbours, expected {z}")
        out.append(nn)
    return out, rmin


def build_lattice(
    name: str,
    cells: int | tuple[int, int, int],
    lattice_constant_A: float = 5.8,
    periodic_z: bool = True,
) -> SublatticeGraph:
    """Build the site graph of ``name`` on ``cells`` (int → cube) conventional cells.

    ``periodic_z=False`` opens the wire ends (neighbour ``-1`` across them). Transverse
    directions are periodic. A periodic direction needs at least 2 cells... in practice ≥ 3 so
    that no site is its own neighbour's neighbour through the boundary twice; we require ≥ 2.
    """
    check_choice("lattice", name, BASES)
    if np.isscalar(cells):
        cells = (cells, cells, cells)
    if len(cells) != 3:
        raise InputError("cells", cells, "must be one integer or three integers (nx, ny, nz)")
    nx, ny, nz = (check_positive_int("cells", c) for c in cells)
    a = check_positive("lattice_constant_A", lattice_constant_A)
    periodic = (True, True, bool(periodic_z))
    for n, p, ax in zip((nx, ny, nz), periodic, "xyz"):
        if p and n < 2:
            raise InputError("cells", tuple(cells), f"periodic direction {ax} needs at least 2 cells")

    basis = BASES[name]
    nb = basis.shape[0]
    z = COORDINATION[name]
    offsets, _ = _neighbor_offsets(basis, z)

    ncell = nx * ny * nz
    cidx = np.arange(ncell)
    ix = cidx % nx
    iy = (cidx // nx) % ny
    iz = cidx // (nx * ny)
    cell_xyz = np.stack([ix, iy, iz], axis=1)  # (ncell, 3)

    n = ncell * nb
    positions = ((cell_xyz[:, None, :] + basis[None, :, :]) * a).reshape(n, 3)
    basis_index = np.tile(np.arange(nb, dtype=np.int8), ncell)
    cell_index = np.repeat(cell_xyz.astype(np.int32), nb, axis=0)

    neighbors = np.empty((n, z), dtype=np.int64)
    jumps = np.empty((n, z, 3), dtype=np.float64)
    dims = np.array([nx, ny, nz])
    for b in range(nb):
        sites = np.arange(b, n, nb)
        cxyz = cell_xyz
        for k, (_, bp, o, d) in enumerate(offsets[b]):
            t = cxyz + np.array(o)
            valid = np.ones(ncell, dtype=bool)
            if not periodic[2]:
                valid &= (t[:, 2] >= 0) & (t[:, 2] < nz)
            t = np.mod(t, dims)
            tgt = ((t[:, 2] * ny + t[:, 1]) * nx + t[:, 0]) * nb + bp
            neighbors[sites, k] = np.where(valid, tgt, -1)
            jumps[sites, k] = np.array(d) * a

    return SublatticeGraph(
        name=name,
        lattice_constant_A=a,
        cells=(nx, ny, nz),
        periodic=periodic,
        positions_A=positions,
        neighbors=neighbors,
        jump_vectors_A=jumps,
        basis_index=basis_index,
        cell_index=cell_index,
    )
