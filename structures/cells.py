"""Cubic Pm-3m CsPbX3 unit cells and lattice constants.

Geometry (conventional cubic cell of edge ``a``, fractional coordinates)

======= ==================================== ==========
site    position                             species
======= ==================================== ==========
B       (0, 0, 0)                            Pb
A       (½, ½, ½)                            Cs
X       (½, 0, 0), (0, ½, 0), (0, 0, ½)      Br / Cl
======= ==================================== ==========

The three X positions are, in this order, the basis of the ``perovskite-x`` lattice in
:mod:`halide_ionics.structures.lattice`, so halide basis index ``b`` of a unit cell is basis
site ``b`` of the site graph.

Lattice constants
    :data:`LATTICE_CONSTANTS` is a small table of named values with their sources; the
    default everywhere is :data:`DEFAULT_LATTICE_CONSTANT_A` = 5.8 Å, the lattice spacing of
    the paper's atomistic snapshot. One lattice constant is used for a whole junction (the
    KMC lattice is rigid); :func:`vegard_lattice_constant_A` gives a composition-weighted
    value for a mixed crystal if a single representative spacing is wanted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from halide_ionics.errors import InputError, check_choice, check_fraction, check_positive

from .lattice import BASES
from .species import SUBLATTICE_CS, SUBLATTICE_HALIDE, SUBLATTICE_PB


@dataclass(frozen=True)
class LatticeConstant:
    """A literature or model lattice constant with its provenance.

    Attributes
    ----------
    value_A : float
        Lattice constant in Å.
    composition : str
        Chemical formula it belongs to.
    description : str
        Phase / temperature / how it was obtained.
    source : str
        Reference.
    """

    value_A: float
    composition: str
    description: str
    source: str


#: Default lattice constant in Å: the lattice spacing of the paper's atomistic snapshot.
DEFAULT_LATTICE_CONSTANT_A: float = 5.8

#: Named lattice constants (Å) with sources. Keys are accepted by
#: :func:`named_lattice_constant_A` and by the CLI option ``--lattice-constant``.
LATTICE_CONSTANTS: dict[str, LatticeConstant] = {
    "paper": LatticeConstant(
        5.8,
        "CsPb(Br,Cl)3",
        "lattice spacing of the atomistic junction snapshot (default)",
        "the reproduced paper, Fig. 1c; see docs/model.md §2",
    ),
    "CsPbBr3-cubic": LatticeConstant(
        5.874,
        "CsPbBr3",
        "cubic Pm-3m high-temperature phase (above ~403 K; 425 K in ICSD 201285)",
        "C. K. Møller, Nature 182, 1436 (1958); Hirotsu et al., J. Phys. Soc. Jpn. 47, 232 "
        "(1979) (ICSD 201285); Stoumpos et al., Cryst. Growth Des. 13, 2722 (2013)",
    ),
    "CsPbBr3-pseudocubic": LatticeConstant(
        5.840,
        "CsPbBr3",
        "room-temperature orthorhombic phase, a_pc = (V/Z)^(1/3) with V = 796.66 Å^3, Z = 4",
        "ICSD 97851 (2003, doi:10.1023/A:1022836800820); derived in shared research notes",
    ),
    "CsPbCl3-cubic": LatticeConstant(
        5.605,
        "CsPbCl3",
        "cubic Pm-3m high-temperature phase (above ~320 K)",
        "C. K. Møller, Nature 182, 1436 (1958) (commonly quoted value, ≈ 5.61 Å; "
        "not re-checked against the primary source here)",
    ),
}


def named_lattice_constant_A(name: str = "paper") -> float:
    """Look up a named lattice constant.

    Parameters
    ----------
    name : str
        A key of :data:`LATTICE_CONSTANTS`.

    Returns
    -------
    float
        Lattice constant in Å.

    Raises
    ------
    InputError
        If ``name`` is not in the table (field ``lattice_constant``).
    """
    check_choice("lattice_constant", name, LATTICE_CONSTANTS)
    return LATTICE_CONSTANTS[name].value_A


def resolve_lattice_constant_A(value: float | str) -> float:
    """A lattice constant in Å from a number (Å) or a table name.

    Parameters
    ----------
    value : float or str
        A positive number in Å (also as a string, e.g. ``"5.8"``) or a key of
        :data:`LATTICE_CONSTANTS`.

    Returns
    -------
    float
        Lattice constant in Å.

    Raises
    ------
    InputError
        For an unknown name or a non-positive / non-finite number (field
        ``lattice_constant``).
    """
    if isinstance(value, str):
        if value in LATTICE_CONSTANTS:
            return LATTICE_CONSTANTS[value].value_A
        try:
            number = float(value)
        except ValueError:
            raise InputError(
                "lattice_constant", value, f"must be a length in Å or one of {sorted(LATTICE_CONSTANTS)}"
            ) from None
    else:
        number = value
    return check_positive("lattice_constant", number)


def vegard_lattice_constant_A(
    x_br: float,
    lattice_constant_br_A: float = LATTICE_CONSTANTS["CsPbBr3-cubic"].value_A,
    lattice_constant_cl_A: float = LATTICE_CONSTANTS["CsPbCl3-cubic"].value_A,
) -> float:
    """Vegard's-law lattice constant of CsPb(Br_x Cl_1-x)3.

    ``a(x) = x a_Br + (1 - x) a_Cl`` (linear interpolation, no bowing).

    Parameters
    ----------
    x_br : float
        Br fraction of the halide sites, in [0, 1].
    lattice_constant_br_A, lattice_constant_cl_A : float
        End-member lattice constants in Å (defaults: cubic CsPbBr3 5.874 Å and cubic
        CsPbCl3 5.605 Å).

    Returns
    -------
    float
        Lattice constant in Å.
    """
    x = check_fraction("x_br", x_br)
    a_br = check_positive("lattice_constant_br_A", lattice_constant_br_A)
    a_cl = check_positive("lattice_constant_cl_A", lattice_constant_cl_A)
    return x * a_br + (1.0 - x) * a_cl


#: Fractional coordinates of the Pb (B) and Cs (A) sites.
PB_POSITION = np.array([0.0, 0.0, 0.0])
CS_POSITION = np.array([0.5, 0.5, 0.5])
#: Fractional coordinates of the three halide (X) sites, in site-graph basis order.
HALIDE_POSITIONS = BASES["perovskite-x"]


def perovskite_unit_cell(halide: str = "Br", lattice_constant_A: float = DEFAULT_LATTICE_CONSTANT_A) -> Atoms:
    """The 5-atom cubic Pm-3m CsPbX3 unit cell.

    Atom order: Cs, Pb, X(½,0,0), X(0,½,0), X(0,0,½); periodic in all directions.

    Parameters
    ----------
    halide : {"Br", "Cl"}
        The halide on all three X sites.
    lattice_constant_A : float
        Cubic lattice constant in Å.

    Returns
    -------
    ase.Atoms
        With ``arrays["sublattice"]`` (0 Cs, 1 Pb, 2 halide) and ``arrays["site_index"]``
        (halide basis index 0..2, -1 for Cs/Pb).
    """
    check_choice("halide", halide, ("Br", "Cl"))
    a = check_positive("lattice_constant_A", lattice_constant_A)
    scaled = np.vstack([CS_POSITION, PB_POSITION, HALIDE_POSITIONS])
    atoms = Atoms(
        symbols=["Cs", "Pb", halide, halide, halide],
        scaled_positions=scaled,
        cell=np.eye(3) * a,
        pbc=True,
    )
    atoms.new_array("sublattice", np.array([SUBLATTICE_CS, SUBLATTICE_PB] + [SUBLATTICE_HALIDE] * 3, dtype=np.int32))
    atoms.new_array("site_index", np.array([-1, -1, 0, 1, 2], dtype=np.int32))
    return atoms
