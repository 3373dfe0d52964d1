"""``halide-ionics kmc``: lattice KMC estimators from the command line.

Example::

    halide-ionics kmc onsager --lattice perovskite-x --cells 6 --x-cl 0.5 --rate-ratio 0.1 \\
        --replicas 16 --hops-per-replica 1000000 --seed 1 --json

Random Br/Cl alloy with one vacancy per replica, zero field, rate ratio w_Cl/w_Br. The Onsager
coefficients ``l_*`` are per vacancy in units of w_Br (docs/model.md §3); standard errors come
from independent replicas seeded by ``SeedSequence(seed).spawn(replicas)``, so the numbers do
not depend on ``--workers``.

    halide-ionics kmc electrode --x-cl 0.5 --overpotential 0.0 --vacancy-fraction 2e-3 --json

Electrode rate law and equilibrium vacancy fraction of a contact (every site of a periodic box
exchanges vacancies with a fixed-composition electrode at the overpotential): creation rate per
ion site and annihilation rate per vacancy (Hz) and the time-averaged vacancy fraction, with
standard errors, next to the dilute random-alloy closed form. ``--vacancy-fraction`` sets μ_V so
that pure CsPbBr3 at zero overpotential has that vacancy fraction.
"""
from __future__ import annotations

import logging

from halide_ionics.errors import InputError, check_int_range, check_range, check_seed

#: bounds of the options (memory, run time and float range; each message says which)
MAX_CELLS = 64            # 3 * 64^3 = 786k halide sites per replica
MAX_REPLICAS = 10_000
MAX_EVENTS = 10**12
MAX_WORKERS = 1024
RATE_RATIO_RANGE = (1e-6, 1e6)
MAX_OVERPOTENTIAL_V = 2.0  # e*eta/kT = 78 at 298 K: electrode rates stay representable

HELP = "lattice KMC estimators (Onsager coefficients, tracer correlation factors, electrode rate law)"
DESCRIPTION = (
    "Lattice kinetic Monte Carlo of Br/Cl ions and vacancies. 'onsager': per-vacancy Onsager "
    "coefficients l_ij = <dR_i.dR_j>/(z s^2 t) (units of w_Br) and tracer correlation factors of a "
    "random alloy with one vacancy, with standard errors from independent replicas, and the "
    "Manning/MAA closed form for reference. 'electrode': electrode creation/annihilation rates and "
    "the equilibrium vacancy fraction of a contact at one composition and overpotential."
)

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="kmc_command", metavar="ACTION")
    p = sub.add_parser("onsager", help="per-vacancy Onsager coefficients of a random alloy")
    p.add_argument("--lattice", default="perovskite-x",
                   help="perovskite-x, sc, bcc or fcc (default perovskite-x)")
    p.add_argument("--cells", type=int, default=6, help="cubic cells per side, periodic (default 6)")
    p.add_argument("--x-cl", type=float, default=0.5, help="Cl fraction of the ions, in [0, 1] (default 0.5)")
    p.add_argument("--rate-ratio", type=float, default=0.1, help="w_Cl/w_Br, > 0 (default 0.1)")
    p.add_argument("--replicas", type=int, default=16, help="independent replicas, >= 2 (default 16)")
    p.add_argument("--hops-per-replica", type=int, default=200_000, help="hops per replica (default 200000)")
    p.add_argument("--segment-hops", type=int, default=None,
                   help="hops per displacement segment (default min(hops, max(2000, 4 N_sites)))")
    p.add_argument("--seed", type=int, default=0, help="non-negative integer seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1: serial)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    e = sub.add_parser("electrode", help="electrode rate law and equilibrium vacancy fraction of a contact")
    e.add_argument("--x-cl", type=float, default=0.5, help="Cl fraction of the contact, in [0, 1] (default 0.5)")
    e.add_argument("--overpotential", type=float, default=0.0, help="electrode overpotential in V (default 0)")
    e.add_argument("--vacancy-fraction", type=float, default=2e-3,
                   help="vacancy fraction of pure CsPbBr3 at zero overpotential, sets mu_V (default 2e-3)")
    e.add_argument("--electrode-rate", type=float, default=None,
                   help="electrode prefactor k_e in Hz (default: the bare Br hop rate)")
    e.add_argument("--cells", type=int, default=6, help="cubic cells per side, periodic, >= 3 (default 6)")
    e.add_argument("--replicas", type=int, default=8, help="independent replicas, >= 2 (default 8)")
    e.add_argument("--events-per-replica", type=int, default=100_000, help="KMC events per replica (default 100000)")
    e.add_argument("--seed", type=int, default=0, help="non-negative integer seed (default 0)")
    e.add_argument("--workers", type=int, default=1, help="worker processes (default 1: serial)")
    e.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    from halide_ionics.coupling.junction import add_cli_arguments

    add_cli_arguments(sub)


def _check_common(args, min_cells: int = 1) -> None:
    check_int_range("--cells", args.cells, min_cells, MAX_CELLS, "3 cells^3 halide sites per replica in memory")
    check_int_range("--replicas", args.replicas, 2, MAX_REPLICAS, "one KMC run each; >= 2 for a standard error")
    check_seed("--seed", args.seed)
    check_int_range("--workers", args.workers, 1, MAX_WORKERS)
    check_range("--x-cl", args.x_cl, 0.0, 1.0)


def _pool_workers(args) -> int:
    from halide_ionics.parallel import cap_workers

    return cap_workers(args.workers, args.replicas, "replicas") if args.workers > 1 else 1


def _run_electrode(args) -> int:
    from halide_ionics.kmc import RateModel, electrode_rates
    from halide_ionics.parallel import process_pool

    _check_common(args, min_cells=3)  # a periodic electrode box needs >= 3 cells per side
    check_int_range("--events-per-replica", args.events_per_replica, 1, MAX_EVENTS, "run time")
    check_range("--vacancy-fraction", args.vacancy_fraction, 0.0, 0.5, lo_open=True,
                why="sets the vacancy chemical potential; 0 means no vacancies")
    check_range("--overpotential", args.overpotential, -MAX_OVERPOTENTIAL_V, MAX_OVERPOTENTIAL_V,
                why="V; e*eta/kT must keep the electrode rates representable")
    if args.electrode_rate is not None:
        check_range("--electrode-rate", args.electrode_rate, 0.0, 1e20, lo_open=True, why="Hz")
    workers = _pool_workers(args)
    model = RateModel().reservoir_for_vacancy_fraction(args.vacancy_fraction)
    kw = dict(x_cl=args.x_cl, overpotential_V=args.overpotential, rate_model=model, cells=args.cells,
              replicas=args.replicas, events_per_replica=args.events_per_replica, seed=args.seed,
              electrode_rate_Hz=args.electrode_rate)
    if workers > 1:
        electrode_rates(**dict(kw, replicas=2, events_per_replica=1))  # validate before the pool
        with process_pool(workers) as ex:
            res = electrode_rates(executor=ex, **kw)
    else:
        res = electrode_rates(**kw)
    d = res.to_dict()
    if args.json:
        from halide_ionics.coupling.cli import print_json

        print_json(d)
    else:
        ref = d["reference"]
        print(f"x_V = {d['vacancy_fraction']:.5g} ± {d['vacancy_fraction_se']:.2g}   (dilute closed form {ref['vacancy_fraction']:.5g})")
        print(f"creation per ion site = {d['creation_rate_Hz']:.5g} ± {d['creation_rate_se_Hz']:.2g} Hz   "
              f"(closed form {ref['creation_rate_Hz']:.5g})")
        print(f"annihilation per vacancy = {d['annihilation_rate_Hz']:.5g} ± {d['annihilation_rate_se_Hz']:.2g} Hz   "
              f"(closed form {ref['annihilation_rate_Hz']:.5g})")
        print(f"{d['hops']} hops, {d['creations_br'] + d['creations_cl']} creations in {d['wall_seconds']:.1f} s")
    return 0


def run(args) -> int:
    from halide_ionics.kmc import onsager_coefficients

    if args.kmc_command == "electrode":
        return _run_electrode(args)
    if args.kmc_command == "junction":
        from halide_ionics.coupling.junction import run_cli

        return run_cli(args)
    if args.kmc_command != "onsager":
        raise InputError("action", args.kmc_command, "must be 'onsager', 'electrode' or 'junction'")
    from halide_ionics.parallel import process_pool

    _check_common(args)
    check_int_range("--hops-per-replica", args.hops_per_replica, 1, MAX_EVENTS, "run time")
    if args.segment_hops is not None:
        check_int_range("--segment-hops", args.segment_hops, 1, MAX_EVENTS)
    check_range("--rate-ratio", args.rate_ratio, *RATE_RATIO_RANGE,
                why="w_Cl/w_Br; beyond, one species never hops in a run and the rates overflow")
    workers = _pool_workers(args)
    kw = dict(lattice=args.lattice, cells=args.cells, x_cl=args.x_cl, rate_ratio=args.rate_ratio,
              replicas=args.replicas, hops_per_replica=args.hops_per_replica, seed=args.seed,
              segment_hops=args.segment_hops)
    if workers > 1:
        # validate in this process first so bad input never reaches the pool
        onsager_coefficients(**dict(kw, replicas=2, hops_per_replica=1, segment_hops=1))
        with process_pool(workers) as ex:
            res = onsager_coefficients(executor=ex, **kw)
    else:
        res = onsager_coefficients(**kw)
    d = res.to_dict()
    if args.json:
        from halide_ionics.coupling.cli import print_json

        print_json(d)
    else:
        print(f"l_BrBr = {d['l_brbr']:.5g} ± {d['l_brbr_se']:.2g}   (MAA {d['manning']['l_brbr']:.5g})")
        print(f"l_BrCl = {d['l_brcl']:.5g} ± {d['l_brcl_se']:.2g}   (MAA {d['manning']['l_brcl']:.5g})")
        print(f"l_ClCl = {d['l_clcl']:.5g} ± {d['l_clcl_se']:.2g}   (MAA {d['manning']['l_clcl']:.5g})")
        print(f"f_Br = {d['f_br']:.5g} ± {d['f_br_se']:.2g}   f_Cl = {d['f_cl']:.5g} ± {d['f_cl_se']:.2g}")
        print(f"{d['hops']} hops in {d['wall_seconds']:.1f} s")
    return 0
