"""Observers called between compiled chunks of a :class:`~halide_ionics.kmc.Simulation` run.

Each observer has an ``interval`` (KMC steps): :meth:`Simulation.run` calls ``observe(sim)``
at step 0 (first run) and whenever the step count reaches a multiple of the interval. Their
records are part of checkpoints (``get_state``/``set_state``), so a resumed run reproduces them
exactly. ``result()`` returns the records as numpy arrays (lengths in Å, times in s).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from halide_ionics.errors import InputError, check_positive_int
from halide_ionics.structures.species import BR, CL, VAC

log = logging.getLogger(__name__)


class Observer:
    """Base class: keeps ``steps`` and ``time_s`` of every observation."""

    needs_atoms = False

    def __init__(self, interval: int):
        self.interval = check_positive_int("interval", interval)
        self.last_step = -1
        self._rec: dict[str, list] = {"steps": [], "time_s": []}

    def bind(self, sim) -> None:
        """Called when attached to a simulation (check compatibility here)."""

    def observe(self, sim) -> None:
        self._rec["steps"].append(sim.steps)
        self._rec["time_s"].append(sim.time_s)
        self._record(sim)
        self.last_step = sim.steps

    def _record(self, sim) -> None:
        raise NotImplementedError

    def config(self) -> dict:
        return {"interval": self.interval}

    def result(self) -> dict:
        return {k: np.asarray(v) for k, v in self._rec.items()}

    def get_state(self) -> dict:
        out = {k: np.asarray(v) for k, v in self._rec.items()}
        out["last_step"] = np.int64(self.last_step)
        return out

    def set_state(self, state: dict) -> None:
        self.last_step = int(state["last_step"])
        for k in self._rec:
            a = np.asarray(state[k])
            self._rec[k] = [x for x in a] if a.ndim > 1 else a.tolist()


class DisplacementObserver(Observer):
    """Summed unwrapped displacement of all Br and all Cl ions (Å), shape (n_obs, 2, 3)."""

    def __init__(self, interval: int):
        super().__init__(interval)
        self._rec["displacement_A"] = []

    def _record(self, sim):
        self._rec["displacement_A"].append(sim.species_displacement_A)


class TracerObserver(Observer):
    """Per-species tracer data: correlation factors ``f_window``/``f_msd`` and the mean squared
    displacement per ion (Å²); per-ion displacements and jump counts at the last observation."""

    def __init__(self, interval: int):
        super().__init__(interval)
        for k in ("f_window", "f_msd", "msd_A2"):
            self._rec[k] = []

    def bind(self, sim):
        if not sim.track_ions:
            raise InputError("track_ions", False, "TracerObserver needs Simulation(track_ions=True)")

    def _record(self, sim):
        f = sim.tracer_correlation()
        self._rec["f_window"].append(f["f_window"])
        self._rec["f_msd"].append(f["f_msd"])
        R = sim.ion_displacement_A
        sp = sim.ion_species
        r2 = (R * R).sum(axis=1)
        with np.errstate(invalid="ignore"):
            self._rec["msd_A2"].append(np.array([r2[sp == c].mean() if (sp == c).any() else np.nan for c in (BR, CL)]))
        self._last = (R, sim.ion_jumps, sp)

    def result(self):
        out = super().result()
        if hasattr(self, "_last"):
            out["ion_displacement_A"], out["ion_jumps"], out["ion_species"] = self._last
        return out


class ProfileObserver(Observer):
    """Composition and vacancy profiles along z: site fractions of Br, Cl and vacancies per slab
    (shape (n_obs, 3, n_slabs)) and the accumulated vacancy residence time per slab (s·sites)."""

    def __init__(self, interval: int, n_slabs: int | None = None):
        super().__init__(interval)
        self.n_slabs = None if n_slabs is None else check_positive_int("n_slabs", n_slabs)
        self._rec["fractions"] = []
        self._rec["vacancy_time_s"] = []

    def bind(self, sim):
        self._slab = sim.graph.slab_index(self.n_slabs)
        self._nslab = int(self._slab.max()) + 1
        self._sites = np.bincount(self._slab, minlength=self._nslab).astype(float)

    def config(self):
        return {"interval": self.interval, "n_slabs": self.n_slabs}

    def _record(self, sim):
        occ = sim.occupancy
        fr = np.stack([np.bincount(self._slab, weights=(occ == c), minlength=self._nslab) / self._sites
                       for c in (BR, CL, VAC)])
        self._rec["fractions"].append(fr)
        self._rec["vacancy_time_s"].append(np.bincount(self._slab, weights=sim.vacancy_residence_s(), minlength=self._nslab))

    def result(self):
        out = super().result()
        out["sites_per_slab"] = self._sites
        return out


class ElectrodeObserver(Observer):
    """Cumulative creation/annihilation counts ``[obs, electrode, kind, species]`` (kind 0
    creation, 1 annihilation; species 0 Br, 1 Cl) with the simulated time."""

    def __init__(self, interval: int):
        super().__init__(interval)
        self._rec["counts"] = []

    def _record(self, sim):
        self._rec["counts"].append(sim.electrode_counts)


class SnapshotObserver(Observer):
    """Writes the current occupancy into ``atoms`` (a junction from
    ``halide_ionics.structures.build_junction`` on the same graph) and saves an extxyz frame
    ``{directory}/{prefix}{steps:012d}.extxyz`` per observation."""

    needs_atoms = True

    def __init__(self, interval: int, atoms=None, directory=".", prefix: str = "kmc_"):
        super().__init__(interval)
        if atoms is None:
            raise InputError("atoms", None, "SnapshotObserver needs the junction Atoms")
        self.atoms = atoms.copy()
        self.directory = str(directory)
        self.prefix = str(prefix)
        self._rec["files"] = []

    def config(self):
        return {"interval": self.interval, "directory": self.directory, "prefix": self.prefix}

    def bind(self, sim):
        from halide_ionics.structures.junction import halide_atom_indices

        if halide_atom_indices(self.atoms).size != sim.graph.n_sites:
            raise InputError("atoms", len(self.atoms), "has a different number of halide sites than the graph")

    def _record(self, sim):
        from halide_ionics.structures.junction import set_halide_occupancy
        from halide_ionics.structures.snapshots import write_extxyz

        set_halide_occupancy(self.atoms, sim.occupancy)
        self.atoms.info["kmc_steps"] = sim.steps
        self.atoms.info["kmc_time_s"] = sim.time_s
        path = Path(self.directory) / f"{self.prefix}{sim.steps:012d}.extxyz"
        write_extxyz(self.atoms, path)
        self._rec["files"].append(str(path))


OBSERVERS = {c.__name__: c for c in (DisplacementObserver, TracerObserver, ProfileObserver,
                                     ElectrodeObserver, SnapshotObserver)}
