"""Shared builders for the continuum tests."""
from halide_ionics.continuum import (BiasSchedule, DeviceConfig, Geometry, InitialState, OnsagerCoefficients,
                                     SolverOptions, VacancyEquilibrium)


def uniform_device(c=0.5, voltage_V=0.0, duration_s=1000.0, nodes=200, sources=False, w_Hz=1.946e7,
                   geometry=None, x_v=1e-7, **solver):
    """Uniform composition, constant x_V^eq, equal jump rates: the textbook reference device."""
    return DeviceConfig(
        geometry=geometry or Geometry(),
        initial=InitialState(cl_fraction_br_segment=c, cl_fraction_cl_segment=c),
        onsager=OnsagerCoefficients.manning_placeholder(w_Hz, w_Hz),
        vacancy=VacancyEquilibrium.formation_energy_placeholder(x_v, 1.32, 1.32),
        sources=sources,
        bias=BiasSchedule(steps=((0.0, voltage_V),), duration_s=duration_s),
        solver=SolverOptions(nodes=nodes, **solver),
    )
