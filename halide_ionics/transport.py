"""Closed forms of vacancy-mediated transport shared by every layer (one implementation).

:func:`manning_maa` is the Manning / Moleko-Allnatt-Allnatt random-alloy closed form of the
per-vacancy Onsager coefficients (docs/model.md section 3), vectorised over the composition.
``halide_ionics.continuum.manning_maa`` is this function.
"""
from __future__ import annotations

import numpy as np

from .constants import F0_PEROVSKITE_X


def manning_maa(c, w_br_Hz: float, w_cl_Hz: float, f0: float = F0_PEROVSKITE_X):
    """Manning / Moleko-Allnatt-Allnatt per-vacancy Onsager coefficients (Hz) at Cl fraction c.

    Returns ``(l_BrBr, l_BrCl, l_ClCl)``; docs/model.md section 3 with A = Br, B = Cl.
    """
    c = np.asarray(c, dtype=float)
    ca, cb = 1.0 - c, c
    wa, wb = float(w_br_Hz), float(w_cl_Hz)
    m0 = 2.0 * f0 / (1.0 - f0)
    wmean = ca * wa + cb * wb
    wbar = ca * wb + cb * wa
    p = m0 * wmean + 2.0 * wbar
    q = 2.0 * m0 * ca * cb * (wa - wb) ** 2
    omega = 0.5 * (p + np.sqrt(np.maximum(p * p - 4.0 * q, 0.0)))
    l_aa = ca * wa * (1.0 - 2.0 * cb * wa / omega)
    l_bb = cb * wb * (1.0 - 2.0 * ca * wb / omega)
    l_ab = 2.0 * ca * cb * wa * wb / omega
    return l_aa, l_ab, l_bb
