"""``halide-ionics kmc``: lattice KMC estimators from the command line.

Example::

    halide-ionics kmc onsager --lattice perovskite-x --cells 6 --x-cl 0.5 --rate-ratio 0.1 \\
        --replicas 16 --hops-per-replica 1000000 --seed 1 --json

Random Br/Cl alloy with one vacancy per replica, zero field, rate ratio w_Cl/w_Br. The Onsager
coefficients ``l_*`` are per vacancy in units of w_Br (docs/model.md §3); standard errors come
from independent replicas seeded by ``SeedSequence(seed).spawn(replicas)``, so the numbers do
not depend on ``--workers``.
"""
from __future__ import annotations

import logging

from halide_ionics.errors import InputError

HELP = "lattice KMC estimators (Onsager coefficients and tracer correlation factors)"
DESCRIPTION = (
    "Lattice kinetic Monte Carlo of Br/Cl ions and vacancies. 'onsager': per-vacancy Onsager "
    "coefficients l_ij = <dR_i.dR_j>/(z s^2 t) (units of w_Br) and tracer correlation factors of a "
    "random alloy with one vacancy, with standard errors from independent replicas, and the "
    "Manning/MAA closed form for reference."
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


def run(args) -> int:
    from halide_ionics.kmc import onsager_coefficients

    if args.kmc_command != "onsager":
        raise InputError("action", args.kmc_command, "must be 'onsager'")
    if args.workers < 1:
        raise InputError("workers", args.workers, "must be a positive integer")
    kw = dict(lattice=args.lattice, cells=args.cells, x_cl=args.x_cl, rate_ratio=args.rate_ratio,
              replicas=args.replicas, hops_per_replica=args.hops_per_replica, seed=args.seed,
              segment_hops=args.segment_hops)
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        # validate in this process first so bad input never reaches the pool
        onsager_coefficients(**dict(kw, replicas=2, hops_per_replica=1, segment_hops=1))
        with ProcessPoolExecutor(args.workers) as ex:
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
