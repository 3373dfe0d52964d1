"""A biased, electrode-contacted atomistic CsPbBr3–CsPbCl3 junction that users can watch.

:func:`run_junction` (and ``halide-ionics kmc junction``) runs the KMC wire of the multiscale
consistency check (:class:`~halide_ionics.coupling.consistency.JunctionWire`: perovskite-X
sublattice of ``nx × ny × nz`` cubic cells, periodic across and open along z, Br segment at low z
and Cl segment at high z, electrode contact regions at both ends at ±V/2, self-consistent 1D
mean-field Poisson refreshed every ``refresh_events`` events, vacancy creation/annihilation in the
contacts when ``sources`` is on) and records it:

* a multi-frame extended-XYZ trajectory of the full junction (Cs, Pb, Br, Cl; vacancies as
  ``X``), one frame at t = 0 and ``frames`` more at equal times up to ``time_s``; every frame
  carries ``time_s``, ``frame``, ``kmc_steps``, ``n_vacancies`` and ``bias_V`` in its info, and
  reads back frame by frame with ``ase.io.read(path, index=":")`` and in OVITO;
* a NetCDF file (``<trajectory stem>.layers.nc``) with the per-cell-layer (slab) Br, Cl and
  vacancy site fractions, the vacancies and the potential per halide plane, per frame;
* optionally an animation (``.gif`` with Pillow, ``.mp4`` with ffmpeg): per frame the side view
  of Fig. 1c and the composition/vacancy profile, drawn by
  :func:`halide_ionics.structures.snapshots.plot_junction`.

Physics choices are those of :class:`~halide_ionics.coupling.consistency.ConsistencyConfig`
(material CsPb(Br,Cl)3 at 298 K, x_V = 1e-2 and ε_r = 1000 so that λ_D ≈ 3 nm fits a nanoscale
wire, electrodes as fixed-composition reservoirs at the contact's initial composition with
k_e = w_Br). The initial and background vacancy profile x_V^eq(c) is the dilute random-alloy closed
form of the KMC (:func:`halide_ionics.kmc.electrode_reference`), so no coefficient table is
needed. All outputs are written only after the run succeeded, each atomically, with provenance.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from halide_ionics.errors import InputError, check_positive, check_positive_int

from .consistency import ConsistencyConfig, JunctionWire

log = logging.getLogger(__name__)

TRAJECTORY_SUFFIXES = (".extxyz", ".xyz")
MOVIE_SUFFIXES = (".gif", ".mp4")


def layers_path(trajectory) -> Path:
    """The per-layer NetCDF written beside a trajectory: ``<stem>.layers.nc``."""
    p = Path(trajectory)
    return p.with_name(p.stem + ".layers.nc")


def _config(cells, bias_V, contact_cells, seed, refresh_events) -> ConsistencyConfig:
    if isinstance(cells, (int, np.integer)):
        cells = (cells, cells, cells)
    try:
        nx, ny, nz = (int(c) for c in cells)
    except (TypeError, ValueError):
        raise InputError("cells", cells, "must be three integers NX NY NZ") from None
    if min(nx, ny) < 3:
        raise InputError("cells", (nx, ny, nz), "NX and NY must be at least 3 (periodic cross-section)")
    if nz < 8 or nz % 2:
        raise InputError("cells", (nx, ny, nz), "NZ must be even and at least 8 (two contacts and a gap)")
    if contact_cells is None:
        contact_cells = max(2, nz // 8)
    if not np.isfinite(bias_V):
        raise InputError("bias_V", bias_V, "must be finite")
    return ConsistencyConfig(cross_section_cells=nx, cross_section_cells_y=ny, length_cells=nz,
                             contact_cells=check_positive_int("contact_cells", contact_cells),
                             bias_V=float(bias_V), refresh_events=check_positive_int("refresh_events", refresh_events),
                             seed=seed)


def _x_eq_function(cfg: ConsistencyConfig):
    """x_V^eq(c) of the KMC rate model at the wire's vacancy level (dilute closed form)."""
    from halide_ionics.kmc import electrode_reference

    from .coefficients import kmc_rate_model

    rm = kmc_rate_model(cfg.material()).reservoir_for_vacancy_fraction(cfg.vacancy_fraction, "Br")

    def x_eq(c):
        c = np.asarray(c, dtype=float)
        u, inv = np.unique(c, return_inverse=True)
        vals = np.array([electrode_reference(float(x), 0.0, rm)["vacancy_fraction"] for x in u])
        return vals[inv].reshape(c.shape)

    return x_eq, rm


def _check_outputs(out, movie):
    p = Path(out)
    if p.suffix.lower() not in TRAJECTORY_SUFFIXES:
        raise InputError("out", str(out), "trajectory file name must end in .extxyz or .xyz")
    for q in (p, Path(movie) if movie else None):
        if q is not None and q.parent != Path("") and not q.parent.is_dir():
            raise InputError("out" if q == p else "movie", str(q), "directory does not exist")
    if movie is not None:
        m = Path(movie)
        if m.suffix.lower() not in MOVIE_SUFFIXES:
            raise InputError("movie", str(movie), "animation file name must end in .gif or .mp4")
        if m.suffix.lower() == ".mp4" and shutil.which("ffmpeg") is None:
            raise InputError("movie", str(movie), "writing .mp4 needs ffmpeg on PATH; use .gif")
        if m.resolve() == p.resolve():
            raise InputError("movie", str(movie), "must differ from the trajectory file")


def run_junction(cells=(4, 4, 24), bias_V: float = 0.25, *, sources: bool = True, time_s: float = 2.0,
                 frames: int = 10, out="junction.extxyz", movie=None, seed: int = 0, contact_cells: int | None = None,
                 refresh_events: int = 1000, movie_dpi: int = 80, progress: bool = False) -> dict:
    """Run a biased KMC junction and write its trajectory, layer profiles and (optionally) a movie.

    Parameters
    ----------
    cells : (NX, NY, NZ)
        Cubic cells; NX, NY ≥ 3 (periodic cross-section), NZ even ≥ 8 (wire axis, open ends).
    bias_V : float
        Voltage between the contacts (V); + puts the Br-side (low-z) contact at +V/2.
    sources : bool
        Electrode vacancy creation/annihilation inside the contacts (off: blocking contacts).
    time_s : float
        Simulated time (s). frames : int
        Frames after the one at t = 0, at equal time steps (K + 1 frames in all).
    out : path
        Trajectory, ``.extxyz`` or ``.xyz``; the layer NetCDF goes to ``<stem>.layers.nc``.
    movie : path, optional
        ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg).
    seed : int
        Non-negative seed of the replica's stream.
    contact_cells : int, optional
        Cells per contact region (default max(2, NZ // 8)).
    refresh_events : int
        KMC events between Poisson refreshes.

    Returns
    -------
    dict
        Paths written, the frame times, vacancy counts, electrode counts, steps and timings.
    """
    import ase.io
    import xarray as xr

    from halide_ionics import __version__
    from halide_ionics.io import atomic_path, provenance_attrs
    from halide_ionics.structures import build_junction, set_halide_occupancy
    from halide_ionics.structures.junction import junction_graph

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("seed", seed, "must be a non-negative integer")
    cfg = _config(cells, bias_V, contact_cells, int(seed), refresh_events)
    time_s = check_positive("time_s", time_s)
    frames = check_positive_int("frames", frames)
    _check_outputs(out, movie)
    movie_dpi = check_positive_int("movie_dpi", movie_dpi)

    t_wall = time.perf_counter()
    x_eq, rm = _x_eq_function(cfg)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    wire = JunctionWire(cfg, x_eq, rm.hop_rate_Hz(0), sources=bool(sources), bias_V=cfg.bias_V, rng=rng)
    sim = wire.sim
    a = cfg.lattice_constant_A
    atoms = build_junction(cfg.cells, lattice_constant_A=a, interface_z_fraction=0.5,
                           x_br_ends=(1.0 - cfg.cl_fraction_br_segment, 1.0 - cfg.cl_fraction_cl_segment),
                           vacancy_fraction=0.0, seed=int(seed), periodic_z=False)
    if junction_graph(atoms).n_sites != wire.graph.n_sites:  # same site order by construction
        raise RuntimeError("junction atoms and KMC wire disagree")
    times = np.linspace(0.0, time_s, frames + 1)
    traj, fr, nvp, psi, steps, t_rec = [], [], [], [], [], []

    def record():
        occ = sim.occupancy
        f = atoms.copy()
        set_halide_occupancy(f, occ)
        f.info.update(frame=len(traj), time_s=float(sim.time_s), kmc_steps=int(sim.steps),
                      n_vacancies=int(sim.n_vacancies), bias_V=cfg.bias_V, sources=bool(sources))
        traj.append(f)
        fr.append(wire.slab_fractions(occ))
        nvp.append(np.bincount(wire.plane, weights=(occ == 2), minlength=wire.n_planes))
        psi.append(wire.psi.copy())
        steps.append(int(sim.steps))
        t_rec.append(float(sim.time_s))

    record()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=frames, unit="frame", leave=False)
    try:
        for t_next in times[1:]:
            wire.advance(float(t_next), cfg.refresh_events)
            record()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    t_run = time.perf_counter() - t_wall

    fr = np.stack(fr)
    config = dict(cells=list(cfg.cells), bias_V=cfg.bias_V, sources=bool(sources), time_s=time_s, frames=frames,
                  contact_cells=cfg.contact_cells, refresh_events=cfg.refresh_events, seed=int(seed),
                  consistency_config=cfg.to_dict())
    z_slab_nm = (np.arange(cfg.length_cells) + 0.5) * a / 10.0
    ds = xr.Dataset(
        {"x_br": (("time", "slab"), fr[:, 0], {"units": "1", "long_name": "Br site fraction per cell layer"}),
         "x_cl": (("time", "slab"), fr[:, 1], {"units": "1", "long_name": "Cl site fraction per cell layer"}),
         "x_vac": (("time", "slab"), fr[:, 2], {"units": "1", "long_name": "vacant site fraction per cell layer"}),
         "vacancies_plane": (("time", "plane"), np.stack(nvp), {"units": "1", "long_name": "vacancies per halide plane"}),
         "psi_plane": (("time", "plane"), np.stack(psi), {"units": "V", "long_name": "mean-field potential per plane"}),
         "kmc_steps": (("time",), np.array(steps), {"units": "1"})},
        coords={"time": ("time", np.array(t_rec), {"units": "s"}),
                "z_slab": ("slab", z_slab_nm, {"units": "nm", "long_name": "cell-layer centre along the wire"}),
                "z_plane": ("plane", wire.poisson.z_A / 10.0, {"units": "nm", "long_name": "halide plane (shifted a/4)"})},
        attrs=provenance_attrs(config=config, seed=int(seed), package_version=__version__))
    out_p, nc_p = Path(out), layers_path(out)
    written = {"trajectory": str(out_p), "layers": str(nc_p)}
    with contextlib.ExitStack() as stack:  # every file renamed into place only if all were written
        tmp = stack.enter_context(atomic_path(out_p))
        ase.io.write(tmp, traj, format="extxyz")
        tmp = stack.enter_context(atomic_path(nc_p))
        ds.to_netcdf(tmp, engine="h5netcdf")
        if movie is not None:
            tmp = stack.enter_context(atomic_path(movie))
            _write_movie(traj, tmp, Path(movie).suffix.lower(), cfg, movie_dpi)
            written["movie"] = str(movie)
    res = {"outputs": written, "frames": len(traj), "times_s": t_rec, "kmc_steps": steps,
           "n_vacancies": [int(f.info["n_vacancies"]) for f in traj],
           "electrode_counts": sim.electrode_counts.tolist() if wire.electrodes else None,
           "refreshes": wire.refreshes, "cells": list(cfg.cells), "bias_V": cfg.bias_V, "sources": bool(sources),
           "debye_length_nm": cfg.debye_length_nm(), "kmc_wall_seconds": t_run,
           "wall_seconds": time.perf_counter() - t_wall}
    log.info("junction: %d frames to %s in %.1f s", len(traj), out_p, res["wall_seconds"])
    return res


def _frame_rgb(atoms, title, dpi):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from halide_ionics.structures.snapshots import plot_junction

    fig = plot_junction(atoms, title=title)
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _write_movie(traj, path: Path, kind: str, cfg: ConsistencyConfig, dpi: int) -> None:
    imgs = []
    for f in traj:
        title = (f"t = {f.info['time_s']:.3g} s   V = {cfg.bias_V:+.3g} V   "
                 f"{f.info['n_vacancies']} vacancies   sources {'on' if f.info['sources'] else 'off'}")
        imgs.append(_frame_rgb(f, title, dpi))
    h, w = imgs[0].shape[:2]
    if kind == ".gif":
        from PIL import Image

        pil = [Image.fromarray(im) for im in imgs]
        with open(path, "wb") as fh:
            pil[0].save(fh, format="GIF", save_all=True, append_images=pil[1:], duration=400, loop=0)
    else:
        import subprocess

        cmd = [shutil.which("ffmpeg"), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-r", "4", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
               "-pix_fmt", "yuv420p", "-f", "mp4", str(path)]
        subprocess.run(cmd, input=b"".join(im.tobytes() for im in imgs), check=True)


# ---- command line (``halide-ionics kmc junction``; cli_kmc only registers these) --------------
def add_cli_arguments(sub) -> None:
    """Register ``junction`` on the ``kmc`` subparsers."""
    import argparse

    j = sub.add_parser("junction", help="run a biased, electrode-contacted junction and write a trajectory/movie",
                       description=__doc__.split("\n\n")[0])
    j.add_argument("--cells", type=int, nargs=3, metavar=("NX", "NY", "NZ"), default=(4, 4, 24),
                   help="cubic cells across (>= 3, periodic) and along the wire (even, >= 8); default 4 4 24")
    j.add_argument("--bias", type=float, default=0.25, help="voltage between the contacts in V, + = Br side positive")
    j.add_argument("--sources", action=argparse.BooleanOptionalAction, default=True,
                   help="vacancy creation/annihilation at the contacts (default on)")
    j.add_argument("--time", type=float, default=2.0, help="simulated time in s (default 2)")
    j.add_argument("--frames", type=int, default=10, help="frames after t = 0 (default 10)")
    j.add_argument("--out", required=True, help="trajectory .extxyz (layers go to <stem>.layers.nc)")
    j.add_argument("--movie", default=None, help="animation .gif (or .mp4 with ffmpeg)")
    j.add_argument("--seed", type=int, default=0, help="non-negative integer seed (default 0)")
    j.add_argument("--refresh-events", type=int, default=1000, help="KMC events between Poisson refreshes")
    j.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def run_cli(args) -> int:
    res = run_junction(tuple(args.cells), args.bias, sources=args.sources, time_s=args.time, frames=args.frames,
                       out=args.out, movie=args.movie, seed=args.seed, refresh_events=args.refresh_events)
    if args.json:
        from .cli import print_json

        print_json(res)
    else:
        print(f"{res['frames']} frames, t = 0..{res['times_s'][-1]:.3g} s, vacancies {res['n_vacancies'][0]} -> "
              f"{res['n_vacancies'][-1]}, {res['kmc_steps'][-1]} KMC events in {res['wall_seconds']:.1f} s")
        for k, v in res["outputs"].items():
            print(f"{k}: {v}")
    return 0
