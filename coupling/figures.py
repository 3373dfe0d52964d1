"""Figures of the paper reproduction. Each function takes plain results, returns the Figure and
writes nothing itself; :func:`save` writes a PNG atomically."""
from __future__ import annotations

import numpy as np

from halide_ionics.io import atomic_path

BR_COLOR, CL_COLOR, V_COLOR = "#2ca02c", "#1f77b4", "#d62728"


def save(fig, path, dpi=110) -> None:
    """Write ``fig`` as a PNG atomically (layout settled by the figure's own tight layout)."""
    fig.set_layout_engine("tight")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


def _fig(*args, **kw):
    from matplotlib.figure import Figure

    return Figure(*args, **kw)


MODE_STYLE = {"kmc": dict(fmt="o", color="k", label="KMC electrode law (default; no fitted constant)"),
              "paper-linear": dict(fmt="s", color="#9467bd", label="paper-linear pump (2 constants fitted at ±2 V/µm)")}


def migration_vs_field(by_mode: dict, paper_slope, calibration_field=None):
    """Fig. 1e: migration after 4 h vs field for each electrode mode (``by_mode[mode] = (fields,
    migration, se)``), with the paper's mobility line."""
    fig = _fig(figsize=(5.6, 4.0))
    ax = fig.add_subplot()
    fmax = 0.0
    for mode, (fields, mig, se) in by_mode.items():
        f = np.asarray(fields, float)
        m = np.asarray(mig, float)
        e = np.nan_to_num(np.asarray(se, float))
        o = np.argsort(f)
        st = MODE_STYLE.get(mode, dict(fmt="o", color="k", label=mode))
        ax.errorbar(f[o], m[o], yerr=e[o], ms=5, capsize=3, **st)
        fmax = max(fmax, float(f.max()))
    x = np.linspace(0, fmax, 50)
    ax.plot(x, paper_slope * x, "--", color="0.5", label=r"paper: $\mu E t$, $\mu$ = 1.7e-13 cm$^2$/Vs")
    if calibration_field is not None:
        for s in (1, -1):
            ax.axvline(s * calibration_field, color="0.88", lw=6, zorder=0)
        ax.text(calibration_field, ax.get_ylim()[1] * 0.95, "paper-linear\ncalibration", ha="center", va="top",
                fontsize=7, color="0.4")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("field (V/µm)  [+ forward: Br side positive]")
    ax.set_ylabel("migration length after 4 h (µm)")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def halide_composition(run, k=-1):
    """x_Br/(x_Br + x_Cl) at profile k: the halide composition PL measures (vacancies excluded)."""
    return run["x_br"][k] / np.maximum(run["x_br"][k] + run["x_cl"][k], 1e-300)


def composition_profiles(rows: dict, gap_edges_um=None):
    """Fig. 2: halide composition x_Br/(x_Br + x_Cl) at the recorded times; ``rows[mode] = (fwd, rev)``."""
    n = len(rows)
    fig = _fig(figsize=(9, 3.3 * n))
    axs = np.atleast_2d(fig.subplots(n, 2, sharey=True, sharex=True))
    for i, (mode, (run_fwd, run_rev)) in enumerate(rows.items()):
        for ax, run, title in ((axs[i, 0], run_fwd, "forward"), (axs[i, 1], run_rev, "reverse")):
            z = run["z_um"]
            nh = len(run["profile_hours"])
            for k, h in enumerate(run["profile_hours"]):
                ax.plot(z, halide_composition(run, k), color=BR_COLOR, alpha=0.35 + 0.65 * k / max(nh - 1, 1),
                        label=f"{h:g} h")
            ax.axhline(0.55, color="0.6", ls=":", lw=0.8)
            if gap_edges_um is not None:
                for e in gap_edges_um:
                    ax.axvspan(*e, color="gold", alpha=0.2, lw=0)
            ax.set_title(f"{mode}: {title} {run['field_V_per_um']:+g} V/µm", fontsize=9)
            ax.set_ylim(-0.02, 1.05)
        axs[i, 0].set_ylabel(r"$x_{Br}/(x_{Br}+x_{Cl})$")
    for ax in axs[-1]:
        ax.set_xlabel("z (µm)  (gold: electrodes)")
    axs[0, 0].legend(fontsize=7)
    return fig


def vacancy_profiles(runs: dict, gap_edges_um=None, title=""):
    """Fig. 3: halide composition (left) and the vacancy fraction rescaled by its Cl-rich value
    (the initial x_V of the Cl segment, as the paper plots it; log, right) at the end of the run,
    with and without sources, forward and reverse. ``runs[(field, sources)]``."""
    fig = _fig(figsize=(9, 6))
    axs = fig.subplots(2, 2, sharex=True)
    fields = sorted({k[0] for k in runs}, reverse=True)
    for i, fld in enumerate(fields):
        for j, src in enumerate((True, False)):
            ax = axs[i, j]
            run = runs[(fld, src)]
            z = run["z_um"]
            ref = float(run["x_v"][0][-1])  # Cl-rich end at t = 0
            ax.plot(z, halide_composition(run), color="k", lw=1.2, label=r"$x_{Br}/(x_{Br}+x_{Cl})$")
            ax.set_ylim(-0.02, 1.05)
            ax2 = ax.twinx()
            ax2.semilogy(z, np.maximum(run["x_v"][0] / ref, 1e-30), color=V_COLOR, lw=0.8, ls=":", label="t = 0")
            ax2.semilogy(z, np.maximum(run["x_v"][-1] / ref, 1e-30), color=V_COLOR, lw=1.2, label="4 h")
            ax2.set_ylim(1e-8, 1e4)
            if gap_edges_um is not None:
                for e in gap_edges_um:
                    ax.axvspan(*e, color="gold", alpha=0.2, lw=0)
            ax.set_title(f"{title}{fld:+g} V/µm, sources {'on' if src else 'off'}", fontsize=9)
            if j == 1:
                ax2.set_ylabel(r"$x_V / x_V^{Cl\,segment}(t=0)$", color=V_COLOR)
            if j == 0:
                ax.set_ylabel("halide composition")
            if i == 0 and j == 0:
                ax.legend(loc="center left", fontsize=7)
                ax2.legend(loc="lower left", fontsize=7)
    for ax in axs[-1]:
        ax.set_xlabel("z (µm)")
    return fig


def tornado(rows_by_mode: dict):
    """Sensitivity: forward migration and rectification ratio at ±4 V/µm when each input is scaled
    by ½ and 2 (bars from the baseline); one row of panels per electrode mode."""
    n = len(rows_by_mode)
    fig = _fig(figsize=(11, 0.45 * max(len(r) for r in rows_by_mode.values()) * n / 2 + 1.5 * n))
    axs = np.atleast_2d(fig.subplots(n, 2))
    for i, (mode, rows) in enumerate(rows_by_mode.items()):
        base = rows[0]
        names = []
        for r in rows[1:]:
            if r["input"] not in names:
                names.append(r["input"])
        for j, (key, lab, logx) in enumerate((("forward_um", "forward migration at +4 V/µm (µm)", False),
                                               ("ratio", "rectification ratio at ±4 V/µm", True))):
            ax = axs[i, j]
            b = np.nan if base[key] is None else base[key]
            for y, name in enumerate(names):
                for r in rows[1:]:
                    if r["input"] != name:
                        continue
                    v = np.nan if r[key] is None else r[key]
                    sc = np.nan if r["scale"] is None else r["scale"]
                    col = "#2ca02c" if not np.isfinite(sc) else ("#1f77b4" if sc < 1 else "#ff7f0e")
                    if not np.isfinite(v):
                        ax.plot([b], [y], "x", color="r")
                        continue
                    if not np.isfinite(sc):  # a single alternative (not a scaling): mark its value
                        ax.plot([v], [y], "o", color=col, ms=5)
                    ax.barh(y, v - b, left=b, color=col, alpha=0.8, height=0.6,
                            hatch=None if (r["max_x_v"] or 0.0) <= 1e-2 else "//")
            ax.axvline(b, color="k", lw=1)
            if logx:
                ax.set_xscale("log")
            ax.set_yticks(range(len(names)))
            ax.set_yticklabels([next(r["label"] for r in rows if r["input"] == nm) for nm in names], fontsize=7)
            ax.set_xlabel(lab)
            ax.set_title(f"{mode}: blue ×½, orange ×2, green: alternative\n(hatched: left the dilute regime; ×: run failed)",
                         fontsize=8)
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
    from .bridge import manning_reference

    c = table.composition.values
    fig = _fig(figsize=(11, 3.4))
    axs = fig.subplots(1, 3)
    w = material.w_br_Hz
    grid = fits.onsager.c
    ref = dict(zip(("brbr", "brcl", "clcl"), manning_reference(material.w_br_Hz, material.w_cl_Hz)(grid)))
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
    for lab, (cg, g) in creation_law_values.items():
        axs[2].semilogy(cg, g / g[0], label=lab)
    axs[2].set_xlabel("contact composition c")
    axs[2].set_ylabel(r"electrode creation rate / pure CsPbBr$_3$")
    axs[2].legend(fontsize=7)
    return fig
