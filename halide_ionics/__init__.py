"""halide-ionics: multiscale simulation of halide-ion migration in mixed-halide perovskites.

Layers (imports flow one way)::

    halide_ionics.structures  ASE cells, junction wires, halide-sublattice graph, snapshots
    halide_ionics.kmc         lattice kinetic Monte Carlo and its estimators
    halide_ionics.continuum   1D reaction-drift-diffusion + Poisson device solver
    halide_ionics.coupling    KMC -> continuum bridge, sweeps, paper reproduction, CLI

This root package holds only what all layers share: the version, the input-error type,
atomic file writes and provenance records.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("halide-ionics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .errors import InputError  # noqa: E402

__all__ = ["__version__", "InputError"]
