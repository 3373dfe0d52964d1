"""halide_ionics.kmc — lattice kinetic Monte Carlo of halide ions and vacancies.

Public API: :class:`Simulation`, :class:`RateModel`, :class:`Electrode`, observers, and the
estimators :func:`onsager_coefficients`, :func:`tracer_correlation`, :func:`manning_onsager`,
:func:`electrode_rates` (with its closed form :func:`electrode_reference`).
Knows nothing of the continuum.
"""
from .estimators import (
    ElectrodeRatesResult,
    OnsagerResult,
    TracerResult,
    electrode_rates,
    electrode_reference,
    manning_onsager,
    onsager_coefficients,
    random_alloy,
    tracer_correlation,
)
from .observers import (
    DisplacementObserver,
    ElectrodeObserver,
    Observer,
    ProfileObserver,
    SnapshotObserver,
    TracerObserver,
)
from .rates import K_B_EV, Electrode, RateModel
from .simulation import Simulation

__all__ = [
    "K_B_EV",
    "ElectrodeRatesResult",
    "OnsagerResult",
    "TracerResult",
    "electrode_rates",
    "electrode_reference",
    "manning_onsager",
    "onsager_coefficients",
    "random_alloy",
    "tracer_correlation",
    "DisplacementObserver",
    "Electrode",
    "ElectrodeObserver",
    "Observer",
    "ProfileObserver",
    "RateModel",
    "Simulation",
    "SnapshotObserver",
    "TracerObserver",
]
