"""Species and sublattice codes shared by structures and the KMC engine.

Halide occupancy
    The state of the halide sublattice is an ``int8`` array over the sites of the
    ``perovskite-x`` :class:`~halide_ionics.structures.lattice.SublatticeGraph`, one entry per
    site, with the codes

    ======= ===== ===================================================================
    code    value symbol in ``ase.Atoms``
    ======= ===== ===================================================================
    ``BR``  0     ``"Br"``
    ``CL``  1     ``"Cl"``
    ``VAC`` 2     ``"X"`` (ASE's ghost element, atomic number 0; see below)
    ======= ===== ===================================================================

Vacancies as a placeholder species
    A vacant halide site stays in the ``Atoms`` object as element ``"X"`` (atomic number 0),
    so that atom indices and therefore halide-site indices never shift when a halide leaves.
    ASE treats ``X`` as a ghost atom; extxyz writes it as the species name ``X``, which ASE
    reads back as atomic number 0 and OVITO reads as a particle type named ``X``. Renderers
    that should hide vacancies select ``atoms.numbers != 0``.

Sublattice codes
    ``atoms.arrays["sublattice"]`` labels every atom with ``SUBLATTICE_CS`` (0, A site),
    ``SUBLATTICE_PB`` (1, B site) or ``SUBLATTICE_HALIDE`` (2, X site, whatever its occupant).
"""
from __future__ import annotations

import numpy as np

from halide_ionics.errors import InputError

#: Halide-site occupancy codes (values of an ``int8`` occupancy array).
BR: int = 0
CL: int = 1
VAC: int = 2

#: dtype of occupancy arrays.
OCCUPANCY_DTYPE = np.int8

#: Symbol in ``ase.Atoms`` of each occupancy code, indexed by the code.
HALIDE_SYMBOLS: tuple[str, str, str] = ("Br", "Cl", "X")

#: Symbol used for a vacant halide site (ASE ghost element, atomic number 0).
VACANCY_SYMBOL: str = "X"

#: Atomic number of each occupancy code, indexed by the code (Br 35, Cl 17, X 0).
HALIDE_NUMBERS: np.ndarray = np.array([35, 17, 0], dtype=np.int64)

#: Sublattice codes stored in ``atoms.arrays["sublattice"]``.
SUBLATTICE_CS: int = 0
SUBLATTICE_PB: int = 1
SUBLATTICE_HALIDE: int = 2

#: Human-readable names of the occupancy codes, indexed by the code.
OCCUPANCY_NAMES: tuple[str, str, str] = ("Br", "Cl", "vacancy")


def occupancy_to_numbers(occupancy: np.ndarray) -> np.ndarray:
    """Atomic numbers of halide occupancy codes.

    Parameters
    ----------
    occupancy : array of int
        Codes ``BR``, ``CL`` or ``VAC``.

    Returns
    -------
    numpy.ndarray of int64
        35 for Br, 17 for Cl, 0 for a vacancy (ghost ``X``).

    Raises
    ------
    InputError
        If any code is not one of ``BR``, ``CL``, ``VAC``.
    """
    occ = np.asarray(occupancy)
    if not np.issubdtype(occ.dtype, np.integer):
        raise InputError("occupancy", str(occ.dtype), "must be an integer array of codes")
    bad = (occ < 0) | (occ > VAC)
    if bad.any():
        raise InputError("occupancy", np.unique(occ[bad])[:3].tolist(), f"codes must be BR={BR}, CL={CL} or VAC={VAC}")
    return HALIDE_NUMBERS[occ.astype(np.int64)]


def numbers_to_occupancy(numbers: np.ndarray) -> np.ndarray:
    """Halide occupancy codes of atomic numbers (35 → ``BR``, 17 → ``CL``, 0 → ``VAC``).

    Parameters
    ----------
    numbers : array of int
        Atomic numbers of halide-site atoms.

    Returns
    -------
    numpy.ndarray of int8

    Raises
    ------
    InputError
        If an atomic number is not Br, Cl or the ghost ``X``.
    """
    z = np.asarray(numbers, dtype=np.int64)
    occ = np.full(z.shape, -1, dtype=OCCUPANCY_DTYPE)
    for code, number in enumerate(HALIDE_NUMBERS):
        occ[z == number] = code
    if (occ < 0).any():
        raise InputError("numbers", np.unique(z[occ < 0]).tolist(), "halide sites must hold Br (35), Cl (17) or X (0)")
    return occ
