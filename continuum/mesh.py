"""Nonuniform vertex-centred 1D mesh of the nanowire device.

The wire ``[0, L]`` is cut at its key points -- the four electrode edges and the heterojunction
-- into segments; every key point is a node.  Inside a segment nodes follow a tanh map that
clusters them toward the refined ends (both ends for segments between key points; only the
electrode edge for the two free wire ends).  ``grading_ratio`` is the ratio of the largest to
the smallest cell of a segment (``cosh^2(beta)`` of the map).  The map is smooth, so the
vertex-centred scheme keeps its second-order accuracy.

Named regions: ``end_low``, ``electrode_low``, ``gap``, ``electrode_high``, ``end_high``
(low = small z = the Br segment's side).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from halide_ionics.errors import InputError

#: Largest mesh this builder accepts (the device config caps it lower, see continuum.config).
MAX_MESH_NODES = 10_000_000

REGIONS = ("end_low", "electrode_low", "gap", "electrode_high", "end_high")


@dataclass(frozen=True)
class Mesh:
    """Nodes ``z_um`` with face lengths, box lengths and region bookkeeping (all in um)."""

    z_um: np.ndarray
    regions: dict  # name -> (z_start_um, z_end_um)
    junction_um: float

    @property
    def n(self) -> int:
        return self.z_um.size

    @property
    def h_um(self) -> np.ndarray:
        """Face (cell) lengths, n-1."""
        return np.diff(self.z_um)

    @property
    def box_um(self) -> np.ndarray:
        """Control-volume (box) lengths, n; boxes end at the free wire ends."""
        h = self.h_um
        v = np.zeros(self.n)
        v[:-1] += 0.5 * h
        v[1:] += 0.5 * h
        return v

    def overlap_um(self, name: str) -> np.ndarray:
        """Length of each node's box inside region ``name`` (exact: region edges are nodes)."""
        a, b = self.regions[name]
        z = self.z_um
        lo = np.empty(self.n)
        hi = np.empty(self.n)
        lo[0] = z[0]
        hi[-1] = z[-1]
        mid = 0.5 * (z[1:] + z[:-1])
        lo[1:] = mid
        hi[:-1] = mid
        return np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)

    def mask(self, name: str) -> np.ndarray:
        """Nodes inside region ``name`` (edges included)."""
        a, b = self.regions[name]
        tol = 1e-12 * max(1.0, abs(self.z_um[-1]))
        return (self.z_um >= a - tol) & (self.z_um <= b + tol)

    def index_of(self, z_um: float) -> int:
        return int(np.argmin(np.abs(self.z_um - z_um)))


def _segment(a: float, b: float, ncell: int, beta: float, refine_a: bool, refine_b: bool) -> np.ndarray:
    s = np.linspace(0.0, 1.0, ncell + 1)
    if beta <= 0.0 or not (refine_a or refine_b):
        u = s
    elif refine_a and refine_b:
        u = 0.5 * (1.0 + np.tanh(beta * (2.0 * s - 1.0)) / math.tanh(beta))
    elif refine_b:
        u = np.tanh(beta * s) / math.tanh(beta)
    else:
        u = 1.0 - np.tanh(beta * (1.0 - s)) / math.tanh(beta)
    u[0], u[-1] = 0.0, 1.0
    return a + (b - a) * u


def build_mesh(wire_length_um: float, electrode_width_um: float, gap_um: float, nodes: int,
               junction_offset_um: float = 0.0, grading_ratio: float = 20.0) -> Mesh:
    """Mesh of a wire with two electrodes of equal width, a centred gap and the junction in it.

    ``junction_offset_um`` moves the heterojunction from mid-gap (positive = toward high z).
    """
    L, w, g = float(wire_length_um), float(electrode_width_um), float(gap_um)
    end = 0.5 * (L - g) - w
    if end < -1e-12:
        raise InputError("geometry.wire_length_um", L,
                         f"too short for two {w:g} um electrodes and a {g:g} um gap")
    end = max(end, 0.0)
    zj = 0.5 * L + float(junction_offset_um)
    e1s, e1e = end, end + w
    e2s, e2e = e1e + g, e1e + g + w
    if not (e1e < zj < e2s):
        raise InputError("geometry.junction_offset_um", junction_offset_um, "junction must lie inside the gap")
    if not (grading_ratio >= 1.0 and math.isfinite(grading_ratio)):
        raise InputError("solver.grading_ratio", grading_ratio, "must be a finite number >= 1")
    beta = math.acosh(math.sqrt(grading_ratio))
    keys = [0.0, e1s, e1e, zj, e2s, e2e, L]
    refine = [(False, True), (True, True), (True, True), (True, True), (True, True), (True, False)]
    segs = [(keys[i], keys[i + 1], refine[i]) for i in range(6) if keys[i + 1] - keys[i] > 1e-12]
    try:
        n_ok = not isinstance(nodes, bool) and float(nodes).is_integer() and 2 <= int(nodes) <= MAX_MESH_NODES
    except (TypeError, ValueError, OverflowError):
        n_ok = False
    if not n_ok:
        raise InputError("solver.nodes", nodes, f"must be an integer in [2, {MAX_MESH_NODES}] (mesh memory)")
    ncell_total = int(nodes) - 1
    min_cells = 4
    if ncell_total < min_cells * len(segs):
        raise InputError("solver.nodes", nodes, f"need at least {min_cells * len(segs) + 1} nodes for this geometry")
    lengths = np.array([b - a for a, b, _ in segs])
    ideal = ncell_total * lengths / lengths.sum()
    cells = np.maximum(np.floor(ideal).astype(int), min_cells)
    # largest remainder, ties broken from both ends inward so mirror-symmetric devices stay symmetric
    while cells.sum() < ncell_total:
        rem = ideal - cells
        order = sorted(range(len(segs)), key=lambda i: (-round(rem[i], 12), min(i, len(segs) - 1 - i)))
        cells[order[0]] += 1
    while cells.sum() > ncell_total:
        i = int(np.argmax(cells - ideal))
        cells[i] -= 1
    parts = []
    for (a, b, (ra, rb)), nc in zip(segs, cells):
        zs = _segment(a, b, int(nc), beta, ra, rb)
        parts.append(zs if not parts else zs[1:])
    z = np.concatenate(parts)
    regions = {"end_low": (0.0, e1s), "electrode_low": (e1s, e1e), "gap": (e1e, e2s),
               "electrode_high": (e2s, e2e), "end_high": (e2e, L)}
    return Mesh(z_um=z, regions=regions, junction_um=zj)
