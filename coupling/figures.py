"""Figures of the paper reproduction. Each function takes plain results, returns the Figure and
writes nothing itself; :func:`save` writes a PNG atomically."""
from __future__ import annotations

import numpy as np

from halide_ionics.io import atomic_path

BR_COLOR, CL_COLOR, V_COLOR = "#2ca02c", "#1f77b4", "#d62728"


def save(fig, path, dpi=130) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)


def _fig(*args, **kw):
    from matplotlib.figure import Figure

    return Figure(*args, **kw)


def migration_vs_field(fields, migration_um, migration_se_um, paper_slope, calibration_field=None):
    """Fig. 1e: migration length after 4 h vs field, with the paper's mobility line."""
    fig = _fig(figsize=(5.2, 3.8))
    ax = fig.add_subplot()
    f = np.asarray(fields, float)
    m = np.asarray(migration_um, float)
    se = np.asarray(migration_se_um, float)
    o = np.argsort(f)
    ax.errorbar(f[o], m[o], yerr=se[o], fmt="o", color="k", ms=5, capsize=3, label="this work (KMC → continuum)")
    x = np.linspace(0, f.max(), 50)
    ax.plot(x, paper_slope * x, "--", color="0.5", label=r"paper: $\mu E t$, $\mu$ = 1.7e-13 cm$^2$/Vs")
    if calibration_field is not None:
        for s in (1, -1):
            ax.axvline(s * calibration_field, color="0.85", lw=6, zorder=0)
        ax.text(calibration_field, ax.get_ylim()[1] * 0.95, "calibration", ha="center", va="top", fontsize=7,
                color="0.4")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("field (V/µm)  [+ forward: Br side positive]")
    ax.set_ylabel("migration length after 4 h (µm)")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def composition_profiles(run_fwd, run_rev, gap_edges_um=None):
    """Fig. 2: x_Br profiles at the recorded times, forward and reverse."""
    fig = _fig(figsize=(9, 3.6))
    axs = fig.subplots(1, 2, sharey=True)
    for ax, run, title in ((axs[0], run_fwd, "forward"), (axs[1], run_rev, "reverse")):
        z = run["z_um"]
        for k, h in enumerate(run["profile_hours"]):
            ax.plot(z, run["x_br"][k], color=BR_COLOR, alpha=0.35 + 0.65 * k / max(len(run["profile_hours"]) - 1, 1),
                    label=f"{h:g} h")
        ax.axhline(0.55, color="0.6", ls=":", lw=0.8)
        if gap_edges_um is not None:
            for e in gap_edges_um:
                ax.axvspan(*e, color="gold", alpha=0.2, lw=0)
        ax.set_title(f"{title} {run['field_V_per_um']:+g} V/µm")
        ax.set_xlabel("z (µm)")
        ax.set_ylim(-0.02, 1.05)
    axs[0].set_ylabel(r"$x_{Br}$")
    axs[0].legend(fontsize=8)
    return fig


def vacancy_profiles(runs: dict, gap_edges_um=None):
    """Fig. 3: composition (left axis) and vacancy (log, right axis) profiles at the end of the run,
    with and without sources, forward and reverse. ``runs[(field, sources)]``."""
    fig = _fig(figsize=(9, 6))
    axs = fig.subplots(2, 2, sharex=True)
    fields = sorted({k[0] for k in runs}, reverse=True)
    for i, fld in enumerate(fields):
        for j, src in enumerate((True, False)):
            ax = axs[i, j]
            run = runs[(fld, src)]
            z = run["z_um"]
            ax.plot(z, run["x_br"][-1], color="k", lw=1.2, label=r"$x_{Br}$")
            ax.set_ylim(-0.02, 1.05)
            ax2 = ax.twinx()
            ax2.semilogy(z, np.maximum(run["x_v"][0], 1e-30), color=V_COLOR, lw=0.8, ls=":", label=r"$x_V$, t=0")
            ax2.semilogy(z, np.maximum(run["x_v"][-1], 1e-30), color=V_COLOR, lw=1.2, label=r"$x_V$, 4 h")
            ax2.set_ylim(1e-14, 1)
            if gap_edges_um is not None:
                for e in gap_edges_um:
                    ax.axvspan(*e, color="gold", alpha=0.2, lw=0)
            ax.set_title(f"{fld:+g} V/µm, sources {'on' if src else 'off'}", fontsize=9)
            if j == 1:
                ax2.set_ylabel(r"$x_V$", color=V_COLOR)
            if j == 0:
                ax.set_ylabel(r"$x_{Br}$")
            if i == 0 and j == 0:
                ax.legend(loc="center left", fontsize=7)
                ax2.legend(loc="lower left", fontsize=7)
    for ax in axs[-1]:
        ax.set_xlabel("z (µm)")
    return fig


def no_source_control(run_src, run_nosrc):
    """Fig. S10: migration vs time with and without the electrode sources."""
    fig = _fig(figsize=(5, 3.5))
    ax = fig.add_subplot()
    for run, lab, ls in ((run_src, "sources on", "-"), (run_nosrc, "sources off (Fig. S10)", "--")):
        ax.plot(run["times_s"] / 3600, run["migration_length_um"], ls, label=lab)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("migration length (µm)")
    ax.set_title(f"{run_src['field_V_per_um']:+g} V/µm", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def coefficient_tables(table, fits, material, creation_law_values):
    """KMC coefficients with error bars, their smooth fits, and the closed-form reference."""
    from .reproduce import _reference

    c = table.composition.values
    fig = _fig(figsize=(11, 3.4))
    axs = fig.subplots(1, 3)
    w = material.w_br_Hz
    grid = fits.onsager.c
    ref = dict(zip(("brbr", "brcl", "clcl"), _reference(material)(grid)))
    for p, col in (("brbr", BR_COLOR), ("brcl", "k"), ("clcl", CL_COLOR)):
        axs[0].errorbar(c, table[f"l_{p}"].values / w, yerr=table[f"l_{p}_se"].values / w, fmt="o", ms=3,
                        color=col, label=f"KMC ℓ_{p[:2].capitalize()}{p[2:].capitalize()}")
        axs[0].plot(grid, fits.onsager.l[p] / w, color=col, lw=1)
        axs[0].plot(grid, ref[p] / w, color=col, lw=0.8, ls=":")
    axs[0].set_xlabel("c = x_Cl/(x_Br+x_Cl)")
    axs[0].set_ylabel(r"$\ell_{ij}/w_{Br}$  (dotted: Manning/MAA)")
    axs[0].legend(fontsize=7)
    axs[1].errorbar(c, table.x_v_eq.values, yerr=table.x_v_eq_se.values, fmt="o", ms=3, color=V_COLOR)
    axs[1].semilogy(grid, fits.x_v_eq(grid) * material.vacancy_fraction_br / fits.x_v_eq(0.0), color=V_COLOR)
    axs[1].set_xlabel("c")
    axs[1].set_ylabel(r"$x_V^{eq}(c)$")
    cg, g = creation_law_values
    axs[2].semilogy(cg, g, color="k")
    axs[2].set_xlabel("contact composition c")
    axs[2].set_ylabel(r"electrode creation law $\hat g(c)$")
    fig.tight_layout()
    return fig
