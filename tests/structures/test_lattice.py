"""Neighbour tables of every lattice: counts, distances, symmetry, open ends."""
import numpy as np
import pytest

from halide_ionics import InputError
from halide_ionics.structures import COORDINATION, LATTICES, build_lattice

EXPECTED_DISTANCE = {"perovskite-x": 1 / np.sqrt(2), "sc": 1.0, "bcc": np.sqrt(3) / 2, "fcc": 1 / np.sqrt(2)}
SITES_PER_CELL = {"perovskite-x": 3, "sc": 1, "bcc": 2, "fcc": 4}


@pytest.mark.parametrize("name", LATTICES)
@pytest.mark.parametrize("periodic_z", [True, False])
def test_neighbour_table(name, periodic_z):
    a = 5.8
    g = build_lattice(name, (3, 4, 5), lattice_constant_A=a, periodic_z=periodic_z)
    n = g.n_sites
    assert n == 3 * 4 * 5 * SITES_PER_CELL[name]
    assert g.coordination == COORDINATION[name]
    i = np.repeat(np.arange(n), g.coordination)
    j = g.neighbors.ravel()
    m = j >= 0
    # distance of every link, minimum image in periodic directions
    d = g.positions_A[j[m]] - g.positions_A[i[m]]
    L = g.cell_lengths_A
    for ax in range(3):
        if g.periodic[ax]:
            d[:, ax] -= np.round(d[:, ax] / L[ax]) * L[ax]
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), EXPECTED_DISTANCE[name] * a, rtol=1e-12)
    np.testing.assert_allclose(d, g.jump_vectors_A.reshape(-1, 3)[m], atol=1e-9)
    # symmetric: j in N(i) <=> i in N(j); no duplicates; never self
    pairs = set(zip(i[m].tolist(), j[m].tolist()))
    assert all((b, a_) in pairs for a_, b in pairs)
    assert not any(a_ == b for a_, b in pairs)
    for row in g.neighbors:
        r = row[row >= 0]
        assert len(np.unique(r)) == len(r)
    if periodic_z:
        assert g.n_open_links() == 0
    else:
        # only sites in the first/last cell layer lose neighbours, and only jumps with dz != 0
        lost = g.neighbors < 0
        iz = g.cell_index[:, 2]
        assert np.all(np.isin(iz[lost.any(axis=1)], [0, 4]))
        assert np.all(g.jump_vectors_A[lost][:, 2] != 0)
        assert g.n_open_links() > 0


def test_perovskite_site_density():
    g = build_lattice("perovskite-x", 2, lattice_constant_A=5.8)
    assert g.site_density_per_m3 == pytest.approx(1.537e28, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(name="hcp", cells=3), "lattice"),
        (dict(name="sc", cells=(3, -1, 3)), "cells"),
        (dict(name="sc", cells=(3, 0, 3)), "cells"),
        (dict(name="sc", cells=3, lattice_constant_A=-5.8), "lattice_constant_A"),
    ],
)
def test_invalid_lattice_arguments(kwargs, field):
    with pytest.raises(InputError) as exc:
        build_lattice(**kwargs)
    assert exc.value.field == field
