"""Unit cell geometry and the lattice-constant table."""
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from halide_ionics import InputError
from halide_ionics.structures import (
    BASES,
    DEFAULT_LATTICE_CONSTANT_A,
    LATTICE_CONSTANTS,
    build_junction,
    named_lattice_constant_A,
    perovskite_unit_cell,
    resolve_lattice_constant_A,
    vegard_lattice_constant_A,
)


def test_unit_cell_is_pm3m_perovskite():
    a = 5.874
    cell = perovskite_unit_cell("Br", lattice_constant_A=a)
    assert cell.get_chemical_symbols() == ["Cs", "Pb", "Br", "Br", "Br"]
    assert cell.get_volume() == pytest.approx(a**3)
    # halide sites are the perovskite-x basis of the site graph, in the same order
    np.testing.assert_allclose(cell.get_scaled_positions()[2:], BASES["perovskite-x"], atol=1e-12)
    # coordination: PbX6 octahedron at a/2, CsX12 cuboctahedron at a/sqrt(2)
    i, j, d = neighbor_list("ijd", cell, 0.5 * a + 0.01)
    pb_x = j[(i == 1)]
    assert len(pb_x) == 6 and set(cell.numbers[pb_x]) == {35}
    np.testing.assert_allclose(d[i == 1], a / 2)
    i, j, d = neighbor_list("ijd", cell, a / np.sqrt(2) + 0.01)
    cs = i == 0
    assert set(cell.numbers[j[cs]]) == {35} and cs.sum() == 12
    np.testing.assert_allclose(d[cs], a / np.sqrt(2))
    np.testing.assert_array_equal(cell.arrays["site_index"], [-1, -1, 0, 1, 2])


def test_unit_cell_tiles_into_the_junction():
    """A periodic pure-Br junction is the unit cell repeated (same set of positions/species)."""
    a = 5.8
    junction = build_junction((2, 3, 2), lattice_constant_A=a, x_br_ends=(1.0, 1.0), seed=0, periodic_z=True)
    tiled = perovskite_unit_cell("Br", a).repeat((2, 3, 2))
    key = lambda at: sorted(zip(at.numbers.tolist(), np.round(at.positions, 6).tolist()))  # noqa: E731
    assert key(junction) == key(tiled)
    np.testing.assert_allclose(junction.cell[:], tiled.cell[:])


def test_lattice_constant_table():
    assert DEFAULT_LATTICE_CONSTANT_A == 5.8
    assert named_lattice_constant_A() == 5.8
    assert named_lattice_constant_A("CsPbBr3-cubic") == 5.874
    assert named_lattice_constant_A("CsPbBr3-pseudocubic") == 5.840
    assert named_lattice_constant_A("CsPbCl3-cubic") == pytest.approx(5.61, abs=0.01)
    for entry in LATTICE_CONSTANTS.values():
        assert entry.source and entry.description and entry.value_A > 0
    with pytest.raises(InputError) as exc:
        named_lattice_constant_A("CsPbI3")
    assert exc.value.field == "lattice_constant"


@pytest.mark.parametrize(
    "value, expected", [(5.9, 5.9), ("6.1", 6.1), ("CsPbBr3-pseudocubic", 5.840), ("paper", 5.8)]
)
def test_resolve_lattice_constant(value, expected):
    assert resolve_lattice_constant_A(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["cubic", "-5.8", 0.0, float("nan"), "inf"])
def test_resolve_lattice_constant_rejects(value):
    with pytest.raises(InputError) as exc:
        resolve_lattice_constant_A(value)
    assert exc.value.field == "lattice_constant"


def test_vegard():
    a_br, a_cl = LATTICE_CONSTANTS["CsPbBr3-cubic"].value_A, LATTICE_CONSTANTS["CsPbCl3-cubic"].value_A
    assert vegard_lattice_constant_A(1.0) == pytest.approx(a_br)
    assert vegard_lattice_constant_A(0.0) == pytest.approx(a_cl)
    assert vegard_lattice_constant_A(0.25) == pytest.approx(0.25 * a_br + 0.75 * a_cl)
    assert vegard_lattice_constant_A(0.5, 6.0, 5.0) == pytest.approx(5.5)
    with pytest.raises(InputError) as exc:
        vegard_lattice_constant_A(1.2)
    assert exc.value.field == "x_br"
