"""Observables of a device state: composition front, Cl tail, inventories, ionic current."""
from __future__ import annotations

import numpy as np


def front_position(z_um: np.ndarray, x_br: np.ndarray, level: float = 0.55, near_um: float | None = None) -> float:
    """Where x_Br falls through ``level`` (Br-rich on the low-z side), linearly interpolated.

    With several crossings, the one closest to ``near_um`` (e.g. the previous front) is taken;
    ``nan`` if x_Br never crosses the level.
    """
    d = x_br - level
    idx = np.nonzero((d[:-1] >= 0.0) & (d[1:] < 0.0))[0]
    if idx.size == 0:
        return float("nan")
    zc = z_um[idx] + (z_um[idx + 1] - z_um[idx]) * d[idx] / (d[idx] - d[idx + 1])
    if near_um is None or idx.size == 1:
        return float(zc[-1] if near_um is None else zc[0])
    return float(zc[np.argmin(np.abs(zc - near_um))])


def cl_behind_front(z_um: np.ndarray, x_cl: np.ndarray, front_um: float, offset_um: float = 0.25) -> float:
    """Largest x_Cl in the Br segment ahead of the front: over z <= front - offset."""
    if not np.isfinite(front_um):
        return float("nan")
    m = z_um <= front_um - offset_um
    return float(x_cl[m].max()) if np.any(m) else float("nan")


def inventories(box_um: np.ndarray, x_br: np.ndarray, x_cl: np.ndarray, x_v: np.ndarray) -> np.ndarray:
    """Site inventories sum(x_i * box) for Br, Cl, V in um (times c_s = sites per area)."""
    return np.array([np.dot(box_um, x_br), np.dot(box_um, x_cl), np.dot(box_um, x_v)])


def gap_average(h_um: np.ndarray, face_values: np.ndarray, face_in_gap: np.ndarray) -> float:
    """Length-weighted average of a face quantity over the gap (Ramo-Shockley average)."""
    w = h_um * face_in_gap
    return float(np.dot(w, face_values) / w.sum())
