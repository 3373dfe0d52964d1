"""Nanowire junctions: stoichiometry, composition statistics, seeds, site order, occupancy."""
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from halide_ionics import InputError
from halide_ionics.structures import (
    BR,
    CL,
    HALIDE_SYMBOLS,
    SUBLATTICE_CS,
    SUBLATTICE_HALIDE,
    SUBLATTICE_PB,
    VAC,
    StepProfile,
    build_junction,
    build_lattice,
    halide_atom_indices,
    halide_occupancy,
    junction_graph,
    set_halide_occupancy,
    slab_profile,
    species_counts,
)

CELLS = (6, 6, 40)
N_CELLS = 6 * 6 * 40
Z_SIGMA = 4.0  # statistical tolerance in standard errors


@pytest.fixture(scope="module")
def junction():
    return build_junction(CELLS, interface_z_fraction=0.5, x_br_ends=(1.0, 0.1), vacancy_fraction=0.01, seed=1)


def test_stoichiometry(junction):
    counts = species_counts(junction)
    assert len(junction) == 5 * N_CELLS
    assert counts["Cs"] == N_CELLS
    assert counts["Pb"] == N_CELLS
    assert counts["Br"] + counts["Cl"] + counts["vacancy"] == 3 * N_CELLS
    assert junction.info["n_halide_sites"] == 3 * N_CELLS
    sub = junction.arrays["sublattice"]
    assert (sub == SUBLATTICE_CS).sum() == N_CELLS and set(junction.numbers[sub == SUBLATTICE_CS]) == {55}
    assert (sub == SUBLATTICE_PB).sum() == N_CELLS and set(junction.numbers[sub == SUBLATTICE_PB]) == {82}
    assert set(junction.numbers[sub == SUBLATTICE_HALIDE]) == {35, 17, 0}
    np.testing.assert_allclose(junction.cell.lengths(), [34.8, 34.8, 232.0])
    assert list(junction.pbc) == [True, True, False]
    info = junction.info
    assert list(info["cells"]) == list(CELLS) and info["lattice_constant_A"] == 5.8
    assert info["interface_z_fraction"] == 0.5 and list(info["x_br_ends"]) == [1.0, 0.1]
    assert info["vacancy_fraction"] == 0.01 and info["seed"] == 1 and info["profile"] == "step"
    assert info["halide_ionics_version"]


def test_halide_order_matches_site_graph(junction):
    graph = junction_graph(junction)
    assert graph.n_sites == 3 * N_CELLS
    idx = halide_atom_indices(junction)
    # block layout: Cs, Pb, then halide sites in graph order
    np.testing.assert_array_equal(idx, 2 * N_CELLS + np.arange(graph.n_sites))
    np.testing.assert_array_equal(junction.arrays["site_index"][idx], np.arange(graph.n_sites))
    assert (junction.arrays["site_index"][: 2 * N_CELLS] == -1).all()
    np.testing.assert_allclose(junction.positions[idx], graph.positions_A, atol=1e-12)
    # the same graph as a direct build_lattice call, open along z like the wire
    direct = build_lattice("perovskite-x", CELLS, lattice_constant_A=5.8, periodic_z=False)
    np.testing.assert_array_equal(direct.neighbors, graph.neighbors)


def test_every_halide_bridges_two_pb():
    """Geometry check on a periodic wire: X has 2 Pb at a/2, Pb has 6 X at a/2."""
    a = 5.8
    atoms = build_junction((3, 3, 4), lattice_constant_A=a, seed=3, periodic_z=True)
    i, j = neighbor_list("ij", atoms, 0.5 * a + 0.05)
    sub = atoms.arrays["sublattice"]
    pb_neighbours_of_x = np.bincount(i[(sub[i] == SUBLATTICE_HALIDE) & (sub[j] == SUBLATTICE_PB)], minlength=len(atoms))
    assert (pb_neighbours_of_x[sub == SUBLATTICE_HALIDE] == 2).all()
    x_neighbours_of_pb = np.bincount(i[(sub[i] == SUBLATTICE_PB) & (sub[j] == SUBLATTICE_HALIDE)], minlength=len(atoms))
    assert (x_neighbours_of_pb[sub == SUBLATTICE_PB] == 6).all()


def test_step_profile_within_binomial_errors(junction):
    prof = slab_profile(junction)
    left = prof.z_center_A < 0.5 * 232.0
    # x_Br = 1 end is deterministic: no Cl at all there
    assert (prof.n_cl[left] == 0).all() and (prof.x_br[left] == 1.0).all()
    p = 0.1
    n_occ = prof.n_br[~left] + prof.n_cl[~left]
    z = (prof.n_br[~left] - p * n_occ) / np.sqrt(n_occ * p * (1 - p))
    assert np.all(np.abs(z) < Z_SIGMA), z
    total = n_occ.sum()
    z_all = (prof.n_br[~left].sum() - p * total) / np.sqrt(total * p * (1 - p))
    assert abs(z_all) < Z_SIGMA
    # and the step is really there: the Cl side is far from Br-pure
    assert prof.x_br[~left].max() < 0.5


def test_callable_profile_within_binomial_errors():
    def ramp(z_fraction):
        return 0.1 + 0.8 * z_fraction

    atoms = build_junction((8, 8, 20), profile=ramp, seed=11)
    assert atoms.info["profile"] == "callable" and "interface_z_fraction" not in atoms.info
    graph = junction_graph(atoms)
    occ = halide_occupancy(atoms)
    p = ramp(graph.z_A / (20 * 5.8))
    slab = graph.slab_index()
    is_br = (occ == BR).astype(float)
    expected = np.bincount(slab, weights=p)
    var = np.bincount(slab, weights=p * (1 - p))
    observed = np.bincount(slab, weights=is_br)
    z = (observed - expected) / np.sqrt(var)
    assert np.all(np.abs(z) < Z_SIGMA), z
    # monotone trend is resolved: first and last quarter differ by many standard errors
    assert observed[-5:].sum() - observed[:5].sum() > 10 * np.sqrt(var[:5].sum() + var[-5:].sum())


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3])
def test_vacancy_fraction_within_binomial_errors(fraction):
    atoms = build_junction(CELLS, vacancy_fraction=fraction, seed=5)
    n = 3 * N_CELLS
    n_vac = species_counts(atoms)["vacancy"]
    if fraction == 0.0:
        assert n_vac == 0
    else:
        assert abs(n_vac - n * fraction) < Z_SIGMA * np.sqrt(n * fraction * (1 - fraction))


def test_vacancy_fraction_callable_of_composition():
    def f(x_br):
        return 0.02 + 0.08 * (1.0 - x_br)  # 0.02 on the Br side, 0.092 on the x_Br = 0.1 side

    atoms = build_junction(CELLS, x_br_ends=(1.0, 0.1), vacancy_fraction=f, seed=9)
    assert atoms.info["vacancy_fraction"] == "callable"
    prof = slab_profile(atoms, n_slabs=2)
    for side, p in enumerate([0.02, 0.092]):
        n = prof.n_sites[side]
        assert abs(prof.n_vacancy[side] - n * p) < Z_SIGMA * np.sqrt(n * p * (1 - p))


def test_seed_reproducibility():
    kw = dict(cells=(4, 4, 10), vacancy_fraction=0.05, x_br_ends=(0.7, 0.3))
    a = build_junction(seed=42, **kw)
    b = build_junction(seed=42, **kw)
    c = build_junction(seed=43, **kw)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert (a.numbers != c.numbers).sum() > 50
    # a SeedSequence with the same entropy gives the same structure
    d = build_junction(seed=np.random.SeedSequence(42), **kw)
    np.testing.assert_array_equal(a.numbers, d.numbers)
    # seed=None records fresh entropy that reproduces the structure
    e = build_junction(seed=None, **kw)
    np.testing.assert_array_equal(build_junction(seed=e.info["seed"], **kw).numbers, e.numbers)


def test_vacancies_do_not_change_the_br_cl_pattern():
    """Same seed: adding vacancies only blanks sites, it does not reshuffle Br/Cl."""
    clean = halide_occupancy(build_junction((4, 4, 10), vacancy_fraction=0.0, seed=8))
    holey = halide_occupancy(build_junction((4, 4, 10), vacancy_fraction=0.2, seed=8))
    kept = holey != VAC
    assert (~kept).sum() > 0
    np.testing.assert_array_equal(holey[kept], clean[kept])


def test_occupancy_round_trip(junction, rng):
    atoms = junction.copy()
    occ = halide_occupancy(atoms)
    assert occ.dtype == np.int8 and occ.shape == (3 * N_CELLS,)
    symbols = np.array(atoms.get_chemical_symbols())
    np.testing.assert_array_equal(symbols[halide_atom_indices(atoms)], np.array(HALIDE_SYMBOLS)[occ])
    new = rng.integers(0, 3, size=occ.size).astype(np.int8)
    cs_pb_before = atoms.numbers[: 2 * N_CELLS].copy()
    out = set_halide_occupancy(atoms, new)
    assert out is atoms
    np.testing.assert_array_equal(halide_occupancy(atoms), new)
    np.testing.assert_array_equal(atoms.numbers[: 2 * N_CELLS], cs_pb_before)
    counts = species_counts(atoms)
    assert (counts["Br"], counts["Cl"], counts["vacancy"]) == tuple(np.bincount(new, minlength=3)[[BR, CL, VAC]])
    # the original structure is untouched (copy semantics)
    np.testing.assert_array_equal(halide_occupancy(junction), occ)


def test_occupancy_follows_site_index_after_reordering(junction):
    """Functions use the site_index array, not the block layout."""
    perm = np.random.default_rng(0).permutation(len(junction))
    shuffled = junction[perm]
    np.testing.assert_array_equal(halide_occupancy(shuffled), halide_occupancy(junction))


@pytest.mark.parametrize(
    "occupancy, field",
    [(np.zeros(5, dtype=np.int8), "occupancy"), (np.full(3 * 2 * 2 * 2, 3, dtype=np.int8), "occupancy"),
     (np.zeros(3 * 2 * 2 * 2), "occupancy")],
)
def test_set_occupancy_rejects(occupancy, field):
    atoms = build_junction((2, 2, 2), seed=0)
    before = atoms.numbers.copy()
    with pytest.raises(InputError) as exc:
        set_halide_occupancy(atoms, occupancy)
    assert exc.value.field == field
    np.testing.assert_array_equal(atoms.numbers, before)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(cells=(6, 0, 40)), "cells"),
        (dict(cells=(6, 6, -4)), "cells"),
        (dict(cells=(1, 6, 40)), "cells"),
        (dict(cells=(6, 6)), "cells"),
        (dict(lattice_constant_A=0.0), "lattice_constant_A"),
        (dict(interface_z_fraction=1.2), "interface_z_fraction"),
        (dict(interface_z_fraction=-0.1), "interface_z_fraction"),
        (dict(x_br_ends=(1.0, 1.1)), "x_br_ends"),
        (dict(x_br_ends=(1.0,)), "x_br_ends"),
        (dict(vacancy_fraction=1.5), "vacancy_fraction"),
        (dict(vacancy_fraction=lambda x: 2.0 * x), "vacancy_fraction"),
        (dict(profile=lambda z: z - 0.5), "profile"),
        (dict(profile=lambda z: z, x_br_ends=(1.0, 0.0)), "profile"),
        (dict(seed=-1), "seed"),
    ],
)
def test_invalid_junction_arguments(kwargs, field):
    kwargs = {"cells": (4, 4, 4), **kwargs}
    with pytest.raises(InputError) as exc:
        build_junction(**kwargs)
    assert exc.value.field == field


def test_step_profile_callable():
    step = StepProfile(0.25, (0.9, 0.2))
    np.testing.assert_array_equal(step(np.array([0.0, 0.2499, 0.25, 0.9])), [0.9, 0.9, 0.2, 0.2])
