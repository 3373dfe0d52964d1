"""Stage 6 of the pipeline: ``report.md`` from the summary (both electrode modes side by side).

Pure text from the summary dict, so what the report says is exactly what ``summary.json`` holds.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from halide_ionics.io import atomic_path

PAPER_LABELS = {"kmc": "KMC electrode law (default)", "paper-linear": "paper-linear pump",
                "paper_linear": "paper-linear pump"}


def _fmt(v, nd=4):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            return "n/a"
        return f"{v:.{nd}g}"
    return str(v)


def _pm(v, se):
    return _fmt(v) if se is None or not isinstance(se, (int, float)) or not math.isfinite(se) else \
        f"{_fmt(v)} ± {_fmt(se, 2)}"


def _cell(x) -> str:
    """Text safe inside a Markdown table cell."""
    return str(x).replace("|", "\\|")


def departures(m: dict) -> list[str]:
    """Plain sentences: where a mode's predictions depart from the paper, and by how much."""
    out = []
    for r in m["targets"]:
        if r["pass"] or r["kind"] != "prediction":
            continue
        v, p = r["value"], r["paper"]
        by = ""
        if isinstance(v, (int, float)) and isinstance(p, (int, float)) and p and math.isfinite(v):
            by = f", {v / p:.3g}x the paper's {_fmt(p)}"
        out.append(f"{r['name']}: **{_fmt(v)}**{by} (accept {r['accept']}; paper: {r['paper'] or '—'})"
                   + (f"; {r['note']}" if r.get("note") else ""))
    return out


def _alternatives(m: dict) -> list[str]:
    """Sentences on the single alternatives of the sensitivity table (contact model, split rule)."""
    rows = m.get("sensitivity") or []
    if not rows:
        return []
    base = rows[0]
    out = []
    for r in rows:
        if r["input"] not in ("contact_mode", "split_rule"):
            continue
        if not (isinstance(r["forward_um"], (int, float)) and isinstance(base["forward_um"], (int, float))):
            out.append(f"{r['label']}: the run did not finish ({r['status']}).")
            continue
        df = 100 * (r["forward_um"] / base["forward_um"] - 1)
        dr = 100 * (r["ratio"] / base["ratio"] - 1) if isinstance(r["ratio"], (int, float)) else float("nan")
        out.append(f"{r['label']}: forward migration at +4 V/µm changes by {df:+.2g} %, the ratio by {dr:+.2g} %.")
    return out


def _studies(s: dict) -> str:
    """Links to the supplementary studies (``reproduce --studies all``), with their verdicts."""
    if not s.get("studies"):
        return ""
    from .studies import render_study_links

    return render_study_links(s["studies"]) + "\n"


def _targets_table(modes: dict) -> str:
    names = []
    for m in modes.values():
        for r in m["targets"]:
            if r["name"] not in names:
                names.append(r["name"])
    head = "| target | paper | accept | " + " | ".join(f"{PAPER_LABELS.get(k, k)}: value | kind | result"
                                                     for k in modes) + " |"
    sep = "|---|---|---|" + "---|---|---|" * len(modes)
    rows = []
    for n in names:
        cells = []
        paper = accept = ""
        for m in modes.values():
            r = next((x for x in m["targets"] if x["name"] == n), None)
            if r is None:
                cells.append("— | — | —")
                continue
            paper, accept = r["paper"], r["accept"]
            cells.append(f"{_pm(r['value'], r.get('se'))} | {r['kind']} | {'PASS' if r['pass'] else '**FAIL**'}")
        rows.append(f"| {_cell(n)} | {_cell(_fmt(paper))} | {_cell(accept)} | " + " | ".join(cells) + " |")
    return "\n".join([head, sep] + rows)


def _migration_table(modes: dict) -> str:
    fields = list(next(iter(modes.values()))["migration_length_um"])
    head = "| field (V/µm) | " + " | ".join(f"{PAPER_LABELS.get(k, k)} (µm)" for k in modes) + " |"
    sep = "|---|" + "---|" * len(modes)
    rows = []
    for f in fields:
        rows.append(f"| {f} | " + " | ".join(_pm(m["migration_length_um"].get(f), m["migration_length_se_um"].get(f))
                                          for m in modes.values()) + " |")
    return "\n".join([head, sep] + rows)


def _sensitivity_table(rows: list) -> str:
    out = ["| input | scale | forward +4 (µm) | reverse −4 (µm) | ratio | max x_V | status |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        sc = "—" if not (isinstance(r["scale"], (int, float)) and math.isfinite(r["scale"])) else f"×{r['scale']:g}"
        flag = "" if (r["max_x_v"] is not None and r["max_x_v"] <= 1e-2) else " **(not dilute)**"
        out.append(f"| {r['label']} | {sc} | {_fmt(r['forward_um'])} | {_fmt(r['reverse_um'])} | {_fmt(r['ratio'])} "
                   f"| {_fmt(r['max_x_v'], 2)}{flag} | {r['status']} |")
    return "\n".join(out)


def render_report(s: dict) -> str:
    modes = s["modes"]
    default = s["electrode_mode"]
    d = modes[default.replace('-', '_')]
    cal_lines = []
    for k, m in modes.items():
        if not m["calibrated"]:
            cal_lines.append(f"* **{PAPER_LABELS.get(k, k)}**: no calibrated constant (everything is KMC output or "
                             "material data: see the parameter sources in `coupling/materials.py`).")
        for name, c in m["calibrated"].items():
            cal_lines.append(f"* **{PAPER_LABELS.get(k, k)}**: `{name}` = {_fmt(c['value'])} — fitted to {c['fitted_to']}")
    dep = departures(d)
    dep_txt = "\n".join(f"* {x}" for x in dep) if dep else "* none: every prediction meets its acceptance band."
    sens = "\n\n".join(f"### {PAPER_LABELS.get(k, k)}\n\n{_sensitivity_table(m['sensitivity'])}" for k, m in modes.items())
    unc = "\n".join(f"* {PAPER_LABELS.get(k, k)}: {m['uncertainty']['draws_used']} of "
                    f"{m['uncertainty']['draws_requested']} draws used ({m['uncertainty']['runs_failed']} runs that "
                    f"did not finish left out); slope SE {_fmt(m['uncertainty']['slope_se'], 2)} µm per V/µm, "
                    f"ratio SE {_fmt(m['uncertainty']['ratio_se'], 2)}"
                    + ("; calibration redone per draw" if m["calibrated"] else "")
                    for k, m in modes.items())
    return f"""# halide-ionics reproduction of Kong et al., Nano Lett. 2020

halide-ionics {s['provenance']['version']}, seed {s['provenance']['seed']}, created {s['provenance']['created_utc']}{' (QUICK run: reduced sizes)' if s['quick'] else ''}.

Lattice KMC → Onsager coefficients ℓ_ij(c), x_V^eq(c), electrode rate law → 1D device solver
(reaction–drift–diffusion + Poisson) → migration of the CsPbBr3–CsPbCl3 composition front after 4 h.
Two electrode models are run side by side:

* **{PAPER_LABELS['kmc']}** — creation and annihilation from the KMC's own electrode rate law, their
  ratio fixed by detailed balance (x_V^eq(c) at zero overpotential), ions exchanged at the
  contact's composition (the equilibrium split against the KMC's reservoir) and the KMC's
  transfer coefficient on the local overpotential; the contacts stay dilute. No constant is fitted.
* **{PAPER_LABELS['paper-linear']}** — the paper's phenomenological S_V = k(1 − x_V) − k x_V,
  k = λ ĝ(c)|ΔV| with λ and δ_el fitted on the ±2 V/µm data as the paper fitted its source
  strengths. Its fixed point is x_V = ½: it floods the contacts far outside the dilute regime
  in which the KMC inputs hold (see the model-validity row).

Every number carries a *kind* (docs/model.md §5): **calibrated** (a constant was fitted to it),
**implied** (follows from a calibration through the model's structure) or **prediction**.

## Headline ({PAPER_LABELS.get(default, default)})

* rectification ratio at ±4 V/µm: **{_pm(d['rectification_ratio_4V'], d['rectification_ratio_4V_se'])}** (paper ≈ 20)
* forward slope: **{_pm(d['forward_slope_um_per_V_per_um'], d['forward_slope_se'])}** µm per V/µm (paper {_fmt(d['paper_slope_um_per_V_per_um'])}), R² = {_fmt(d['forward_r2'])}
* largest vacancy fraction in any run: {_fmt(d['max_x_v'], 3)} (validity limit 1e-2)

### Where the predictions depart from the paper

{dep_txt}

### What the answer does not hinge on

The default contacts pin the lattice potential over each 1.5 µm pad (the wire lies on the Au
pad); the paper imposes the voltage at the contact lines. With the KMC law the exchange is fast
and reversible, so a floating contact region sits at the electrode's electrochemical potential
either way:

{chr(10).join("* " + x for x in _alternatives(d)) or "* (sensitivity not run)"}

## Targets

{_targets_table(modes)}

## Calibrated constants

{chr(10).join(cal_lines)}

Material inputs (none fitted here): hop barriers 0.25/0.29 eV (Mizusaki et al. 1983) with
E_a,Br set by the paper's mobility at the paper's vacancy level ({s['material']['vacancy_level_reading']}
reading of "∼1e-7 per unit cell"), formation energies 1.32/1.44 eV, ε_r = 250 (paper).
KMC transfer coefficient β = {_fmt(s['kmc']['transfer_coefficient'])} ± {_fmt(s['kmc']['transfer_coefficient_se'], 2)} (Brønsted ½ expected).

## Migration length after 4 h (± KMC-propagated SE)

{_migration_table(modes)}

Propagated standard errors:

{unc}

## Sensitivity (±4 V/µm; each input ×½ and ×2, nothing recalibrated)

{sens}

![sensitivity](sensitivity_tornado.png)

## Figures

![Fig. 1c junction snapshot](fig1c_junction.png)

![Fig. 1e migration vs field](fig1e_migration_vs_field.png)

![Fig. 2 halide composition profiles](fig2_composition_profiles.png)

![Fig. 3 composition and rescaled vacancy profiles (default mode)](fig3_vacancy_profiles.png)

![Fig. 3 (paper-linear)](fig3_vacancy_profiles_paper_linear.png)

![Fig. S10 no-source control](figS10_no_sources.png)

![KMC coefficients](coefficients.png)

{_studies(s)}
Timings: {', '.join(f'{k} {v:.1f}' for k, v in s['timings_s'].items())}.
"""


# ------------------------------------------------------------------------------ files
def _gap_edges():
    from halide_ionics.continuum import Geometry

    g = Geometry()
    a = 0.5 * (g.wire_length_um - g.gap_um)
    b = 0.5 * (g.wire_length_um + g.gap_um)
    return [(a - g.electrode_width_um, a), (b, b + g.electrode_width_um)]


def _junction_snapshot(dest, seed: int, cache_dir=None):
    """Fig. 1c: the atomistic junction (a pure function of the seed and the package version, so
    its PNG is kept in the cache and copied when warm)."""
    import shutil

    from halide_ionics import __version__
    from halide_ionics.structures import build_junction
    from halide_ionics.structures.snapshots import write_junction_png

    from .sweep import content_hash

    spec = dict(cells=(6, 6, 40), interface_z_fraction=0.5, x_br_ends=(1.0, 0.1), vacancy_fraction=0.01, seed=seed)
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / "figures" / f"fig1c-{content_hash([spec, __version__])}.png"
        if cached.is_file() and cached.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n":
            with atomic_path(dest) as tmp:
                shutil.copyfile(cached, tmp)
            return
    write_junction_png(build_junction(**spec), dest)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            shutil.copyfile(dest, tmp)


def write_outputs(out, table, fits, material, cfg, per_mode, summary, cache_dir=None):
    """NetCDF tables, figures, summary.json and report.md (each written atomically)."""
    import xarray as xr

    from halide_ionics.io import provenance_attrs, write_json_atomic, write_netcdf_atomic, write_text_atomic
    from . import figures
    from .device_runs import padded_series, run_ok
    from .coefficients import write_table
    from .targets import paper_slope_um_per_V_per_um

    fields = [float(f) for f in cfg.fields_V_per_um]
    write_table(table, out / "coefficients.nc")
    data = {}
    for mode, pm in per_mode.items():
        k = mode.replace("-", "_")
        runs = pm["runs"]
        times = max((runs[f]["times_s"] for f in fields), key=len)
        se = pm["summary"]["migration_length_se_um"]
        data[f"migration_length_{k}"] = (("field", "time"), padded_series([runs[f]["migration_length_um"] for f in fields],
                                                                      len(times)),
                                         {"units": "um", "electrode_mode": mode,
                                          "long_name": "composition-front migration toward the Br end"})
        data[f"migration_length_se_{k}"] = ("field", [np.nan if se.get(f"{f:g}") is None else se[f"{f:g}"]
                                                       for f in fields],
                                            {"units": "um", "long_name": "KMC errors propagated"})
        data[f"max_x_v_{k}"] = ("field", [runs[f]["max_x_v"] for f in fields], {"units": "1"})
        data[f"status_ok_{k}"] = ("field", [int(run_ok(runs[f], cfg.hours)) for f in fields], {"units": "1"})
    dsm = xr.Dataset(data, coords={"field": ("field", fields, {"units": "V/um"}),
                                   "time": ("time", times, {"units": "s"})})
    dsm.attrs.update(provenance_attrs(config=cfg.to_dict(), seed=cfg.seed))
    write_netcdf_atomic(dsm, out / "migration.nc")

    gap_edges = _gap_edges()
    f_fwd, f_rev = max(fields), min(fields)
    slope = paper_slope_um_per_V_per_um(cfg.hours * 3600.0)
    _junction_snapshot(out / "fig1c_junction.png", cfg.seed, cache_dir)
    by_mode = {}
    for mode, pm in per_mode.items():
        s = pm["summary"]
        by_mode[mode] = (fields, [s["migration_length_um"][f"{f:g}"] for f in fields],
                         [np.nan if s["migration_length_se_um"].get(f"{f:g}") is None
                          else s["migration_length_se_um"][f"{f:g}"] for f in fields])
    figures.save(figures.migration_vs_field(by_mode, slope, cfg.calibration_field_V_per_um),
                 out / "fig1e_migration_vs_field.png")
    figures.save(figures.composition_profiles({m: (pm["runs"][f_fwd], pm["runs"][f_rev])
                                               for m, pm in per_mode.items()}, gap_edges),
                 out / "fig2_composition_profiles.png")
    for mode, pm in per_mode.items():
        name = "fig3_vacancy_profiles.png" if mode == cfg.electrode else f"fig3_vacancy_profiles_{mode.replace('-', '_')}.png"
        figures.save(figures.vacancy_profiles({(f_fwd, True): pm["runs"][f_fwd], (f_fwd, False): pm["nosrc"][f_fwd],
                                               (f_rev, True): pm["runs"][f_rev], (f_rev, False): pm["nosrc"][f_rev]},
                                              gap_edges, title=f"{mode}: "), out / name)
    d = per_mode[cfg.electrode]
    figures.save(figures.no_source_control(d["runs"][f_fwd], d["nosrc"][f_fwd]), out / "figS10_no_sources.png")
    if all(pm["summary"]["sensitivity"] for pm in per_mode.values()):
        figures.save(figures.tornado({m: pm["summary"]["sensitivity"] for m, pm in per_mode.items()}),
                     out / "sensitivity_tornado.png")
    cg = np.linspace(0, 1, 101)
    laws = {}
    for mode, pm in per_mode.items():
        inp = pm["prep"].inputs
        laws[f"{mode} creation"] = (cg, np.interp(cg, inp.c, inp.k_create0_per_s))
    figures.save(figures.coefficient_tables(table, fits, material, laws), out / "coefficients.png")
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "report.md", render_report(summary))
