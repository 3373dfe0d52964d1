"""Junction snapshots: extxyz files for ASE/OVITO and PNG pictures like the paper's Fig. 1c.

Both writers go through :func:`halide_ionics.io.atomic_path`: the file appears complete or not
at all.

extxyz
    Written with ASE's extxyz writer; keeps positions, the species (vacancies as ``X``), the
    per-atom arrays ``sublattice`` and ``site_index`` (as integer columns) and the junction
    parameters of ``atoms.info`` on the comment line. Reads back with ``ase.io.read`` and in
    OVITO (which shows ``X`` as its own particle type).

PNG
    A matplotlib (Agg, no pyplot state) picture with three panels: a side view of the wire
    (wire axis horizontal, rotated about the axis so that inner columns show, atoms drawn
    back to front and shaded by depth), the slab-averaged Br fraction and vacancy fraction
    along the wire, and an end-on cross-section of one cell layer. Colours: Cs red, Pb grey,
    Br green, Cl blue; vacancies are black rings drawn on top of all atoms whatever their
    depth, so vacancies inside the wire stay visible. Lengths are in nm.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from ase import Atoms

from halide_ionics.errors import InputError
from halide_ionics.io import atomic_path

from .junction import junction_graph, slab_profile

log = logging.getLogger(__name__)

#: Drawing style per atomic number: (legend label, colour, radius in Å). Radii are about 0.55×
#: the Shannon ionic radii so that the structure stays readable.
SPECIES_STYLE: dict[int, tuple[str, str, float]] = {
    55: ("Cs", "#d62728", 0.95),
    82: ("Pb", "#8c8c8c", 0.70),
    35: ("Br", "#2ca02c", 1.05),
    17: ("Cl", "#1f77b4", 0.95),
    0: ("vacancy", "#000000", 1.05),
}

EXTXYZ_SUFFIXES = (".extxyz", ".xyz")


def write_extxyz(atoms: Atoms, path: str | os.PathLike) -> Path:
    """Write a junction (or any Atoms) to an extended-XYZ file, atomically.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure; ``atoms.arrays`` and ``atoms.info`` entries are kept.
    path : path-like
        Destination, ending in ``.extxyz`` or ``.xyz``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    from ase.io import write

    dest = Path(path)
    if dest.suffix.lower() not in EXTXYZ_SUFFIXES:
        raise InputError("out", str(path), f"extxyz file name must end in one of {list(EXTXYZ_SUFFIXES)}")
    with atomic_path(dest) as tmp:
        write(tmp, atoms, format="extxyz")
    log.info("wrote %s (%d atoms)", dest, len(atoms))
    return dest


def _rotation_about(axis: int, angle_deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _draw_atoms(ax, xy_nm: np.ndarray, depth: np.ndarray, numbers: np.ndarray, depth_shading: float = 0.45):
    """Draw circles back to front (larger depth = nearer the viewer); vacancies on top."""
    from matplotlib.collections import EllipseCollection
    from matplotlib.colors import to_rgb

    occupied = numbers != 0
    order = np.flatnonzero(occupied)[np.argsort(depth[occupied], kind="stable")]
    span = np.ptp(depth) if depth.size else 0.0
    near = (depth[order] - depth.min()) / span if span > 0 else np.ones(order.size)
    shade = 1.0 - depth_shading * (1.0 - near)
    base = np.array([to_rgb(SPECIES_STYLE[int(z)][1]) for z in numbers[order]]).reshape(-1, 3)
    colors = base * shade[:, None]
    diam = np.array([2 * SPECIES_STYLE[int(z)][2] / 10.0 for z in numbers[order]])
    ax.add_collection(
        EllipseCollection(diam, diam, np.zeros(order.size), units="xy", offsets=xy_nm[order],
                          offset_transform=ax.transData, facecolors=colors,
                          edgecolors=(0, 0, 0, 0.35), linewidths=0.2)
    )
    vac = np.flatnonzero(~occupied)
    if vac.size:
        d = 2 * SPECIES_STYLE[0][2] / 10.0
        ax.add_collection(
            EllipseCollection(np.full(vac.size, d), np.full(vac.size, d), np.zeros(vac.size), units="xy",
                              offsets=xy_nm[vac], offset_transform=ax.transData, facecolors="white",
                              edgecolors="black", linewidths=1.6, zorder=3)
        )
    ax.set_aspect("equal")


def _project(positions_A: np.ndarray, rotation: np.ndarray, horizontal: int, vertical: int, depth: int):
    p = positions_A @ rotation.T
    return np.stack([p[:, horizontal], p[:, vertical]], axis=1) / 10.0, p[:, depth]


def plot_junction(
    atoms: Atoms,
    view_angle_deg: float = 25.0,
    cross_section_z_fraction: float = 0.75,
    title: str | None = None,
):
    """A matplotlib Figure of a junction: side view, composition profile, cross-section.

    Parameters
    ----------
    atoms : ase.Atoms
        A junction from :func:`~halide_ionics.structures.junction.build_junction`.
    view_angle_deg : float
        Rotation of the side view about the wire (z) axis, in degrees (0 looks along y and
        shows only the front face).
    cross_section_z_fraction : float
        Fractional position along the wire of the cell layer shown end-on.
    title : str, optional
        Figure title; default summarises cells and lattice constant.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot; save it with ``fig.savefig``.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if not (0.0 <= cross_section_z_fraction <= 1.0):
        raise InputError("cross_section_z_fraction", cross_section_z_fraction, "must lie in [0, 1]")
    graph = junction_graph(atoms)  # raises InputError for atoms that are not a junction
    nx, ny, nz = graph.cells
    a = graph.lattice_constant_A
    pos = atoms.positions.copy()
    numbers = atoms.numbers
    # centre the cross-section on the wire axis
    pos[:, 0] -= 0.5 * (nx - 0.5) * a
    pos[:, 1] -= 0.5 * (ny - 0.5) * a

    # side view: horizontal = z, vertical = rotated x, depth = rotated -y (viewer at -y)
    rot = _rotation_about(2, view_angle_deg)
    side_xy, side_depth = _project(pos, rot, 2, 0, 1)
    side_depth = -side_depth
    length_nm = nz * a / 10.0
    pad = 0.15
    y_lo, y_hi = side_xy[:, 1].min() - pad, side_xy[:, 1].max() + pad
    x_lo, x_hi = -pad, length_nm + pad

    # figure geometry in inches: side view keeps its true aspect
    width_in, left_in, right_in = 11.0, 0.8, 0.3
    ax_w = width_in - left_in - right_in
    side_h = float(np.clip(ax_w * (y_hi - y_lo) / (x_hi - x_lo), 0.6, 5.0))
    bottom_h, gap, top_pad, bottom_pad = 2.4, 0.75, 0.7, 0.55
    height_in = bottom_pad + bottom_h + gap + side_h + top_pad
    fig = Figure(figsize=(width_in, height_in), dpi=150)

    def rect(left, bottom, w, h):
        return [left / width_in, bottom / height_in, w / width_in, h / height_in]

    ax_side = fig.add_axes(rect(left_in, bottom_pad + bottom_h + gap, ax_w, side_h))
    _draw_atoms(ax_side, side_xy, side_depth, numbers)
    ax_side.set_xlim(x_lo, x_hi)
    ax_side.set_ylim(y_lo, y_hi)
    ax_side.set_adjustable("box")
    ax_side.set_xlabel("z along the wire (nm)")
    ax_side.set_ylabel("transverse (nm)")
    ax_side.set_title(
        title or f"{nx}×{ny}×{nz} cells, a = {a:.3f} Å — side view rotated {view_angle_deg:g}° about the wire axis",
        fontsize=10,
    )
    handles = [
        Line2D([], [], ls="", marker="o", ms=8, mfc=SPECIES_STYLE[z][1], mec="k", mew=0.3, label=SPECIES_STYLE[z][0])
        for z in (55, 82, 35, 17)
    ]
    handles.append(Line2D([], [], ls="", marker="o", ms=8, mfc="white", mec="black", mew=1.6,
                          label="vacancy (all depths)"))
    ax_side.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.07), ncol=5, frameon=False,
                   fontsize=9, handletextpad=0.3, columnspacing=1.2)

    # composition profile
    cs_w, cs_gap = 2.4, 1.3
    prof_w = ax_w - cs_w - cs_gap
    ax_prof = fig.add_axes(rect(left_in, bottom_pad, prof_w, bottom_h))
    prof = slab_profile(atoms)
    edges_nm = np.linspace(0.0, length_nm, prof.z_center_A.size + 1)
    ax_prof.stairs(prof.x_br, edges_nm, color=SPECIES_STYLE[35][1], lw=1.5, baseline=None,
                    label="x_Br (per cell layer)")
    if atoms.info.get("profile") == "step":
        zi = float(atoms.info["interface_z_fraction"]) * length_nm
        ends = np.asarray(atoms.info["x_br_ends"], dtype=float)
        ax_prof.plot([0, zi, zi, length_nm], [ends[0], ends[0], ends[1], ends[1]], "k--", lw=1,
                     label="requested x_Br")
    ax_prof.set_xlim(x_lo, x_hi)
    ax_prof.set_ylim(-0.05, 1.05)
    ax_prof.set_xlabel("z along the wire (nm)")
    ax_prof.set_ylabel("Br fraction x_Br")
    ax_vac = ax_prof.twinx()
    ax_vac.stairs(100 * prof.vacancy_fraction, edges_nm, color="black", lw=0.8, alpha=0.7, baseline=None,
                  label="vacant sites (%)")
    ax_vac.set_ylabel("vacant halide sites (%)")
    ax_vac.set_ylim(0, max(1.0, 1.15 * 100 * float(np.nanmax(prof.vacancy_fraction))))
    lines = ax_prof.get_legend_handles_labels()
    vlines = ax_vac.get_legend_handles_labels()
    ax_prof.legend(lines[0] + vlines[0], lines[1] + vlines[1], loc="center left", fontsize=8, framealpha=0.8)

    # end-on cross-section of one cell layer, tilted a little so the layer behind shows
    iz = min(int(cross_section_z_fraction * nz), nz - 1)
    z0, z1 = iz * a - 1e-6, (iz + 1) * a - 1e-6
    in_layer = (atoms.positions[:, 2] >= z0) & (atoms.positions[:, 2] < z1)
    tilt = _rotation_about(0, 18.0) @ _rotation_about(1, -12.0)
    layer = pos[in_layer] - np.array([0.0, 0.0, (iz + 0.25) * a])  # centre the layer on z = 0
    cs_xy, cs_depth = _project(layer, tilt, 0, 1, 2)
    ax_cs = fig.add_axes(rect(left_in + prof_w + cs_gap, bottom_pad, cs_w, bottom_h))
    _draw_atoms(ax_cs, cs_xy, cs_depth, numbers[in_layer])
    ax_cs.set_xlim(cs_xy[:, 0].min() - 0.2, cs_xy[:, 0].max() + 0.2)
    ax_cs.set_ylim(cs_xy[:, 1].min() - 0.2, cs_xy[:, 1].max() + 0.2)
    ax_cs.set_adjustable("box")
    ax_cs.set_xlabel("x (nm)")
    ax_cs.set_ylabel("y (nm)")
    ax_cs.set_title(f"cross-section, cell layer at z = {iz * a / 10:.1f} nm", fontsize=9)
    return fig


def write_junction_png(
    atoms: Atoms,
    path: str | os.PathLike,
    view_angle_deg: float = 25.0,
    cross_section_z_fraction: float = 0.75,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Render :func:`plot_junction` to a PNG file, atomically.

    Parameters
    ----------
    atoms : ase.Atoms
        A junction from :func:`~halide_ionics.structures.junction.build_junction`.
    path : path-like
        Destination ending in ``.png``.
    view_angle_deg, cross_section_z_fraction, title
        See :func:`plot_junction`.
    dpi : int
        Resolution in dots per inch.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    dest = Path(path)
    if dest.suffix.lower() != ".png":
        raise InputError("png", str(path), "picture file name must end in .png")
    fig = plot_junction(atoms, view_angle_deg=view_angle_deg, cross_section_z_fraction=cross_section_z_fraction,
                        title=title)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    log.info("wrote %s", dest)
    return dest
