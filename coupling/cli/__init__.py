"""The ``halide-ionics`` command line.

Each subcommand lives in its own module ``halide_ionics.coupling.cli.<name>`` that defines

* ``HELP``: one-line help,
* ``add_arguments(parser)``: its options,
* ``run(args) -> int``: the work; results go to stdout (``--json``) or files.

Bad input raises :class:`halide_ionics.InputError` (or argparse errors), which this module turns
into one line on stderr and exit status 2, with no output file written; every subcommand
validates its inputs and output paths before any work starts. Failures of the environment are
one line too: an I/O error (permissions, full disk, read-only file system) exits 1, SIGINT 130,
SIGTERM 143; pool workers die with the command (:mod:`halide_ionics.parallel`).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from halide_ionics import __version__
from halide_ionics.errors import InputError

SUBCOMMANDS = ("structure", "kmc", "device", "coefficients", "reproduce", "consistency", "study")

log = logging.getLogger("halide_ionics")


def _load(name):
    try:
        return importlib.import_module(f"halide_ionics.coupling.cli.{name}")
    except ModuleNotFoundError as exc:  # subcommand not built into this version
        if exc.name == f"halide_ionics.coupling.cli.{name}":
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
    """Print ``obj`` as strict JSON on stdout (numpy allowed; NaN/inf printed as null)."""
    from halide_ionics.io import dumps_json

    sys.stdout.write(dumps_json(obj) + "\n")


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (exit status 143)."""


def _on_signal(signum, frame):  # pragma: no cover - exercised in subprocess tests
    # kill the worker processes first: a pool shut down with wait=True (in any library code
    # between here and main) then returns at once instead of finishing the running tasks
    from halide_ionics.parallel import kill_children

    kill_children()
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


_FORK_HOOK = []


def _child_after_fork() -> None:
    # every process forked by a CLI run (pool workers included) dies with the CLI and leaves
    # Ctrl-C to the parent, which tears the pool down and prints one line
    from halide_ionics.parallel import _set_pdeathsig

    _set_pdeathsig()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _install_process_guards():
    if not _FORK_HOOK and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_child_after_fork)
        _FORK_HOOK.append(True)
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread (e.g. called from a worker thread)
            pass
    return previous


def _fail(command: str, message: str, status: int) -> int:
    line = " ".join(str(message).split())  # always one line
    prefix = f"halide-ionics {command}" if command else "halide-ionics"
    print(f"{prefix}: error: {line}", file=sys.stderr)
    return status


#: Environment variables read by the package or its libraries, checked before anything runs.
def _check_environment() -> None:
    v = os.environ.get("NUMBA_NUM_THREADS")
    if v is not None and v.strip() != "":
        try:
            ok = int(v) >= 1
        except ValueError:
            ok = False
        if not ok:
            raise InputError("NUMBA_NUM_THREADS", v, "must be a positive integer (or unset)")
    v = os.environ.get("HALIDE_IONICS_CACHE_DIR")
    if v is not None and v != "" and v.strip() == "":
        raise InputError("HALIDE_IONICS_CACHE_DIR", v, "must be a path (or unset)")


def console_main() -> None:
    """Entry point of the ``halide-ionics`` command: :func:`main`, then exit with its status.

    After an interrupt (130) or SIGTERM (143) the one-line message is already printed and the
    workers killed; the process then ends without the interpreter's exit hooks. (The hook of
    ``concurrent.futures`` wakes the pool's management thread through a pipe the killed pool
    may have closed, and printed an "Exception ignored ... Bad file descriptor" traceback after
    the one line, at random.) Outputs are written atomically, so no exit hook has a file to
    clean up."""
    status = main()
    if status in (130, 143):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # pragma: no cover - closed pipe
                pass
        os._exit(status)
    sys.exit(status)


def main(argv=None) -> int:
    try:
        _check_environment()
    except InputError as exc:
        return _fail("", str(exc), 2)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from halide_ionics.io import describe_os_error
    from halide_ionics.parallel import kill_children

    cmd = args.command
    previous = _install_process_guards()
    try:
        return int(args._run(args) or 0)
    except InputError as exc:
        return _fail(cmd, str(exc), 2)
    except KeyboardInterrupt:
        kill_children()
        print(f"halide-ionics {cmd}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        kill_children()
        print(f"halide-ionics {cmd}: terminated", file=sys.stderr)
        return 143
    except MemoryError:
        kill_children()
        return _fail(cmd, "out of memory (reduce the problem size)", 1)
    except OSError as exc:
        kill_children()
        return _fail(cmd, f"I/O error: {describe_os_error(exc)}", 1)
    finally:
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, TypeError):  # pragma: no cover
                pass
