"""Physical constants and project-wide defaults: one source for every layer.

Exact SI constants come from :mod:`scipy.constants` (k_B in J/K, e). Two values are pinned to the
CODATA 2018 decimals that every published number of this package was computed with, so results do
not move with the installed SciPy (SciPy >= 1.15 ships CODATA 2022):

* ``K_B_EV_PER_K = 8.617333262e-5`` -- the CODATA-listed eV/K value (k_B/e = 8.617333262145e-5
  exactly; the listed value differs by 2e-11 relative);
* ``EPS0_F_PER_M = 8.8541878128e-12`` -- CODATA 2018 (2022: 8.8541878188e-12, 7e-10 relative).

``tests/test_constants.py`` checks both against :mod:`scipy.constants` at those tolerances.
``T_ROOM_K = 298.0`` is the project's default temperature (the paper's room temperature); every
layer takes its default temperature from here.
"""
from __future__ import annotations

from scipy import constants as _sc

#: Boltzmann constant, J/K (exact, SI 2019).
K_B_J_PER_K: float = _sc.Boltzmann
#: Elementary charge, C (exact, SI 2019).
E_CHARGE_C: float = _sc.elementary_charge
#: Boltzmann constant, eV/K (CODATA-listed decimals; see the module docstring).
K_B_EV_PER_K: float = 8.617333262e-5
#: Vacuum permittivity, F/m (CODATA 2018; see the module docstring).
EPS0_F_PER_M: float = 8.8541878128e-12
#: The project's default temperature, K (room temperature as used by the paper's model).
T_ROOM_K: float = 298.0
#: Tracer correlation factor of the vacancy mechanism on the perovskite halide (X) sublattice
#: (8-coordinated; computed, see docs/model.md section 2; Ishigaki et al. 1988 quote 0.69).
F0_PEROVSKITE_X: float = 0.68891612

__all__ = ["K_B_J_PER_K", "E_CHARGE_C", "K_B_EV_PER_K", "EPS0_F_PER_M", "T_ROOM_K", "F0_PEROVSKITE_X"]
