"""Labelled outputs (xarray / NetCDF) and plotting helpers of a device run."""
from __future__ import annotations

import numpy as np

from halide_ionics.io import provenance_attrs, write_netcdf_atomic


def result_to_dataset(result):
    """An xarray Dataset with profiles over (time, z), time series and provenance attributes."""
    import xarray as xr

    r = result
    mesh = r.mesh
    coords = {
        "time": ("time", r.times_s, {"units": "s", "long_name": "time"}),
        "z": ("z", mesh.z_um, {"units": "um", "long_name": "position along the wire (Br segment at low z)"}),
    }
    prof = lambda a, name, units: (("time", "z"), a, {"units": units, "long_name": name})  # noqa: E731
    ts = lambda a, name, units: ("time", a, {"units": units, "long_name": name})  # noqa: E731
    data = {
        "x_Br": prof(r.x_br, "Br site fraction", "1"),
        "x_Cl": prof(r.x_cl, "Cl site fraction", "1"),
        "x_V": prof(r.x_v, "halide vacancy site fraction", "1"),
        "psi": prof(r.psi_V, "electrostatic potential", "V"),
        "voltage": ts(r.voltage_V, "applied voltage (Br-side electrode minus Cl-side)", "V"),
        "front_position": ts(r.front_um, f"position where x_Br = {r.config.solver.front_level}", "um"),
        "migration_length": ts(r.migration_length_um, "front displacement toward the Br end", "um"),
        "cl_behind_front": ts(r.cl_behind_front, "max x_Cl in the Br segment ahead of the front", "1"),
        "ionic_current": ts(r.current_A_per_m2, "ionic current density, gap average (vacancy flux x e)", "A m-2"),
        "x_V_gap_mean": ts(r.x_v_gap_mean, "mean vacancy site fraction in the gap", "1"),
        "box_length": ("z", mesh.box_um, {"units": "um", "long_name": "control-volume length"}),
    }
    ds = xr.Dataset(data, coords=coords)
    attrs = provenance_attrs(config=r.config.to_dict(), status=r.status, message=r.message, steps=r.steps,
                             rejected_steps=r.rejected_steps, newton_iterations=r.newton_iterations,
                             wall_seconds=r.wall_seconds, site_conservation_error=r.site_conservation_error,
                             conservation_by_species=r.conservation_by_species,
                             regions={k: list(v) for k, v in mesh.regions.items()})
    attrs["title"] = "halide-ionics 1D device run"
    ds.attrs.update(attrs)
    return ds


def write_netcdf(result, path) -> None:
    """Write the run's Dataset to NetCDF (h5netcdf engine), atomically (I/O failures raise ``OSError``)."""
    write_netcdf_atomic(result_to_dataset(result), path)


def plot_profiles(result, times_s=None, ax=None, vacancies: bool = True):
    """Composition (x_Br, x_Cl) and, on a twin log axis, vacancy profiles at chosen times.

    Returns ``(fig, axes, lines)``.  ``times_s`` defaults to the first and last output; the
    nearest output time is shown for each.
    """
    import matplotlib.pyplot as plt

    r = result
    if times_s is None:
        times_s = [r.times_s[0], r.times_s[-1]]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    axes = [ax]
    lines = []
    z = r.mesh.z_um
    cmap = plt.get_cmap("viridis")
    ax2 = ax.twinx() if vacancies else None
    for k, t in enumerate(times_s):
        i = int(np.argmin(np.abs(r.times_s - t)))
        col = cmap(k / max(1, len(times_s) - 1))
        lines += ax.plot(z, r.x_br[i], color=col, label=f"x_Br, t = {r.times_s[i] / 3600:.2f} h")
        lines += ax.plot(z, r.x_cl[i], color=col, ls="--")
        if ax2 is not None:
            lines += ax2.semilogy(z, np.maximum(r.x_v[i], 1e-30), color=col, ls=":")
    for name in ("electrode_low", "electrode_high"):
        a, b = r.mesh.regions[name]
        ax.axvspan(a, b, color="0.9", zorder=0)
    ax.set_xlabel("z (um)")
    ax.set_ylabel("site fraction (solid Br, dashed Cl)")
    ax.legend(fontsize="small")
    if ax2 is not None:
        ax2.set_ylabel("x_V (dotted)")
        ax2.set_ylim(1e-12, 1.0)
        axes.append(ax2)
    return fig, axes, lines


def plot_migration(result, ax=None, label=None):
    """Migration length (um) versus time (h). Returns ``(fig, ax, line)``."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
    else:
        fig = ax.figure
    (line,) = ax.plot(result.times_s / 3600.0, result.migration_length_um, marker=".", label=label)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("migration length (um)")
    return fig, ax, line
