"""CsPbBr3–CsPbCl3 nanowire junctions: one cubic lattice, halides relabelled along the wire.

A junction is one :class:`ase.Atoms` of ``nx × ny × nz`` cubic Pm-3m cells with lattice
constant ``a`` (the wire axis is z). All cells share one lattice; only the species on the
halide sites vary: every halide site is independently vacant with probability
``vacancy_fraction`` (a number, or a callable of the local target x_Br) and otherwise Br with
probability ``x_Br(z_fraction)``, Cl otherwise. The composition profile ``x_Br(z_fraction)``
is a :class:`StepProfile` (an abrupt interface) or any callable of the fractional position
``z / L_z`` in [0, 1).

Atom order (the contract with the KMC engine)
    Atoms come in three blocks, each in the cell order of
    :func:`~halide_ionics.structures.lattice.build_lattice` (cell index
    ``(iz*ny + iy)*nx + ix``):

    1. ``n_cells`` Cs atoms (A sites, cell centres),
    2. ``n_cells`` Pb atoms (B sites, cell corners),
    3. ``3 n_cells`` halide sites in the site order of the ``perovskite-x``
       :class:`~halide_ionics.structures.lattice.SublatticeGraph` of the same cells and
       lattice constant, i.e. halide site ``i`` is atom ``2 n_cells + i`` and sits at
       ``graph.positions_A[i]``.

    ``atoms.arrays["site_index"]`` stores that site index on each halide atom (-1 on Cs/Pb),
    and functions here use it rather than the block layout, so they also work on atoms read
    back from a file or reordered. A vacancy keeps its atom, as the ghost element ``X``
    (see :mod:`halide_ionics.structures.species`), so indices never shift.

Per-atom arrays
    ``site_index`` (int32) and ``sublattice`` (int32: 0 Cs, 1 Pb, 2 halide site).

``atoms.info``
    ``cells`` (nx, ny, nz), ``lattice_constant_A``, ``site_lattice`` (``"perovskite-x"``; not
    ``lattice``, which OVITO would take for the extxyz ``Lattice`` cell key),
    ``periodic_z``, ``profile`` (``"step"`` or ``"callable"``), for a step
    ``interface_z_fraction`` and ``x_br_ends``, ``vacancy_fraction`` (number or
    ``"callable"``), ``seed`` (the root seed entropy, when known), ``n_halide_sites`` and
    ``halide_ionics_version``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np
from ase import Atoms

from halide_ionics import __version__
from halide_ionics.errors import InputError, check_fraction, check_positive, check_positive_int

from .cells import CS_POSITION, DEFAULT_LATTICE_CONSTANT_A, PB_POSITION
from .lattice import SublatticeGraph, build_lattice
from .species import (
    BR,
    CL,
    OCCUPANCY_DTYPE,
    SUBLATTICE_CS,
    SUBLATTICE_HALIDE,
    SUBLATTICE_PB,
    VAC,
    numbers_to_occupancy,
    occupancy_to_numbers,
)

log = logging.getLogger(__name__)

#: Name of the site graph whose site order the halide atoms follow.
HALIDE_LATTICE = "perovskite-x"

SeedLike = Union[int, np.random.SeedSequence, np.random.Generator, None]
ProfileLike = Callable[[np.ndarray], np.ndarray]
VacancyFractionLike = Union[float, Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class StepProfile:
    """An abrupt composition step along the wire.

    ``x_Br(z_fraction) = x_br_ends[0]`` for ``z_fraction < interface_z_fraction`` and
    ``x_br_ends[1]`` otherwise.

    Parameters
    ----------
    interface_z_fraction : float
        Interface position as a fraction of the wire length, in [0, 1].
    x_br_ends : (float, float)
        Br fraction of the halide sites at the low-z and at the high-z end, each in [0, 1].
    """

    interface_z_fraction: float = 0.5
    x_br_ends: tuple[float, float] = (1.0, 0.1)

    def __post_init__(self):
        check_fraction("interface_z_fraction", self.interface_z_fraction)
        ends = tuple(self.x_br_ends)
        if len(ends) != 2:
            raise InputError("x_br_ends", self.x_br_ends, "must be two Br fractions (low-z end, high-z end)")
        for v in ends:
            check_fraction("x_br_ends", v)
        object.__setattr__(self, "interface_z_fraction", float(self.interface_z_fraction))
        object.__setattr__(self, "x_br_ends", (float(ends[0]), float(ends[1])))

    def __call__(self, z_fraction: np.ndarray) -> np.ndarray:
        z = np.asarray(z_fraction, dtype=float)
        return np.where(z < self.interface_z_fraction, self.x_br_ends[0], self.x_br_ends[1])


def _seed_sequence(seed: SeedLike) -> tuple[np.random.Generator, int | None]:
    """A generator from ``seed`` and the root entropy to record (None for a Generator)."""
    if isinstance(seed, np.random.Generator):
        return seed, None
    if isinstance(seed, np.random.SeedSequence):
        ss = seed
    elif seed is None:
        ss = np.random.SeedSequence()
    else:
        if isinstance(seed, bool) or not float(seed).is_integer() or int(seed) < 0:
            raise InputError("seed", seed, "must be a non-negative integer")
        ss = np.random.SeedSequence(int(seed))
    entropy = ss.entropy if isinstance(ss.entropy, int) else None
    return np.random.default_rng(ss), entropy


def _evaluate_fraction(field: str, func, arg: np.ndarray) -> np.ndarray:
    """Call a user profile and check it returns fractions in [0, 1] of the right shape."""
    try:
        values = np.broadcast_to(np.asarray(func(arg), dtype=float), arg.shape)
    except (TypeError, ValueError) as exc:
        raise InputError(field, getattr(func, "__name__", func), f"callable failed on an array: {exc}") from None
    bad = ~((values >= 0.0) & (values <= 1.0))
    if bad.any():
        raise InputError(field, float(values[bad][0]), "callable must return fractions in [0, 1]")
    return values


def _check_cells(cells) -> tuple[int, int, int]:
    if np.isscalar(cells):
        cells = (cells, cells, cells)
    cells = tuple(cells)
    if len(cells) != 3:
        raise InputError("cells", cells, "must be three positive integers (nx, ny, nz)")
    for c in cells:
        check_positive_int("cells", c)
    nx, ny, nz = (int(c) for c in cells)
    if nx < 2 or ny < 2:
        raise InputError("cells", cells, "the periodic cross-section needs at least 2 cells in x and y")
    return nx, ny, nz


def build_junction(
    cells: int | tuple[int, int, int] = (6, 6, 40),
    lattice_constant_A: float = DEFAULT_LATTICE_CONSTANT_A,
    interface_z_fraction: float | None = None,
    x_br_ends: tuple[float, float] | None = None,
    profile: ProfileLike | None = None,
    vacancy_fraction: VacancyFractionLike = 0.0,
    seed: SeedLike = None,
    periodic_z: bool = False,
) -> Atoms:
    """Build a nanowire junction along z with random Br/Cl placement and vacancies.

    Parameters
    ----------
    cells : int or (int, int, int)
        Number of cubic cells ``(nx, ny, nz)``; z is the wire axis. ``nx, ny >= 2``
        (the cross-section is periodic).
    lattice_constant_A : float
        Cubic lattice constant in Å, one for the whole wire.
    interface_z_fraction : float, optional
        Step position as a fraction of the wire length (default 0.5). Only with the
        default step profile.
    x_br_ends : (float, float), optional
        Br fractions at the low-z and high-z ends of the step (default ``(1.0, 0.1)``).
        Only with the default step profile.
    profile : callable, optional
        ``x_Br(z_fraction)``: maps an array of fractional positions ``z / L_z`` in [0, 1)
        to Br fractions in [0, 1]. Replaces the step; do not combine with
        ``interface_z_fraction``/``x_br_ends``.
    vacancy_fraction : float or callable
        Probability that a halide site is vacant, in [0, 1], or a callable mapping the
        local target ``x_Br`` array to such probabilities.
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Randomness source. The same integer seed gives the same structure; ``None`` draws
        fresh entropy, which is recorded in ``atoms.info["seed"]``.
    periodic_z : bool
        Whether the wire is periodic along z (recorded in ``atoms.pbc`` and the info);
        default open ends, as between two electrodes.

    Returns
    -------
    ase.Atoms
        See the module docstring for atom order, arrays and info.

    Raises
    ------
    InputError
        For any invalid parameter; nothing is built then.
    """
    nx, ny, nz = _check_cells(cells)
    a = check_positive("lattice_constant_A", lattice_constant_A)
    if periodic_z and nz < 2:
        raise InputError("cells", (nx, ny, nz), "a periodic wire needs at least 2 cells along z")
    if profile is None:
        step = StepProfile(
            0.5 if interface_z_fraction is None else interface_z_fraction,
            (1.0, 0.1) if x_br_ends is None else x_br_ends,
        )
        profile_fn: ProfileLike = step
    else:
        if interface_z_fraction is not None or x_br_ends is not None:
            raise InputError("profile", getattr(profile, "__name__", profile),
                             "give either a profile callable or interface_z_fraction/x_br_ends, not both")
        if not callable(profile):
            raise InputError("profile", profile, "must be a callable z_fraction -> x_Br")
        step = profile if isinstance(profile, StepProfile) else None
        profile_fn = profile
    if not callable(vacancy_fraction):
        vacancy_fraction = check_fraction("vacancy_fraction", vacancy_fraction)
    rng, entropy = _seed_sequence(seed)

    graph = build_lattice(HALIDE_LATTICE, (nx, ny, nz), lattice_constant_A=a, periodic_z=periodic_z)
    n_sites = graph.n_sites
    length_z_A = nz * a
    z_fraction = graph.z_A / length_z_A
    x_br = _evaluate_fraction("profile", profile_fn, z_fraction)
    if callable(vacancy_fraction):
        p_vac = _evaluate_fraction("vacancy_fraction", vacancy_fraction, x_br)
    else:
        p_vac = np.full(n_sites, vacancy_fraction)

    # Two independent uniforms per site, always drawn, so the Br/Cl pattern of a seed does not
    # depend on the vacancy fraction.
    u_species = rng.random(n_sites)
    u_vacancy = rng.random(n_sites)
    occupancy = np.where(u_species < x_br, BR, CL).astype(OCCUPANCY_DTYPE)
    occupancy[u_vacancy < p_vac] = VAC

    n_cells = nx * ny * nz
    cidx = np.arange(n_cells)
    cell_xyz = np.stack([cidx % nx, (cidx // nx) % ny, cidx // (nx * ny)], axis=1).astype(float)
    positions = np.vstack([(cell_xyz + CS_POSITION) * a, (cell_xyz + PB_POSITION) * a, graph.positions_A])
    numbers = np.concatenate(
        [np.full(n_cells, 55), np.full(n_cells, 82), occupancy_to_numbers(occupancy)]
    )
    atoms = Atoms(numbers=numbers, positions=positions, cell=np.diag([nx * a, ny * a, nz * a]),
                  pbc=(True, True, bool(periodic_z)))
    atoms.new_array(
        "sublattice",
        np.concatenate([np.full(n_cells, SUBLATTICE_CS), np.full(n_cells, SUBLATTICE_PB),
                        np.full(n_sites, SUBLATTICE_HALIDE)]).astype(np.int32),
    )
    atoms.new_array("site_index", np.concatenate([np.full(2 * n_cells, -1), np.arange(n_sites)]).astype(np.int32))

    info = {
        "cells": np.array([nx, ny, nz], dtype=np.int64),
        "lattice_constant_A": a,
        "site_lattice": HALIDE_LATTICE,
        "periodic_z": bool(periodic_z),
        "n_halide_sites": int(n_sites),
        "halide_ionics_version": __version__,
    }
    if step is not None:
        info["profile"] = "step"
        info["interface_z_fraction"] = step.interface_z_fraction
        info["x_br_ends"] = np.array(step.x_br_ends)
    else:
        info["profile"] = "callable"
    info["vacancy_fraction"] = "callable" if callable(vacancy_fraction) else float(vacancy_fraction)
    if entropy is not None:
        info["seed"] = int(entropy)
    atoms.info.update(info)
    counts = np.bincount(occupancy, minlength=3)
    log.info("junction %dx%dx%d cells, a=%.4f Å: %d Br, %d Cl, %d vacancies",
             nx, ny, nz, a, counts[BR], counts[CL], counts[VAC])
    return atoms


def _halide_atoms(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Atom indices of the halide sites and their site indices."""
    if "site_index" not in atoms.arrays:
        raise InputError("atoms", atoms.get_chemical_formula(), "has no 'site_index' array (not a junction)")
    site_index = np.asarray(atoms.arrays["site_index"])
    atom_idx = np.flatnonzero(site_index >= 0)
    return atom_idx, site_index[atom_idx]


def halide_atom_indices(atoms: Atoms) -> np.ndarray:
    """Atom index of every halide site, ordered by site index.

    ``atoms[halide_atom_indices(atoms)[i]]`` is the atom on site ``i`` of the junction's
    :class:`SublatticeGraph`.
    """
    atom_idx, sites = _halide_atoms(atoms)
    out = np.full(sites.size, -1, dtype=np.int64)
    if sites.size and (sites.max() >= sites.size or np.unique(sites).size != sites.size):
        raise InputError("atoms", "site_index", "halide site indices must be a permutation of 0..N-1")
    out[sites] = atom_idx
    return out


def halide_occupancy(atoms: Atoms) -> np.ndarray:
    """Occupancy of the halide sublattice as codes ``BR``, ``CL``, ``VAC``.

    Parameters
    ----------
    atoms : ase.Atoms
        A junction from :func:`build_junction` (or read back from its extxyz file).

    Returns
    -------
    numpy.ndarray of int8, shape (n_halide_sites,)
        ``occupancy[i]`` is the species on site ``i`` of :func:`junction_graph`.
    """
    idx = halide_atom_indices(atoms)
    return numbers_to_occupancy(atoms.numbers[idx])


def set_halide_occupancy(atoms: Atoms, occupancy: np.ndarray) -> Atoms:
    """Write a halide occupancy (e.g. a KMC state) into the atoms' symbols, in place.

    Parameters
    ----------
    atoms : ase.Atoms
        A junction from :func:`build_junction`.
    occupancy : array of int, shape (n_halide_sites,)
        Codes ``BR``, ``CL`` or ``VAC`` per site of :func:`junction_graph`.

    Returns
    -------
    ase.Atoms
        The same object, for chaining.
    """
    idx = halide_atom_indices(atoms)
    occ = np.asarray(occupancy)
    if occ.shape != idx.shape:
        raise InputError("occupancy", occ.shape, f"must have shape ({idx.size},), one code per halide site")
    numbers = atoms.numbers.copy()
    numbers[idx] = occupancy_to_numbers(occ)
    atoms.numbers = numbers
    return atoms


def junction_graph(atoms: Atoms, periodic_z: bool | None = None) -> SublatticeGraph:
    """The ``perovskite-x`` site graph whose site order the junction's halides follow.

    Parameters
    ----------
    atoms : ase.Atoms
        A junction from :func:`build_junction` (uses ``info["cells"]`` and
        ``info["lattice_constant_A"]``).
    periodic_z : bool, optional
        Override the wire's ``periodic_z`` (site order does not depend on it).

    Returns
    -------
    SublatticeGraph
    """
    try:
        cells = tuple(int(c) for c in np.asarray(atoms.info["cells"]).ravel())
        a = float(atoms.info["lattice_constant_A"])
    except KeyError as exc:
        raise InputError("atoms.info", exc.args[0], "missing; not a junction from build_junction") from None
    if periodic_z is None:
        periodic_z = bool(atoms.info.get("periodic_z", atoms.pbc[2]))
    return build_lattice(HALIDE_LATTICE, cells, lattice_constant_A=a, periodic_z=periodic_z)


def species_counts(atoms: Atoms) -> dict[str, int]:
    """Number of Cs, Pb, Br, Cl atoms and halide vacancies (``"X"``).

    Returns
    -------
    dict
        Keys ``"Cs"``, ``"Pb"``, ``"Br"``, ``"Cl"``, ``"vacancy"``.
    """
    z = atoms.numbers
    return {
        "Cs": int((z == 55).sum()),
        "Pb": int((z == 82).sum()),
        "Br": int((z == 35).sum()),
        "Cl": int((z == 17).sum()),
        "vacancy": int((z == 0).sum()),
    }


@dataclass(frozen=True)
class SlabProfile:
    """Composition of the halide sublattice per slab along z.

    Attributes
    ----------
    z_center_A : numpy.ndarray
        Slab centres in Å.
    n_sites, n_br, n_cl, n_vacancy : numpy.ndarray
        Halide-site counts per slab.
    """

    z_center_A: np.ndarray
    n_sites: np.ndarray
    n_br: np.ndarray
    n_cl: np.ndarray
    n_vacancy: np.ndarray

    @property
    def x_br(self) -> np.ndarray:
        """Br fraction of the occupied halide sites (NaN for a slab with none)."""
        occupied = self.n_br + self.n_cl
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(occupied > 0, self.n_br / np.maximum(occupied, 1), np.nan)

    @property
    def vacancy_fraction(self) -> np.ndarray:
        """Vacant fraction of the halide sites."""
        return self.n_vacancy / self.n_sites


def slab_profile(atoms: Atoms, n_slabs: int | None = None) -> SlabProfile:
    """Slab-resolved halide composition along the wire.

    Parameters
    ----------
    atoms : ase.Atoms
        A junction from :func:`build_junction`.
    n_slabs : int, optional
        Number of equal slabs along z (default: one per cell layer, ``nz``).

    Returns
    -------
    SlabProfile
    """
    graph = junction_graph(atoms)
    slab = graph.slab_index(n_slabs)
    n = graph.cells[2] if n_slabs is None else int(n_slabs)
    occ = halide_occupancy(atoms)
    counts = np.zeros((3, n), dtype=np.int64)
    np.add.at(counts, (occ.astype(np.int64), slab), 1)
    length_z_A = graph.cells[2] * graph.lattice_constant_A
    z_center = (np.arange(n) + 0.5) * length_z_A / n
    return SlabProfile(z_center, counts.sum(axis=0), counts[BR], counts[CL], counts[VAC])
