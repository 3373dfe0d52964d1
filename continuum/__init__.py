"""halide_ionics.continuum: the 1D reaction-drift-diffusion + Poisson device solver.

Public API::

    from halide_ionics.continuum import (DeviceConfig, Geometry, Material, InitialState, BiasSchedule,
                                         SolverOptions, OnsagerCoefficients, VacancyEquilibrium,
                                         ElectrodeKinetics, load_config, simulate)
    result = simulate(DeviceConfig.paper_device(field_V_per_um=4.0, hours=4.0))
    result.migration_length_um      # vs result.times_s
    result.write_netcdf("run.nc")

See :mod:`.config` for the TOML schema, :mod:`.solver` for the model and method and
:mod:`.coefficients` for the (placeholder) coefficient inputs.  This package never imports
the KMC or coupling layers.
"""
from .coefficients import ElectrodeKinetics, OnsagerCoefficients, VacancyEquilibrium, manning_maa
from .config import (BiasSchedule, DeviceConfig, Geometry, InitialState, Material, SolverOptions, config_from_dict,
                     load_config)
from .mesh import Mesh, build_mesh
from .solver import DeviceModel, DeviceResult, simulate

__all__ = [
    "BiasSchedule", "DeviceConfig", "DeviceModel", "DeviceResult", "ElectrodeKinetics", "Geometry",
    "InitialState", "Material", "Mesh", "OnsagerCoefficients", "SolverOptions", "VacancyEquilibrium",
    "build_mesh", "config_from_dict", "load_config", "manning_maa", "simulate",
]
