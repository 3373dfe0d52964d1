"""KMC engine plumbing that physics depends on: exact detailed balance of every event,
reproducibility (same seed, chunking, checkpoint/restart, NUMBA_DISABLE_JIT), input errors."""
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from halide_ionics.errors import InputError
from halide_ionics.kmc import (
    DisplacementObserver,
    Electrode,
    ElectrodeObserver,
    ProfileObserver,
    RateModel,
    Simulation,
    TracerObserver,
    onsager_coefficients,
)
from halide_ionics.kmc import _kernels
from halide_ionics.structures import build_lattice
from halide_ionics.structures.species import BR, CL, VAC

REPO = Path(__file__).resolve().parents[2]


def scenario(seed=7, cells=(3, 3, 6), n_vac=12, periodic_z=False):
    """Open wire with clustered vacancies, two electrodes, site potentials, uniform field,
    composition-dependent formation energies and environment-dependent barriers."""
    g = build_lattice("perovskite-x", cells, 5.8, periodic_z)
    rng = np.random.default_rng(seed)
    occ = (rng.random(g.n_sites) < 0.4).astype(np.int8)
    occ[rng.choice(g.n_sites // 3, n_vac, replace=False)] = VAC  # crowd them at low z
    model = RateModel(temperature_K=600.0, attempt_frequency_Hz=1e12, barrier_br_eV=0.3, barrier_cl_eV=0.4,
                      barrier_shift_br_eV=0.02, barrier_shift_cl_eV=-0.03, vacancy_formation_br_eV=0.5,
                      vacancy_formation_cl_eV=0.62, vacancy_reservoir_eV=0.3, field_V_per_A=0.004)
    zmax = g.positions_A[:, 2].max()
    electrodes = [Electrode(g.region_mask(-1.0, 6.0), 0.3, 5e8, "left"),
                  Electrode(g.region_mask(zmax - 5.0, zmax + 1.0), -0.2, 2e8, "right", cl_fraction=0.35)]
    psi = 0.05 * rng.standard_normal(g.n_sites)
    return g, occ, model, psi, electrodes


def make_sim(seed=7, rng_seed=11, **kw):
    g, occ, model, psi, els = scenario(seed)
    return Simulation(g, occ, model, rng_seed, site_potentials_V=psi, electrodes=els, track_ions=True, **kw)


def fast_and_general(g, occ, model, seed, psi, clock, track):
    """The same run (hops, a time limit, hops) on a specialised loop and on the general loop."""
    sims = []
    for fast in (True, False):
        sim = Simulation(g, occ, model, seed, site_potentials_V=psi, clock=clock, track_ions=track)
        sim._fast = fast
        sim.run(hops=3000)
        sim.run(time_s=0.3 * sim.time_s)
        sim.run(hops=500)
        sims.append(sim)
    return sims


def state_digest(sim) -> str:
    h = hashlib.sha256()
    for k, v in sorted(sim.state_arrays().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


# ---- exact energy, written independently of the kernels ---------------------------------------
def total_energy(sim, occ):
    """H = Σ_vacancies (E_V(shell) − μ_V) − Σ_ions ψ_i   (eV)."""
    m = sim.rate_model
    nb = sim.graph.neighbors
    psi = sim.site_potentials_V - m.field_V_per_A * sim.graph.positions_A[:, 2]
    e = 0.0
    for v in np.flatnonzero(occ == VAC):
        shell = [occ[j] for j in nb[v] if j >= 0]
        nion = sum(o != VAC for o in shell)
        ncl = sum(o == CL for o in shell)
        frac = ncl / nion if nion else 0.5
        e += m.vacancy_formation_br_eV + (m.vacancy_formation_cl_eV - m.vacancy_formation_br_eV) * frac
        e -= m.vacancy_reservoir_eV
    ions = occ != VAC
    return e - psi[ions].sum()


def apply_event(occ, ev):
    new = occ.copy()
    if ev["kind"] == "hop":
        new[ev["to"]] = new[ev["from"]]
        new[ev["from"]] = VAC
    elif ev["kind"] == "create":
        new[ev["site"]] = VAC
    else:
        new[ev["site"]] = ev["species"]
    return new


def reverse_rate(sim_after, ev):
    """Rate of the reverse of ``ev`` in the state after it (0.0 if the reverse is impossible)."""
    for r in sim_after.events():
        if ev["kind"] == "hop" and r["kind"] == "hop" and r["from"] == ev["to"] and r["to"] == ev["from"]:
            return r["rate"]
        if ev["kind"] == "create" and r["kind"] == "annihilate" and r["site"] == ev["site"] and r["species"] == ev["species"]:
            return r["rate"]
        if ev["kind"] == "annihilate" and r["kind"] == "create" and r["site"] == ev["site"]:
            return r["rate"]
    return 0.0


def barrier_eV(model, species, n_cl):
    """Kinetically-resolved barrier E_a,s + δ_s·n (eV), written out independently of the tables."""
    ea = (model.barrier_br_eV, model.barrier_cl_eV)[species]
    de = (model.barrier_shift_br_eV, model.barrier_shift_cl_eV)[species]
    return ea + de * n_cl


def test_detailed_balance_of_every_event_pair():
    """For every sampled event and its reverse: the ratio w_f/w_r is fixed by the independently
    written Hamiltonian (and the electrode's ion reservoir kT ln p_s), and the product w_f·w_r by
    the kinetically-resolved barrier of the moving species: ν² e^{−2E_a(s,env)/kT} for a hop,
    p_s (k_e e^{−(E_a,el(s,x) − E_a,Br)/kT})² for an electrode event (rates.py docstring)."""
    g, occ0, model, psi, els = scenario(3)
    kt = model.kT_eV
    nu = model.attempt_frequency_Hz
    nb = g.neighbors
    el_of_site = np.full(g.n_sites, -1)
    for j, e in enumerate(els):
        el_of_site[e.mask] = j
    checked = {"hop": 0, "create": 0, "annihilate": 0}
    species_seen = {"create": set(), "annihilate": set()}
    irreversible = 0
    rng = np.random.default_rng(5)
    sim0 = Simulation(g, occ0, model, 1, site_potentials_V=psi, electrodes=els)
    sim0.run(hops=400)  # scramble into a generic state with neighbouring vacancies
    states = [sim0.occupancy]
    for _ in range(2):
        sim0.run(hops=300)
        states.append(sim0.occupancy)

    def n_cl(occ, site, exclude=-1):
        return sum(1 for j in nb[site] if j >= 0 and j != exclude and occ[j] == CL)

    for occ in states:
        sim = Simulation(g, occ, model, 1, site_potentials_V=psi, electrodes=els)
        evs = sim.events()
        pick = rng.choice(len(evs), min(len(evs), 60), replace=False)
        creations = [e for e in evs if e["kind"] != "hop"]
        for ev in [evs[i] for i in pick] + creations[:20]:
            after = apply_event(occ, ev)
            sim_after = Simulation(g, after, model, 1, site_potentials_V=psi, electrodes=els)
            w_f, w_r = ev["rate"], reverse_rate(sim_after, ev)
            de = total_energy(sim, after) - total_energy(sim, occ)
            sp = ev["species"]
            if ev["kind"] == "hop":
                expect = np.exp(-de / kt)
                i, j = ev["from"], ev["to"]
                ea = barrier_eV(model, sp, (n_cl(occ, i, j) + n_cl(occ, j, i)) / 2)
                product = nu ** 2 * np.exp(-2 * ea / kt)
            else:
                x = ev["site"]
                shell = [occ[j] for j in nb[x] if j >= 0 and occ[j] != VAC]
                el = els[el_of_site[x]]
                if el.cl_fraction is not None:  # reservoir of fixed composition
                    p = el.cl_fraction if sp == CL else 1.0 - el.cl_fraction
                else:  # in proportion to the ions next to x
                    p = (sum(o == sp for o in shell) / len(shell)) if shell else 0.5
                if p == 0.0:
                    # the electrode supplies no ion of this species (none next to x): its
                    # creation has no reverse (reservoir chemical potential kT ln 0 = −∞)
                    assert ev["kind"] == "create" and w_r == 0.0, ev
                    irreversible += 1
                    continue
                if ev["kind"] == "create":  # ion to the electrode: −e·ψ_el; reservoir μ_s = kT ln p_s
                    expect = np.exp(-(de - el.potential_V + kt * np.log(p)) / kt)
                else:
                    expect = np.exp(-(de + el.potential_V - kt * np.log(p)) / kt)
                k_s = el.rate_Hz * np.exp(-(barrier_eV(model, sp, n_cl(occ, x)) - model.barrier_br_eV) / kt)
                product = p * k_s ** 2
                species_seen[ev["kind"]].add((sp, el.name))
            assert w_f / w_r == pytest.approx(expect, rel=1e-9), ev
            assert w_f * w_r == pytest.approx(product, rel=1e-9), ev
            checked[ev["kind"]] += 1
    assert min(checked.values()) >= 5, checked
    # every checked pair pins both of its rates: creations of both species at both electrodes
    # (local-composition and fixed-composition reservoir) cover the annihilations there too
    assert species_seen["create"] == {(s, n) for s in (BR, CL) for n in ("left", "right")}, species_seen
    assert {sp for sp, _ in species_seen["annihilate"]} == {BR, CL}, species_seen


def test_incremental_rates_equal_full_rebuild():
    sim = make_sim()
    sim.run(hops=3000)
    assert sim.electrode_counts.sum() > 0 and sim.n_vacancies > 1
    before = sim.state_arrays()
    sim._refresh_all()
    after = sim.state_arrays()
    for k in ("vrates", "crate", "tree"):
        n = sim.n_vacancies if k == "vrates" else None
        assert np.array_equal(before[k][:n], after[k][:n]), k


def test_hand_inlined_hop_rates_match_helper():
    g = build_lattice("bcc", 4)
    occ = np.zeros(g.n_sites, np.int8)
    occ[::3] = CL
    occ[5] = VAC
    m = RateModel(temperature_K=500, barrier_shift_br_eV=0.05, barrier_shift_cl_eV=0.02, field_V_per_A=0.01)
    sim = Simulation(g, occ, m, 3, clock="mean")
    for _ in range(50):
        sim.run(hops=7)
        q = 0
        v = sim._s["vac_site"][q]
        ref = np.zeros_like(sim._s["vrates"])
        _kernels._vac_rates(q, v, sim.geo.nb, sim.geo.zval, sim._s["occ"], sim._s["ncl"], sim._s["nion"], sim.ba,
                            sim.bv, sim.ivb, sim.vfac, sim.el_idx, sim.el_p, sim.afac, ref)
        assert np.array_equal(ref[q], sim._s["vrates"][q])


def test_same_seed_same_numbers_and_chunking_invariance():
    a, b, c = make_sim(), make_sim(), make_sim(rng_seed=12)
    a.run(hops=2000)
    for _ in range(8):
        b.run(hops=250)
    c.run(hops=2000)
    assert state_digest(a) == state_digest(b)
    assert state_digest(a) != state_digest(c)


def test_time_limited_chunks_are_exact():
    a, b = make_sim(clock="exponential"), make_sim(clock="exponential")
    a.run(hops=1500)
    t_end = a.time_s
    b.run(time_s=t_end / 3)
    b.run(time_s=t_end / 3)
    b.run(hops=1500 - b.steps)
    assert b.time_s == a.time_s and state_digest(a) == state_digest(b)


def test_bitwise_restart_with_observers(tmp_path):
    def observers():
        return [DisplacementObserver(100), TracerObserver(300), ProfileObserver(200, n_slabs=3), ElectrodeObserver(150)]

    a = make_sim()
    a.run(hops=2400, observers=observers())
    b = make_sim()
    b.run(hops=1100, observers=observers(), checkpoint_path=tmp_path / "ck.npz", checkpoint_every=500)
    del b
    c = Simulation.load_checkpoint(tmp_path / "ck.npz")
    assert c.steps == 1100
    c.run(hops=1300)
    assert state_digest(a) == state_digest(c)
    for oa, oc in zip(a.observers, c.observers):
        ra, rc = oa.result(), oc.result()
        assert ra.keys() == rc.keys()
        for k in ra:
            assert np.array_equal(ra[k], rc[k], equal_nan=True), (type(oa).__name__, k)
    assert a.observers[0].result()["displacement_A"].shape == (25, 2, 3)


_NOJIT_SCRIPT = """
import json, sys
sys.path.insert(0, {repo!r})
from tests.kmc.test_engine import make_sim, state_digest
sim = make_sim()
sim.run(hops=250)
print(json.dumps({{"digest": state_digest(sim), "steps": sim.steps}}))
"""


def test_numba_disabled_gives_same_trajectory():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", _NOJIT_SCRIPT.format(repo=str(REPO))], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    sim = make_sim()
    sim.run(hops=250)
    assert res == {"digest": state_digest(sim), "steps": 250}


def test_set_site_potentials_rebuilds_rates():
    sim = make_sim()
    sim.run(hops=200)
    psi = np.linspace(0, 0.2, sim.graph.n_sites)
    sim.set_site_potentials(psi)
    fresh = Simulation(sim.graph, sim.occupancy, sim.rate_model, 1, site_potentials_V=psi,
                       electrodes=sim.electrodes)
    key = lambda e: (e["kind"], e.get("from", e.get("site")), e.get("to", -1), e["species"])  # noqa: E731
    r1 = sorted((key(e), e["rate"]) for e in sim.events())
    r2 = sorted((key(e), e["rate"]) for e in fresh.events())
    assert r1 == r2


def _numpy_potential_tables(sim):
    """The potential-dependent factors by the plain numpy formula (the reference the compiled
    rebuild must reproduce bitwise)."""
    m = sim.rate_model
    kt = m.kT_eV
    nb = sim.geo.nb
    psi = sim.site_potentials_V
    nbc = np.where(nb >= 0, nb, 0)
    dpsi = psi[:, None] - psi[nbc] + m.field_V_per_A * sim.geo.jv[:, :, 2] * (sim.graph.lattice_constant_A / 2)
    vfac = np.where(nb >= 0, np.exp(dpsi / (2 * kt)), 0.0)
    psi_abs = (sim.site_potentials_V - m.field_V_per_A * sim.graph.positions_A[:, 2])[sim.el_sites]
    pel = np.array([e.potential_V for e in sim.electrodes])[sim.el_of]
    ke = np.array([e.rate_Hz for e in sim.electrodes])[sim.el_of]
    x = (sim.e_ref - m.vacancy_reservoir_eV - (pel - psi_abs)) / (2 * kt)
    ks = m.electrode_species_table(nb.shape[1])
    return vfac, (ke * np.exp(-x))[:, None, None] * ks[None], (ke * np.exp(x))[:, None, None] * ks[None]


def test_potential_tables_bitwise_numpy_formula():
    """The compiled rebuild of the field factors (every Poisson refresh) gives bitwise the numpy
    formula's values, with a uniform field, open ends and electrodes, after repeated updates
    (random site potentials, and one per plane: the per-class evaluation)."""
    g, occ, model, psi, els = scenario(7)
    model = dataclasses.replace(model, field_V_per_A=3e-3)
    g_open = build_lattice(g.name, g.cells, g.lattice_constant_A, periodic_z=False)
    sim = Simulation(g_open, occ, model, 3, site_potentials_V=psi, electrodes=els)
    rng = np.random.default_rng(4)
    plane = np.unique(np.round(g_open.positions_A[:, 2], 6), return_inverse=True)[1].reshape(-1)
    for it in range(5):
        ref = _numpy_potential_tables(sim)
        for got, want in zip((sim.vfac, sim.cfac, sim.afac), ref):
            assert got.shape == want.shape and np.array_equal(got, want)
        assert (sim.vfac[sim.geo.nb < 0] == 0).all() and (sim.geo.nb < 0).any()
        sim.run(hops=50)
        if it % 2:  # random site potentials; one per plane (a 1D Poisson potential: by class)
            sim.set_site_potentials(rng.normal(0, 0.05, g_open.n_sites))
        else:
            sim.set_site_potentials(rng.normal(0, 0.05, plane.max() + 1)[plane])
    assert sim.geo._pcls is not None  # the per-plane path ran


def test_refresh_with_unchanged_electrode_potentials_is_a_full_refresh():
    """A Poisson refresh that keeps the potentials on the electrode sites (contacts held at the
    electrode potential) recomputes only the vacancies' rates: bitwise the state of a full
    recomputation, and the electrode factors are kept."""
    g, occ, model, psi, els = scenario(7)
    sim = Simulation(g, occ, model, 3, site_potentials_V=psi, electrodes=els)
    el = np.zeros(g.n_sites, bool)
    el[sim.el_sites] = True
    rng = np.random.default_rng(8)
    for _ in range(3):
        sim.run(hops=300)
        new = np.where(el, sim.site_potentials_V, rng.normal(0, 0.05, g.n_sites))
        cfac = sim.cfac.copy()
        sim.set_site_potentials(new)
        assert sim._el_unchanged and np.array_equal(sim.cfac, cfac)
        kept = {k: sim._s[k].copy() for k in ("tree", "vrates", "crate", "fscal")}
        sim._refresh_all()
        for k, v in kept.items():
            assert np.array_equal(sim._s[k], v), k
    sim.set_site_potentials(np.where(el, 0.01, sim.site_potentials_V))  # electrode sites moved: rebuilt
    assert not sim._el_unchanged and not np.array_equal(sim.cfac, cfac)


def test_snapshot_observer_writes_extxyz(tmp_path):
    from ase.io import read

    from halide_ionics.kmc import SnapshotObserver
    from halide_ionics.structures.junction import build_junction, halide_occupancy, junction_graph

    atoms = build_junction((2, 2, 4), vacancy_fraction=0.05, seed=1)
    g = junction_graph(atoms)
    occ = halide_occupancy(atoms)
    if not (occ == VAC).any():
        occ[0] = VAC
    sim = Simulation(g, occ, RateModel(), 2)
    ob = SnapshotObserver(50, atoms=atoms, directory=tmp_path)
    sim.run(hops=100, observers=[ob])
    files = ob.result()["files"]
    assert len(files) == 3
    back = read(files[-1])
    assert (back.numbers == 0).sum() == (occ == VAC).sum()


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: Simulation(build_lattice("sc", 3), np.zeros(5, np.int8), RateModel(), 0), "occupancy"),
        (lambda: Simulation(build_lattice("sc", 3), np.full(27, 7, np.int8), RateModel(), 0), "occupancy"),
        (lambda: Simulation(build_lattice("sc", 2), np.zeros(8, np.int8), RateModel(), 0), "cells"),
        (lambda: Simulation(build_lattice("sc", 3), np.zeros(27, np.int8), RateModel(), -1), "seed"),
        (lambda: Simulation(build_lattice("sc", 3), np.zeros(27, np.int8), RateModel(), 0, clock="x"), "clock"),
        (lambda: RateModel(temperature_K=-3), "temperature_K"),
        (lambda: RateModel(attempt_frequency_Hz=0), "attempt_frequency_Hz"),
        (lambda: RateModel(barrier_br_eV=float("nan")), "barrier_br_eV"),
        (lambda: RateModel.from_rate_ratio(0.0), "rate_ratio"),
        (lambda: Electrode(np.zeros(27, bool), 0.0, 1.0), "electrode.mask"),
        (lambda: Electrode(np.ones(27, bool), 0.0, -1.0), "electrode.rate_Hz"),
        (lambda: Simulation(build_lattice("sc", 3), np.zeros(27, np.int8), RateModel(), 0,
                            electrodes=[Electrode(np.ones(27, bool), 0, 1), Electrode(np.ones(27, bool), 0, 1)]),
         "electrodes"),
        (lambda: onsager_coefficients("hcp", 4, 0.5, 0.1, 4, 100, 1), "lattice"),
        (lambda: onsager_coefficients("sc", 4, 1.5, 0.1, 4, 100, 1), "x_cl"),
        (lambda: onsager_coefficients("sc", 4, 0.5, -0.1, 4, 100, 1), "rate_ratio"),
        (lambda: onsager_coefficients("sc", 4, 0.5, 0.1, -4, 100, 1), "replicas"),
        (lambda: onsager_coefficients("sc", 4, 0.5, 0.1, 4, 0, 1), "hops_per_replica"),
        (lambda: onsager_coefficients("sc", -4, 0.5, 0.1, 4, 100, 1), "cells"),
        (lambda: onsager_coefficients("sc", 4, 0.5, 0.1, 4, 100, -1), "seed"),
    ],
)
def test_invalid_input_names_the_field(call, field):
    with pytest.raises(InputError) as exc:
        call()
    assert exc.value.field == field


def test_onsager_result_is_deterministic_and_order_independent():
    from concurrent.futures import ThreadPoolExecutor

    r1 = onsager_coefficients("sc", 4, 0.3, 0.2, 4, 3000, 9)
    with ThreadPoolExecutor(2) as ex:
        r2 = onsager_coefficients("sc", 4, 0.3, 0.2, 4, 3000, 9, executor=ex)
    d1, d2 = r1.to_dict(), r2.to_dict()
    for k in ("l_brbr", "l_brcl", "l_clcl", "l_brbr_se", "f_br", "f_cl", "hops"):
        assert d1[k] == d2[k]
    assert r1.min_eigenvalue >= 0.0


def test_cli_onsager_json_and_errors(capsys):
    from halide_ionics.coupling.cli import main

    rc = main(["kmc", "onsager", "--lattice", "sc", "--cells", "4", "--x-cl", "0.5", "--rate-ratio", "0.1",
               "--replicas", "3", "--hops-per-replica", "2000", "--seed", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("l_brbr", "l_brcl", "l_clcl", "l_brbr_se", "l_brcl_se", "l_clcl_se", "f_br", "f_cl", "f_br_se",
              "f_cl_se", "hops", "wall_seconds", "manning"):
        assert k in out
    assert out["hops"] == 6000
    for bad in (["--lattice", "hcp"], ["--x-cl", "1.2"], ["--replicas", "-1"], ["--rate-ratio", "0"]):
        args = {"--lattice": "sc", "--cells": "4", "--x-cl": "0.5", "--rate-ratio": "0.1", "--replicas": "3",
                "--hops-per-replica": "100", "--seed": "1"}
        args[bad[0]] = bad[1]
        argv = ["kmc", "onsager", "--json"] + [x for kv in args.items() for x in kv]
        assert main(argv) == 2
        assert "error" in capsys.readouterr().err


# ---- single-vacancy fast path and the waiting-time generator ----------------------------------
@pytest.mark.parametrize("lattice, cells, periodic_z", [("perovskite-x", 4, True), ("perovskite-x", (3, 3, 5), False),
                                                       ("sc", 4, True), ("fcc", 3, True)])
def test_single_vacancy_fast_path_equals_general_loop(lattice, cells, periodic_z):
    """One vacancy, no electrodes: the specialised loop must reproduce the general loop bit for bit
    (site potentials, field, environment barriers, open ends, both clocks, tracking, time limits)."""
    g = build_lattice(lattice, cells, 5.8, periodic_z)
    rng = np.random.default_rng(3)
    occ = (rng.random(g.n_sites) < 0.4).astype(np.int8)
    occ[rng.integers(g.n_sites)] = VAC
    model = RateModel(temperature_K=400, barrier_cl_eV=0.5, barrier_shift_br_eV=0.02, barrier_shift_cl_eV=-0.01,
                      vacancy_formation_cl_eV=1.4, field_V_per_A=0.01)
    psi = 0.02 * rng.standard_normal(g.n_sites)
    for clock in ("exponential", "mean"):
        for track in (False, True):
            sims = fast_and_general(g, occ, model, 5, psi, clock, track)
            assert sims[0].steps > 3500
            assert state_digest(sims[0]) == state_digest(sims[1]), (clock, track)
            ref = Simulation(g, sims[0].occupancy, model, 5, site_potentials_V=psi)  # rates from scratch
            assert np.array_equal(ref._s["vrates"][0], sims[0]._s["vrates"][0])
            assert np.array_equal(ref._s["nion"], sims[0]._s["nion"])
            assert np.array_equal(ref._s["ncl"], sims[0]._s["ncl"])
            assert np.array_equal(ref._s["site_vac"], sims[0]._s["site_vac"])


def test_exponential_waiting_times():
    """The ziggurat exponential variates (kernel's generator): moments, tail and a KS test."""
    from scipy import stats

    s = np.array([11, 22, 33, 44], dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _kernels._exp_samples(s, 2_000_000)
    n = x.size
    assert abs(x.mean() - 1.0) < 4 / np.sqrt(n)
    assert abs(x.var() - 1.0) < 4 * np.sqrt(8 / n)
    for c in (0.1, 1.0, 4.0, _kernels._ZIG_R, 10.0):  # the tail beyond the base strip included
        p = np.exp(-c)
        assert abs((x > c).mean() - p) < 4 * np.sqrt(p * (1 - p) / n), c
    assert stats.kstest(x, "expon").pvalue > 1e-3
