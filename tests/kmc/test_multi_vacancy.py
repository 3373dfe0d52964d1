"""Many-vacancy fast path (no electrodes): bit for bit the general loop's trajectory."""
import copy

import numpy as np
import pytest

from halide_ionics.kmc import RateModel, Simulation
from halide_ionics.structures import build_lattice
from halide_ionics.structures.species import VAC

from .test_engine import fast_and_general, state_digest


@pytest.mark.parametrize("lattice, cells, periodic_z, x_v", [("perovskite-x", 4, True, 0.02),
                                                            ("perovskite-x", (3, 3, 6), False, 0.05),
                                                            ("sc", 5, True, 0.03), ("fcc", 3, True, 0.1),
                                                            ("perovskite-x", (4, 4, 3), False, 0.3)])
def test_many_vacancy_fast_path_equals_general_loop(lattice, cells, periodic_z, x_v):
    """Several vacancies (some adjacent: the non-clean hop factors), site potentials (random; and
    one value everywhere, where the fast loop reads the field factors by jump class), field,
    environment barriers and formation energies, open ends, both clocks, tracking, time limits:
    every state array (RNG, stamps, sum tree, rates, accumulators) equal to the general loop's.
    The dense case (30 % vacancies, open ends) has vacancies next to both ends of most hops: the
    refresh's shell walk, which skips what the centre i covers, must still stamp exactly the
    vacancies within two shells of the centres."""
    g = build_lattice(lattice, cells, 5.8, periodic_z)
    rng = np.random.default_rng(4)
    occ = (rng.random(g.n_sites) < 0.4).astype(np.int8)
    occ[rng.random(g.n_sites) < x_v] = VAC
    occ[:3] = VAC  # a vacancy cluster
    assert (occ == VAC).sum() > 2
    model = RateModel(temperature_K=400, barrier_cl_eV=0.5, barrier_shift_br_eV=0.02, barrier_shift_cl_eV=-0.01,
                      vacancy_formation_cl_eV=1.4, field_V_per_A=0.01)
    psi_random = 0.02 * rng.standard_normal(g.n_sites)
    # one potential everywhere: the fast loop reads the hop field factors by jump class (vtab)
    for psi, clock, track in ((psi_random, "exponential", False), (psi_random, "exponential", True),
                              (psi_random, "mean", False), (psi_random, "mean", True),
                              (np.full(g.n_sites, 0.03), "exponential", False), (None, "mean", True)):
        sims = fast_and_general(g, occ, model, 6, psi, clock, track)
        assert sims[0].steps > 3500
        assert (sims[0].vtab.size > 0) == (psi is not psi_random)
        if sims[0].vtab.size:
            assert np.array_equal(sims[0].vtab[sims[0].geo.jcls], sims[0].vfac.reshape(-1))
        assert state_digest(sims[0]) == state_digest(sims[1]), (clock, track)
        ref = Simulation(g, sims[0].occupancy, model, 6, site_potentials_V=psi)  # rates from scratch
        nv = ref.n_vacancies
        order = np.argsort(sims[0]._s["vac_site"][:nv])
        ref_order = np.argsort(ref._s["vac_site"][:nv])
        assert np.array_equal(ref._s["vrates"][:nv][ref_order], sims[0]._s["vrates"][:nv][order])
        assert np.array_equal(ref._s["nion"], sims[0]._s["nion"])
        assert np.array_equal(ref._s["ncl"], sims[0]._s["ncl"])


_NOJIT = """
import json, sys
sys.path.insert(0, {repo!r})
from tests.kmc.test_multi_vacancy import small_multi
from tests.kmc.test_engine import state_digest
out = []
for const in (False, True):
    sim = small_multi(const)
    sim.run(hops=300)
    out.append({{"digest": state_digest(sim), "steps": sim.steps}})
print(json.dumps(out))
"""


def small_multi(constant_potential=False):
    g = build_lattice("perovskite-x", (3, 3, 4), 5.8, False)
    rng = np.random.default_rng(8)
    occ = (rng.random(g.n_sites) < 0.4).astype(np.int8)
    occ[rng.choice(g.n_sites, 6, replace=False)] = VAC
    occ[:2] = VAC
    model = RateModel(temperature_K=400, barrier_cl_eV=0.5, barrier_shift_br_eV=0.02, vacancy_formation_cl_eV=1.4,
                      field_V_per_A=0.01)
    psi = np.full(g.n_sites, 0.02) if constant_potential else 0.02 * rng.standard_normal(g.n_sites)
    return Simulation(g, occ, model, 3, site_potentials_V=psi, track_ions=True)


def test_many_vacancy_fast_path_without_numba():
    """NUMBA_DISABLE_JIT=1 runs the same Python code: same trajectory (no index type traps), with
    site potentials and with one potential everywhere (the class-table reads)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", _NOJIT.format(repo=str(repo))], env=env, cwd=repo,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for const, got in zip((False, True), res):
        sim = small_multi(const)
        assert sim.n_vacancies > 2 and (sim.vtab.size > 0) == const
        sim.run(hops=300)
        assert got == {"digest": state_digest(sim), "steps": 300}, const


@pytest.mark.parametrize("lattice, cells, periodic_z", [("perovskite-x", (3, 3, 4), False), ("bcc", 3, True)])
def test_common_neighbour_mask_matches_neighbour_sets(lattice, cells, periodic_z):
    """``cnm[x, k]`` bit j (which neighbours of x the refresh after a hop x -> nb[x, k] has
    covered from nb[x, k]) equals the set definition: nb[x, j] is nb[x, k] or one of its
    neighbours; nothing is set across an open end."""
    from halide_ionics.kmc.simulation import _geometry

    g = build_lattice(lattice, cells, 5.8, periodic_z)
    nb = g.neighbors
    z = nb.shape[1]
    cnm = _geometry(g).cnm.reshape(nb.shape)
    assert (nb < 0).any() == (not periodic_z)
    for x in range(g.n_sites):
        for k in range(z):
            y = nb[x, k]
            near = set() if y < 0 else {y} | {w for w in nb[y] if w >= 0}
            want = sum(1 << j for j in range(z) if nb[x, j] >= 0 and nb[x, j] in near)
            assert cnm[x, k] == want, (x, k)


@pytest.mark.parametrize("lattice, cells, periodic_z", [("perovskite-x", (3, 3, 4), False), ("bcc", 3, True)])
def test_reverse_slots_pair_each_neighbour_entry(lattice, cells, periodic_z):
    """``rev[x*z + k]`` (the many-vacancy loop's path to the vacant-neighbour masks) is the slot of
    x in the row of y = nb[x, k]: nb[y, rev] == x for every entry, checked site by site, and
    (x, k) -> (y, rev) maps each entry to the one pointing back; -1 at open ends. A one-sided
    neighbour list is refused."""
    from halide_ionics.errors import InputError
    from halide_ionics.kmc.simulation import _reverse_slots

    nb = build_lattice(lattice, cells, 5.8, periodic_z).neighbors.astype(np.int32)
    n, z = nb.shape
    rev = _reverse_slots(nb).reshape(n, z).astype(np.int64)
    assert ((nb < 0).any() == (not periodic_z)) and (rev[nb < 0] == -1).all()
    for x in range(n):
        for k in range(z):
            if nb[x, k] >= 0:
                assert list(nb[nb[x, k]]).index(x) == rev[x, k], (x, k)
    x, k = np.nonzero(nb >= 0)
    assert np.array_equal(rev[nb[x, k], rev[x, k]], k)
    one_sided = nb.copy()
    one_sided[nb[0, 0], rev[0, 0]] = -1  # 0 lists its neighbour, which no longer lists 0
    with pytest.raises(InputError, match="graph"):
        _reverse_slots(one_sided)


@pytest.mark.parametrize("lattice, cells, periodic_z", [("perovskite-x", (3, 3, 4), False), ("fcc", 3, True)])
def test_jump_classes_reproduce_the_jump_vectors(lattice, cells, periodic_z):
    """The fast loop's jump classes: ``jtab[jcls]`` is the jump vector of every (site, slot) in
    units of a/2 (from the graph's Cartesian jump vectors), and a class never mixes slots with
    and without a neighbour (its field factor is one number)."""
    from halide_ionics.kmc.simulation import _geometry

    g = build_lattice(lattice, cells, 5.8, periodic_z)
    geo = _geometry(g)
    n, z = g.neighbors.shape
    jv = geo.jtab.reshape(-1, 3)[geo.jcls].reshape(n, z, 3)
    has_nb = g.neighbors >= 0
    assert (~has_nb).any() == (not periodic_z)
    np.testing.assert_allclose(jv[has_nb] * 2.9, g.jump_vectors_A[has_nb], atol=1e-9)
    has = g.neighbors.reshape(-1) >= 0
    for c in np.unique(geo.jcls):
        assert len(set(has[geo.jcls == c])) == 1
    # the packed int64 key gives the classes (and class order) of a row-wise unique of the rows
    rows = np.concatenate([geo.jv.reshape(n * z, 3).astype(np.int64), has[:, None].astype(np.int64)], axis=1)
    cls, inv = np.unique(rows, axis=0, return_inverse=True)
    assert np.array_equal(geo.jcls, inv.reshape(-1))
    assert np.array_equal(geo.jtab, cls[:, :3].reshape(-1))


@pytest.mark.slow
def test_fast_paths_for_another_coordination_equal_general_loop():
    """A coordination without a literal entry point (z = 4: two of the sc lattice's three axes, a
    user-made graph; periodic, and with open ends along z) runs the single- and many-vacancy
    loops with z (and, many-vacancy, whether every site has z neighbours) at run time (their
    generic specialisation, chosen in ``Simulation._kernel``): every state array equal to the
    general loop's. (Slow: it compiles both loops once more.)"""
    import dataclasses

    from halide_ionics.kmc import _kernels as K

    model = RateModel(temperature_K=400, barrier_cl_eV=0.5, barrier_shift_br_eV=0.02, barrier_shift_cl_eV=-0.01,
                      vacancy_formation_cl_eV=1.4, field_V_per_A=0.01)
    rng = np.random.default_rng(5)
    for periodic_z, drop in ((True, 2), (False, 1)):  # square stack; x-z planes with open z ends
        g = build_lattice("sc", 5, 5.8, periodic_z)
        keep = np.flatnonzero(g.jump_vectors_A[0, :, drop] == 0.0)
        assert keep.size == 4
        sq = dataclasses.replace(g, name="square-stack", neighbors=np.ascontiguousarray(g.neighbors[:, keep]),
                                 jump_vectors_A=np.ascontiguousarray(g.jump_vectors_A[:, keep]))
        assert (sq.neighbors >= 0).all() == periodic_z
        psi = 0.02 * rng.standard_normal(sq.n_sites)
        for n_vac in (1, 6):
            occ = (rng.random(sq.n_sites) < 0.4).astype(np.int8)
            occ[rng.choice(sq.n_sites, n_vac, replace=False)] = VAC
            for clock, track in (("exponential", False), ("mean", True)):
                sims = fast_and_general(sq, occ, model, 7, psi, clock, track)
                assert sims[0].steps > 3500
                assert state_digest(sims[0]) == state_digest(sims[1]), (periodic_z, n_vac, clock, track)
    # the generic entries ran (z an int64 argument, not a literal; compiled or loaded from the cache)
    assert any(str(sig[-1]) == "int64" for sig in K._run_single.signatures)
    assert any([str(t) for t in sig[-2:]] == ["int64", "bool"] for sig in K._run_multi.signatures)


def test_more_jump_classes_than_a_geometry_row_holds_run_the_general_loop():
    """The many-vacancy loop keeps a site's jump classes in one byte of its geometry row; a graph
    with more than 128 classes must run the general loop (here: the class table replaced by 129
    zero vectors, which the fast loop would add to the displacements, the general loop never
    reads)."""
    sims = []
    for fast in (True, False):
        sim = small_multi()
        sim.geo = copy.copy(sim.geo)
        sim.geo.jtab = np.zeros(3 * 129, dtype=np.int8)
        sim._fast = fast
        sim.run(hops=400)
        sims.append(sim)
    assert np.abs(sims[0]._s["dR"]).sum() > 0
    assert state_digest(sims[0]) == state_digest(sims[1])
