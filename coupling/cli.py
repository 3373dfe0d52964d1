"""The ``halide-ionics`` command line.

Each subcommand lives in its own module ``halide_ionics.coupling.cli_<name>`` that defines

* ``HELP``: one-line help,
* ``add_arguments(parser)``: its options,
* ``run(args) -> int``: the work; results go to stdout (``--json``) or files.

Bad input raises :class:`halide_ionics.InputError` (or argparse errors), which this module turns
into one line on stderr and exit status 2, with no output file written.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from halide_ionics import __version__
from halide_ionics.errors import InputError

SUBCOMMANDS = ("structure", "kmc", "device", "coefficients", "reproduce", "consistency", "study")

log = logging.getLogger("halide_ionics")


def _load(name):
    try:
        return importlib.import_module(f"halide_ionics.coupling.cli_{name}")
    except ModuleNotFoundError as exc:  # subcommand not built into this version
        if exc.name == f"halide_ionics.coupling.cli_{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halide-ionics",
        description="Multiscale halide-ion migration in mixed-halide perovskites "
        "(lattice KMC -> Onsager coefficients -> 1D device solver).",
    )
    parser.add_argument("--version", action="version", version=f"halide-ionics {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        mod = _load(name)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def print_json(obj) -> None:
    """Print ``obj`` as JSON on stdout (numpy scalars/arrays allowed)."""
    from halide_ionics.io import _json_default

    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except InputError as exc:
        print(f"halide-ionics {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"halide-ionics {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
