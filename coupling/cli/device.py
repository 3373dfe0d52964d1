"""``halide-ionics device``: run the 1D device solver.

With ``--config FILE.toml`` the device comes from the file (schema: halide_ionics.continuum.config);
without it, the built-in paper device under ``--field`` V/um for ``--hours`` h (negative field =
reverse bias).  ``--out FILE.nc`` writes the labelled NetCDF; ``--json`` prints a summary.
"""
from __future__ import annotations

import logging
import math

from halide_ionics.errors import InputError

#: bounds of the built-in device's options
MAX_HOURS = 1e5
MAX_FIELD_V_PER_UM = 1e3

HELP = "run the 1D reaction-drift-diffusion + Poisson device solver"
DESCRIPTION = __doc__

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="device config (TOML); default: built-in paper device")
    p.add_argument("--field", type=float, default=None, metavar="V_PER_UM",
                   help="applied field in V/um for the built-in device (default 4; negative = reverse)")
    p.add_argument("--hours", type=float, default=None, help="bias duration in hours for the built-in device (default 4)")
    p.add_argument("--no-sources", action="store_true", help="switch off the electrode vacancy sources")
    p.add_argument("--nodes", type=int, default=None, help="mesh nodes (overrides the config)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (overrides the config)")
    p.add_argument("--contact-mode", choices=("region", "line"), default=None, help="potential contact model")
    p.add_argument("--out", metavar="FILE.nc", help="write the run as NetCDF")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def build_config(args):
    from dataclasses import fields, replace

    from halide_ionics.continuum.config import BiasSchedule, DeviceConfig, SolverOptions, load_config

    if args.config is not None:
        if args.field is not None or args.hours is not None:
            raise InputError("--field/--hours", args.field if args.field is not None else args.hours,
                             "the bias comes from the config file's [bias] section")
        cfg = load_config(args.config)
    else:
        field = 4.0 if args.field is None else args.field
        hours = 4.0 if args.hours is None else args.hours
        if not (math.isfinite(hours) and 0 < hours <= MAX_HOURS):
            raise InputError("--hours", hours, f"must be a number in (0, {MAX_HOURS:g}]")
        if not (math.isfinite(field) and abs(field) <= MAX_FIELD_V_PER_UM):
            raise InputError("--field", field, f"must be a finite field with |field| <= {MAX_FIELD_V_PER_UM:g} V/um "
                                               "(beyond, e*dV/kT overflows the model)")
        cfg = DeviceConfig.paper_device(field_V_per_um=field, hours=hours)
        cfg = cfg.replace(bias=BiasSchedule.constant_field(field, hours=hours, gap_um=cfg.geometry.gap_um))
    over = {}
    if args.nodes is not None:
        over["nodes"] = args.nodes
    if args.rtol is not None:
        over["rtol"] = args.rtol
    if args.contact_mode is not None:
        over["contact_mode"] = args.contact_mode
    if over:
        sol = {f.name: getattr(cfg.solver, f.name) for f in fields(SolverOptions)}
        sol.update(over)
        try:
            cfg = cfg.replace(solver=SolverOptions(**sol))
        except InputError as exc:  # name the option the user typed
            opt = {"solver.nodes": "--nodes", "solver.rtol": "--rtol", "solver.contact_mode": "--contact-mode"}
            if exc.field in opt and opt[exc.field].lstrip("-").replace("-", "_") in over:
                raise InputError(opt[exc.field], exc.value, exc.reason) from None
            raise
    if args.no_sources:
        cfg = cfg.replace(sources=False)
    _ = replace  # dataclasses.replace kept for readers: configs are frozen
    return cfg


def run(args) -> int:
    from halide_ionics.continuum import simulate
    from halide_ionics.io import check_output_path

    cfg = build_config(args)
    if args.out is not None:
        sol = cfg.solver
        n_out = len(sol.output_times_s) + 1 if sol.output_times_s is not None else sol.n_outputs
        check_output_path("--out", args.out, suffixes=(".nc", ".nc4", ".h5"),
                          expected_bytes=5 * 8 * sol.nodes * n_out)
    result = simulate(cfg, progress=args.progress)
    if args.out:
        result.write_netcdf(args.out)
    if args.json:
        from halide_ionics.coupling.cli import print_json

        s = result.summary()
        s["field_V_per_um"] = cfg.bias.steps[-1][1] / cfg.geometry.gap_um
        if args.out:
            s["out"] = str(args.out)
        print_json(s)
    return 0 if result.status == "ok" else 1
