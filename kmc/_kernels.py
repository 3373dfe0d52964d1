"""Compiled kernels of the lattice KMC engine (private).

Everything here works on plain arrays; :mod:`halide_ionics.kmc.simulation` owns them. The
kernels never allocate per hop and call ``exp``/``log`` only in the rare (~2 %) slow branch of
the exponential variate: all Boltzmann factors come from tables built in numpy by
:mod:`halide_ionics.kmc.rates`, so a run with ``NUMBA_DISABLE_JIT=1`` performs the same
floating-point operations in the same order and gives the same trajectory.

Random numbers per event: one exponential variate for the waiting time (256-layer ziggurat of
Marsaglia & Tsang 2000 on 64-bit xoshiro256** output: 8 bits pick the layer, the top 53 bits
the abscissa; accepted at once ~98 % of the time, otherwise a wedge/tail test with extra draws)
unless the clock is the mean residence time, then one 53-bit uniform ``u`` for the selection:
``r = u·Γ`` is compared with the cumulative sums of the rates (sum-tree descent across leaves,
then the running sum over the leaf's events in order; the first event whose cumulative sum
exceeds ``r`` is chosen).

Single-vacancy fast path (:func:`_run_single`): with exactly one vacancy and no electrodes the
engine runs a specialised loop that keeps the scalar state in locals, tabulates the hop-rate
factor ``ba·bv`` by (species, n_Cl of the ion's site, n_Cl of the vacancy's site, ions around
the ion's site) in ``hopt`` and maintains ``nion``/``site_vac`` only on exit (one vacancy: they
follow from its site). It executes the same events with bitwise the same rates and random
numbers as the general loop (tests check this).

State layout
------------
``occ[N]``        occupancy codes (BR=0, CL=1, VAC=2; :mod:`halide_ionics.structures.species`)
``ncl[N]``        number of Cl ions among the neighbours of each site
``nion[N]``       number of ions (Br or Cl) among the neighbours of each site
``site_vac[N]``   vacancy slot of a vacant site, -1 otherwise
``vac_site[C]``   site of vacancy slot q (slots 0..n_vac-1 are live)
``vrates[C,z+2]`` rates of the events owned by vacancy slot q: the z hops of the ions on its
                  neighbour sites into it, then annihilation filling it with Br, with Cl
``crate[M]``      creation rate of electrode site e (ion leaves into the electrode)
``cfac[M,2,z+1]`` creation prefactor of electrode site e for species s with n Cl neighbours:
                  ``k_e exp(−(E_a,el(s,n) − E_a,Br)/kT) exp(−(E_V,Br − μ_V − (ψ_el − ψ_x))/2kT)``
``afac[M,2,z+1]`` the annihilation counterpart (same species factor, opposite energy sign)
``el_p[M]``       Cl fraction of the ions electrode site e supplies (-1: that of its neighbours)
``tree[2L]``      binary sum tree; leaf q < C is vacancy slot q, leaf C+e electrode site e
``iscal``         [0] n_vac, [1] steps (all events), [2] next ion id, [3] stamp,
                  [4] hops (ion hops only), [5] L (leaves), [6] C (vacancy capacity)
``fscal``         [0] time (s), [1] time of the pending event (-1: none drawn)
``rng[4]``        xoshiro256** state (uint64)
``hopt[2,z+1,z+1,z+1]`` ``ba[s, n_i + n_v − s] · bv[n_i + s, m]`` for an ion of species s on a site
                  with n_i Cl neighbours hopping into a vacancy with n_v, m = ions around the
                  ion's site after the hop (the clean-hop factor; unused entries 0)

Displacements are integers in units of half a lattice constant (every jump vector of the
supported lattices is a small integer vector in these units), so all transport accumulators
are exact integers.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

VAC = 2  # halide_ionics.structures.species.VAC (numba needs a module-level literal)

_U11 = np.uint64(11)
P4 = np.uint64(4)  # row length of the packed site table (unsigned: index arithmetic stays integer)
_U17 = np.uint64(17)
_U7 = np.uint64(7)
_U57 = np.uint64(57)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_INV53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def _next_double(s):
    """xoshiro256** step; returns a double in [0, 1) with 53 random bits."""
    x = s[1] * _U5
    result = ((x << _U7) | (x >> _U57)) * _U9
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = (s[3] << _U45) | (s[3] >> _U19)
    return (result >> _U11) * _INV53


@njit(cache=True, inline='always')
def _xoshiro64(s0, s1, s2, s3):
    """xoshiro256** on a state held in locals: (64-bit output, new state)."""
    x = s1 * _U5
    result = ((x << _U7) | (x >> _U57)) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    return result, s0, s1, s2, s3


def _ziggurat_exp_tables():
    """Marsaglia & Tsang (2000) 256-layer ziggurat tables for Exp(1), 53-bit abscissae:
    acceptance thresholds ``ke`` (uint64), widths ``we`` and densities ``fe`` = exp(−x_i)."""
    m2 = 2.0 ** 53
    de = _ZIG_R
    te = de
    ve = 3.949659822581572e-3  # area of each layer
    ke = np.zeros(256, dtype=np.uint64)
    we = np.zeros(256)
    fe = np.zeros(256)
    q = ve / math.exp(-de)
    ke[0] = np.uint64(int((de / q) * m2))
    we[0] = q / m2
    we[255] = de / m2
    fe[0] = 1.0
    fe[255] = math.exp(-de)
    for i in range(254, 0, -1):
        de = -math.log(ve / de + math.exp(-de))
        ke[i + 1] = np.uint64(int((de / te) * m2))
        te = de
        fe[i] = math.exp(-de)
        we[i] = de / m2
    return ke, we, fe


_ZIG_R = 7.697117470131487  # start of the tail
_ZKE, _ZWE, _ZFE = _ziggurat_exp_tables()
_U255 = np.uint64(255)
_LOWBIT = np.array([0] + [(b & -b).bit_length() - 1 for b in range(1, 4096)], dtype=np.int64)  # lowest set bit (z <= 12)


@njit(cache=True)
def _exp_variate(s0, s1, s2, s3):
    """Exp(1) variate by the ziggurat (state in locals): (x, new state)."""
    while True:
        ri, s0, s1, s2, s3 = _xoshiro64(s0, s1, s2, s3)
        iz = ri & _U255
        jz = ri >> _U11
        x = jz * _ZWE[iz]
        if jz < _ZKE[iz]:
            return x, s0, s1, s2, s3
        u, s0, s1, s2, s3 = _xoshiro64(s0, s1, s2, s3)
        u = (u >> _U11) * _INV53
        if iz == 0:
            return _ZIG_R - math.log(1.0 - u), s0, s1, s2, s3
        if _ZFE[iz] + u * (_ZFE[iz - 1] - _ZFE[iz]) < math.exp(-x):
            return x, s0, s1, s2, s3


@njit(cache=True)
def _next_exponential(s):
    """Exp(1) variate from the xoshiro256** state array ``s``."""
    x, s[0], s[1], s[2], s[3] = _exp_variate(s[0], s[1], s[2], s[3])
    return x


@njit(cache=True)
def _exp_samples(s, n):
    """``n`` Exp(1) variates (for tests of the generator)."""
    out = np.empty(n)
    for j in range(n):
        out[j] = _next_exponential(s)
    return out


@njit(cache=True, inline='always')
def _tree_set(tree, nleaf, leaf, val):
    """Set a leaf and the sums above it. The running sum stays in a register (each parent is
    its two children added: IEEE addition is commutative, so ``val + sibling`` is bitwise
    ``tree[2n] + tree[2n+1]``) instead of being stored and read back at every level."""
    n = nleaf + leaf
    tree[n] = val
    while n > 1:
        val = val + tree[n ^ 1]
        n >>= 1
        tree[n] = val


@njit(cache=True, inline='always')
def _is_neighbor(nb, a, b):
    for k in range(nb.shape[1]):
        if nb[a, k] == b:
            return True
    return False


@njit(cache=True)
def _hop_other_factor(i, v, c, nb, occ, ncl, nion, bv, ivb):
    """exp(-dE/2kT) from vacancies other than v whose shells change when an ion moves i -> v."""
    f = 1.0
    z = nb.shape[1]
    for k in range(z):
        a = nb[i, k]
        if a >= 0 and a != v and occ[a] == VAC:
            if not _is_neighbor(nb, v, a):
                f *= bv[ncl[a] - c, nion[a] - 1] * ivb[ncl[a], nion[a]]
    for k in range(z):
        a = nb[v, k]
        if a >= 0 and a != i and occ[a] == VAC:
            if not _is_neighbor(nb, i, a):
                f *= bv[ncl[a] + c, nion[a] + 1] * ivb[ncl[a], nion[a]]
    return f


@njit(cache=True, inline='always')
def _shell_factor(x, c, sign, nb, occ, ncl, nion, bv, ivb):
    """exp(-dE/2kT) of the vacancies around x when an ion of species c leaves (sign -1) or
    arrives at (sign +1) site x."""
    f = 1.0
    for k in range(nb.shape[1]):
        a = nb[x, k]
        if a >= 0 and occ[a] == VAC:
            f *= bv[ncl[a] + sign * c, nion[a] + sign] * ivb[ncl[a], nion[a]]
    return f


@njit(cache=True, inline='always')
def _vac_rates(q, v, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx, el_p, afac, vrates):
    """Fill vrates[q] for the vacancy on site v; return their sum."""
    z = nb.shape[1]
    iv = ivb[ncl[v], nion[v]]
    clean_v = nion[v] == zval[v]
    tot = 0.0
    for k in range(z):
        r = 0.0
        i = nb[v, k]
        if i >= 0:
            s = occ[i]
            if s != VAC:
                c = np.int64(s)
                r = ba[c, ncl[i] + ncl[v] - c] * bv[ncl[i] + c, nion[i] + 1] * iv * vfac[v, k]
                if not (clean_v and nion[i] + 1 == zval[i]):
                    f = _hop_other_factor(i, v, c, nb, occ, ncl, nion, bv, ivb)
                    r *= f
        vrates[q, k] = r
        tot += r
    e = el_idx[v]
    if e >= 0:
        if el_p[e] >= 0.0:
            p_cl = el_p[e]  # electrode of fixed composition
        elif nion[v] > 0:
            p_cl = ncl[v] / nion[v]
        else:
            p_cl = 0.5
        n = ncl[v]
        # shell factors first, then the products in the formula's order (same values; numba
        # compiles a loop call inside a product expression several times slower)
        f0 = _shell_factor(v, 0, 1, nb, occ, ncl, nion, bv, ivb)
        f1 = _shell_factor(v, 1, 1, nb, occ, ncl, nion, bv, ivb)
        r0 = (1.0 - p_cl) * afac[e, 0, n] * iv * f0
        r1 = p_cl * afac[e, 1, n] * iv * f1
        vrates[q, z] = r0
        vrates[q, z + 1] = r1
        tot += r0
        tot += r1
    else:
        vrates[q, z] = 0.0
        vrates[q, z + 1] = 0.0
    return tot


@njit(cache=True, inline='always')
def _creation_rate(x, e, nb, occ, ncl, nion, bv, ivb, cfac):
    s = occ[x]
    if s == VAC:
        return 0.0
    c = np.int64(s)
    f = _shell_factor(x, c, -1, nb, occ, ncl, nion, bv, ivb)  # first: see _vac_rates
    return cfac[e, c, ncl[x]] * bv[ncl[x], nion[x]] * f


@njit(cache=True)
def _refresh_near(c0, c1, iscal, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx, el_p, afac,
                  cfac, site_vac, vrates, crate, tree, vstamp, estamp, d2s, d2i):
    """Recompute every rate that can depend on the sites changed by the last event (c0, c1).

    The event changed the occupancy of c0/c1 and the shells of their neighbours. Centres: c0, c1
    and their vacant neighbours (whose shell energies enter other events' ΔE). A vacancy's rates
    read occupancies and shells up to two shells away, so every vacancy within two shells of a
    centre is recomputed; a creation rate reads the site and its neighbours only, so the
    electrode sites on and next to a centre are. A leaf of the sum tree is rewritten only when
    its value changed (the tree is a function of its leaves: bitwise the same either way).
    """
    stamp = iscal[3] + 1
    iscal[3] = stamp
    nleaf = iscal[5]
    cap = iscal[6]
    z = nb.shape[1]
    has_el = crate.shape[0] > 0
    for side in range(2):
        base = c0 if side == 0 else c1
        if base < 0:
            continue
        for j in range(z + 1):
            if j == 0:
                c = base
            else:
                c = nb[base, j - 1]
                if c < 0 or occ[c] != VAC or (side == 1 and c == c0):
                    continue
            for p in range(d2s[c], d2s[c + 1]):
                y = d2i[p]
                if occ[y] == VAC:
                    q = site_vac[y]
                    if vstamp[q] != stamp:
                        vstamp[q] = stamp
                        tot = _vac_rates(q, y, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx, el_p, afac,
                                         vrates)
                        if tot != tree[nleaf + q]:
                            _tree_set(tree, nleaf, q, tot)
            if has_el:
                for k in range(z + 1):
                    y = c if k == z else nb[c, k]
                    if y < 0:
                        continue
                    e = el_idx[y]
                    if e >= 0 and estamp[e] != stamp:
                        estamp[e] = stamp
                        r = _creation_rate(y, e, nb, occ, ncl, nion, bv, ivb, cfac)
                        if r != crate[e]:
                            crate[e] = r
                            _tree_set(tree, nleaf, cap + e, r)


@njit(cache=True)
def _refresh_all(iscal, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx, el_p, el_sites, afac,
                 cfac, vac_site, vrates, crate, tree):
    """Recompute all rates and the whole sum tree from the state."""
    nleaf = iscal[5]
    cap = iscal[6]
    for n in range(tree.shape[0]):
        tree[n] = 0.0
    for q in range(iscal[0]):
        tree[nleaf + q] = _vac_rates(q, vac_site[q], nb, zval, occ, ncl, nion, ba, bv, ivb, vfac,
                                     el_idx, el_p, afac, vrates)
    for e in range(el_sites.shape[0]):
        r = _creation_rate(el_sites[e], e, nb, occ, ncl, nion, bv, ivb, cfac)
        crate[e] = r
        tree[nleaf + cap + e] = r
    for n in range(nleaf - 1, 0, -1):
        tree[n] = tree[2 * n] + tree[2 * n + 1]


@njit(cache=True, inline='always')
def _potential_exponent(psi, nb, jv, field, half_a, two_kt, x, k):
    """``(ψ_x − ψ_nb[x,k] + E_z·jv_z·a/2)/2kT`` (slot without a neighbour: ψ of site 0, as the
    numpy formula in :meth:`Simulation._build_potential_tables` had it): the same operations in
    the same order as that formula, hence bitwise its values."""
    y = nb[x, k]
    if y < 0:
        y = 0
    return ((psi[x] - psi[y]) + (field * np.float64(jv[x, k, 2])) * half_a) / two_kt


@njit(cache=True)
def _potential_exponents(psi, nb, jv, field, half_a, two_kt, expo):
    """``expo[x, k]`` = :func:`_potential_exponent` for every site and neighbour slot; returns
    max |expo| (NaN if any is NaN). The exponential is taken by numpy."""
    amax = 0.0
    for x in range(nb.shape[0]):
        for k in range(nb.shape[1]):
            e = _potential_exponent(psi, nb, jv, field, half_a, two_kt, x, k)
            expo[x, k] = e
            a = abs(e)
            if a > amax or a != a:
                amax = a
    return amax


@njit(cache=True)
def _potential_exponents_at(psi, nb, jv, field, half_a, two_kt, idx, expo):
    """:func:`_potential_exponents` at the flat entries ``idx`` only (``expo[t]`` for entry
    ``idx[t]``); returns their max |expo|."""
    z = nb.shape[1]
    amax = 0.0
    for t in range(idx.shape[0]):
        e = _potential_exponent(psi, nb, jv, field, half_a, two_kt, idx[t] // z, idx[t] % z)
        expo[t] = e
        a = abs(e)
        if a > amax or a != a:
            amax = a
    return amax


@njit(cache=True)
def _gathered_factors(ex, cls, nb, vfac):
    """``vfac[x, k] = ex[cls[x·z + k]]`` where a neighbour exists, 0 elsewhere (in place)."""
    z = nb.shape[1]
    for x in range(nb.shape[0]):
        for k in range(z):
            vfac[x, k] = ex[cls[x * z + k]] if nb[x, k] >= 0 else 0.0


@njit(cache=True)
def _masked_factors(ex, nb, vfac):
    """``vfac = ex`` where a neighbour exists, 0 elsewhere (in place)."""
    for x in range(nb.shape[0]):
        for k in range(nb.shape[1]):
            vfac[x, k] = ex[x, k] if nb[x, k] >= 0 else 0.0


@njit(cache=True)
def _electrode_factors(ke, ex_minus, ex_plus, ks, cfac, afac):
    """``cfac[e] = (k_e e^{−x_e}) K``, ``afac[e] = (k_e e^{+x_e}) K`` in place (the numpy
    broadcast's operations in its order); False if any factor is not finite."""
    ok = True
    for e in range(cfac.shape[0]):
        pc = ke[e] * ex_minus[e]
        pa = ke[e] * ex_plus[e]
        for s in range(ks.shape[0]):
            for n in range(ks.shape[1]):
                a = pc * ks[s, n]
                b = pa * ks[s, n]
                cfac[e, s, n] = a
                afac[e, s, n] = b
                if not (math.isfinite(a) and math.isfinite(b)):
                    ok = False
    return ok


@njit(cache=True)
def _refresh_vacancies(iscal, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx, el_p, afac, vac_site,
                       vrates, tree):
    """:func:`_refresh_all` when only the vacancies' rates can have changed (the electrode
    factors, hence every creation rate, are unchanged): the vacancy leaves are recomputed and
    rewritten where they changed. Bitwise the same tree (a function of its leaves; the leaves of
    free slots are 0 in both)."""
    nleaf = iscal[5]
    for q in range(iscal[0]):
        tot = _vac_rates(q, vac_site[q], nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx, el_p, afac, vrates)
        if tot != tree[nleaf + q]:
            _tree_set(tree, nleaf, q, tot)


@njit(cache=True)
def _shell_update(x, c, sign, nb, ncl, nion):
    for k in range(nb.shape[1]):
        y = nb[x, k]
        if y >= 0:
            nion[y] += sign
            ncl[y] += sign * c


@njit(cache=True)
def _run_single(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic,
                hopt, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR,
                ion_id, ion_R, ion_nj, ring, ion_W, corr, z):
    """:func:`_single_loop` for coordination ``z`` (= ``nb.shape[1]``): called with a literal
    z by :func:`_run_single8` etc., whose specialisations unroll the neighbour loops (~1.5x)."""
    return _single_loop(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval,
                        periodic, hopt, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr,
                        vres, dR, ion_id, ion_R, ion_nj, ring, ion_W, corr, z)


@njit(cache=True)
def _run_single6(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic, hopt,
                 ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR, ion_id, ion_R, ion_nj,
                 ring, ion_W, corr):
    return _run_single(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic, hopt,
                       ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR, ion_id, ion_R, ion_nj,
                       ring, ion_W, corr, 6)


@njit(cache=True)
def _run_single8(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic, hopt,
                 ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR, ion_id, ion_R, ion_nj,
                 ring, ion_W, corr):
    return _run_single(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic, hopt,
                       ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR, ion_id, ion_R, ion_nj,
                       ring, ion_W, corr, 8)


@njit(cache=True)
def _run_single12(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic, hopt,
                  ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR, ion_id, ion_R, ion_nj,
                  ring, ion_W, corr):
    return _run_single(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic, hopt,
                       ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR, ion_id, ion_R, ion_nj,
                       ring, ion_W, corr, 12)


@njit(cache=True)
def _single_loop(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, nb, jv, zval, periodic,
                 hopt, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, varr, vres, dR,
                 ion_id, ion_R, ion_nj, ring, ion_W, corr, z):
    """:func:`_run` for exactly one vacancy and no electrodes (module docstring).

    With one vacancy every neighbour of the vacancy is an ion whose only vacant neighbour is
    the vacancy, so each hop is "clean" (no other vacancy's shell energy enters), the ions
    around a neighbour a after the hop are ``zval[a]`` and those around the vacancy's site
    ``zval[v]``; ``nion`` and ``site_vac`` are therefore updated only on exit. ``periodic``: every
    site has z neighbours (no ``-1`` entries in ``nb``). Indices are cast to unsigned integers so
    that numba emits no negative-index wraparound code.
    """
    s0 = rng[0]
    s1 = rng[1]
    s2 = rng[2]
    s3 = rng[3]
    t = fscal[0]
    pend = fscal[1]
    steps = iscal[1]
    hops = iscal[4]
    v0 = np.uint64(vac_site[0])
    v = v0
    ta = varr[0]
    code = 0
    rates = vrates[0]
    cum = np.empty(z)
    tot = 0.0
    lastpos = 0
    for k in range(z):
        tot += rates[k]
        cum[k] = tot
        if rates[k] > 0.0:
            lastpos = k
    zu = np.uint64(z)
    while steps < step_target:
        if pend < 0.0:
            if not (tot > 0.0):
                code = 4
                break
            if clock_mean:
                dt = 1.0 / tot
            else:
                e, s0, s1, s2, s3 = _exp_variate(s0, s1, s2, s3)
                dt = e / tot
            pend = t + dt
        if pend > t_max:
            t = t_max
            code = 1
            break
        t = pend
        pend = -1.0
        u, s0, s1, s2, s3 = _xoshiro64(s0, s1, s2, s3)
        r = ((u >> _U11) * _INV53) * tot
        steps += 1
        kk = 0
        for k in range(z):
            kk += r >= cum[k]
        if kk >= z:
            kk = lastpos
        kku = np.uint64(kk)
        i = np.uint64(nb[v, kku])
        s = occ[i]
        c = np.int64(s)
        occ[v] = s
        occ[i] = VAC
        vres[v] += t - ta
        ta = t
        if periodic:
            for k in range(z):
                ncl[np.uint64(nb[i, k])] -= c
                ncl[np.uint64(nb[v, k])] += c
        else:
            for k in range(z):
                y = nb[i, k]
                if y >= 0:
                    ncl[np.uint64(y)] -= c
                y = nb[v, k]
                if y >= 0:
                    ncl[np.uint64(y)] += c
        dx = -np.int64(jv[v, kku, 0])
        dy = -np.int64(jv[v, kku, 1])
        dz = -np.int64(jv[v, kku, 2])
        cu = np.uint64(c)
        dR[cu, 0] += dx
        dR[cu, 1] += dy
        dR[cu, 2] += dz
        hops += 1
        if track:
            idn = ion_id[i]
            ion_id[v] = idn
            ion_id[i] = -1
            ion_R[idn, 0] += dx
            ion_R[idn, 1] += dy
            ion_R[idn, 2] += dz
            dd = dx * dx + dy * dy + dz * dz
            corr[c, 0] += dd + 2 * (dx * ion_W[idn, 0] + dy * ion_W[idn, 1] + dz * ion_W[idn, 2])
            corr[c, 1] += dd
            nj = ion_nj[idn]
            slot = nj % window
            if nj >= window:
                ion_W[idn, 0] -= ring[idn, slot, 0]
                ion_W[idn, 1] -= ring[idn, slot, 1]
                ion_W[idn, 2] -= ring[idn, slot, 2]
            ring[idn, slot, 0] = dx
            ring[idn, slot, 1] = dy
            ring[idn, slot, 2] = dz
            ion_W[idn, 0] += dx
            ion_W[idn, 1] += dy
            ion_W[idn, 2] += dz
            ion_nj[idn] = nj + 1
        v = i
        nv = np.uint64(ncl[v])
        tot = 0.0
        if periodic:
            iv = ivb[nv, zu]
            for k in range(z):
                a = np.uint64(nb[v, k])
                w = hopt[np.uint64(occ[a]), np.uint64(ncl[a]), nv, zu] * iv * vfac[v, k]
                rates[k] = w
                tot += w
                cum[k] = tot
                if w > 0.0:
                    lastpos = k
        else:
            iv = ivb[nv, np.uint64(zval[v])]
            for k in range(z):
                w = 0.0
                a = nb[v, k]
                if a >= 0:
                    au = np.uint64(a)
                    w = hopt[np.uint64(occ[au]), np.uint64(ncl[au]), nv, np.uint64(zval[au])] * iv * vfac[v, k]
                    if w > 0.0:
                        lastpos = k
                rates[k] = w
                tot += w
                cum[k] = tot
    # shells and slots of the vacancy's final site (one vacancy: nion = zval - [next to it])
    for k in range(z):
        y = nb[v0, k]
        if y >= 0:
            nion[y] += 1
    for k in range(z):
        y = nb[v, k]
        if y >= 0:
            nion[y] -= 1
    site_vac[v0] = -1
    site_vac[v] = 0
    rng[0] = s0
    rng[1] = s1
    rng[2] = s2
    rng[3] = s3
    fscal[0] = t
    fscal[1] = pend
    iscal[1] = steps
    iscal[4] = hops
    vac_site[0] = v
    varr[0] = ta
    _tree_set(tree, iscal[5], 0, tot)
    return code


@njit(cache=True)
def _run(step_target, t_max, iscal, fscal, rng, clock_mean, track, window,
         nb, jv, zval, d2s, d2i, ba, bv, ivb, vfac, el_idx, el_p, el_sites, el_of,
         afac, cfac,
         occ, ncl, nion, site_vac, vac_site, vrates, crate, tree, vstamp, estamp, varr, vres,
         dR, ion_id, ion_R, ion_nj, ion_sp, ring, ion_W, corr, el_count):
    """Execute events until ``iscal[1] == step_target`` or the clock would pass ``t_max``: the
    general loop (any number of vacancies, electrodes). :func:`_run_single` (one vacancy) and
    :func:`_run_multi` (several, z <= 12), both without electrodes, give the same trajectory;
    :meth:`Simulation._kernel` picks one per call (choosing in Python keeps the fast loops, and
    their per-z specialisations, uncompiled until a run needs them).

    Returns 0 (step target reached), 1 (time limit), 2 (vacancy slots full), 3 (ion ids full),
    4 (no event possible).
    """
    z = nb.shape[1]
    nel = el_sites.shape[0]
    while iscal[1] < step_target:
        cap = iscal[6]
        if iscal[0] >= cap and nel > 0:
            return 2
        if track and iscal[2] >= ion_R.shape[0] and nel > 0:
            return 3
        if fscal[1] < 0.0:
            total = tree[1]
            if not (total > 0.0):
                return 4
            if clock_mean:
                dt = 1.0 / total
            else:
                dt = _next_exponential(rng) / total
            fscal[1] = fscal[0] + dt
        if fscal[1] > t_max:
            fscal[0] = t_max
            return 1
        t = fscal[1]
        fscal[0] = t
        fscal[1] = -1.0
        # --- select: descend the sum tree ---
        nleaf = iscal[5]
        r = _next_double(rng) * tree[1]
        n = 1
        while n < nleaf:
            left = tree[2 * n]
            if r < left or tree[2 * n + 1] <= 0.0:
                n = 2 * n
            else:
                r -= left
                n = 2 * n + 1
        leaf = n - nleaf
        iscal[1] += 1
        if leaf < cap:
            q = leaf
            v = vac_site[q]
            kk = -1
            last = -1
            cum = 0.0
            for k in range(z + 2):
                w = vrates[q, k]
                if w > 0.0:
                    last = k
                    cum += w
                    if r < cum:
                        kk = k
                        break
            if kk < 0:
                kk = last
            if kk < z:
                # ---- ion hop i -> v: the vacancy moves to i ----
                i = nb[v, kk]
                s = occ[i]
                c = np.int64(s)
                occ[v] = s
                occ[i] = VAC
                site_vac[v] = -1
                site_vac[i] = q
                vac_site[q] = i
                vres[v] += t - varr[q]
                varr[q] = t
                for k in range(z):  # shells: the ion left i and arrived at v
                    y = nb[i, k]
                    if y >= 0:
                        nion[y] -= 1
                        ncl[y] -= c
                    y = nb[v, k]
                    if y >= 0:
                        nion[y] += 1
                        ncl[y] += c
                dx = -np.int64(jv[v, kk, 0])
                dy = -np.int64(jv[v, kk, 1])
                dz = -np.int64(jv[v, kk, 2])
                dR[c, 0] += dx
                dR[c, 1] += dy
                dR[c, 2] += dz
                iscal[4] += 1
                if track:
                    idn = ion_id[i]
                    ion_id[v] = idn
                    ion_id[i] = -1
                    ion_R[idn, 0] += dx
                    ion_R[idn, 1] += dy
                    ion_R[idn, 2] += dz
                    dd = dx * dx + dy * dy + dz * dz
                    corr[c, 0] += dd + 2 * (dx * ion_W[idn, 0] + dy * ion_W[idn, 1] + dz * ion_W[idn, 2])
                    corr[c, 1] += dd
                    nj = ion_nj[idn]
                    slot = nj % window
                    if nj >= window:
                        ion_W[idn, 0] -= ring[idn, slot, 0]
                        ion_W[idn, 1] -= ring[idn, slot, 1]
                        ion_W[idn, 2] -= ring[idn, slot, 2]
                    ring[idn, slot, 0] = dx
                    ring[idn, slot, 1] = dy
                    ring[idn, slot, 2] = dz
                    ion_W[idn, 0] += dx
                    ion_W[idn, 1] += dy
                    ion_W[idn, 2] += dz
                    ion_nj[idn] = nj + 1
                # rates of the moved vacancy (now on i); a hand-inlined copy of _vac_rates,
                # which tests check against it (calls with many array arguments are slow)
                if el_idx[i] >= 0:
                    tot = _vac_rates(q, i, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx, el_p, afac, vrates)
                else:
                    iv = ivb[ncl[i], nion[i]]
                    clean_v = nion[i] == zval[i]
                    tot = 0.0
                    for k in range(z):
                        w = 0.0
                        a = nb[i, k]
                        if a >= 0:
                            sa = occ[a]
                            if sa != VAC:
                                ca = np.int64(sa)
                                w = ba[ca, ncl[a] + ncl[i] - ca] * bv[ncl[a] + ca, nion[a] + 1] * iv * vfac[i, k]
                                if not (clean_v and nion[a] + 1 == zval[a]):
                                    f = _hop_other_factor(a, i, ca, nb, occ, ncl, nion, bv, ivb)
                                    w *= f
                        vrates[q, k] = w
                        tot += w
                    vrates[q, z] = 0.0
                    vrates[q, z + 1] = 0.0
                _tree_set(tree, nleaf, q, tot)
                if iscal[0] > 1 or nel > 0:
                    vstamp[q] = iscal[3] + 1
                    _refresh_near(i, v, iscal, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx,
                                  el_p, afac, cfac, site_vac, vrates, crate, tree, vstamp, estamp, d2s, d2i)
            else:
                # ---- annihilation: vacancy on v filled from the electrode ----
                c = np.int64(kk - z)
                occ[v] = c
                vres[v] += t - varr[q]
                lastq = iscal[0] - 1
                if q != lastq:
                    u = vac_site[lastq]
                    vac_site[q] = u
                    site_vac[u] = q
                    for k in range(z + 2):
                        vrates[q, k] = vrates[lastq, k]
                    varr[q] = varr[lastq]
                    _tree_set(tree, nleaf, q, tree[nleaf + lastq])
                _tree_set(tree, nleaf, lastq, 0.0)
                iscal[0] = lastq
                site_vac[v] = -1
                _shell_update(v, c, 1, nb, ncl, nion)
                el_count[el_of[el_idx[v]], 1, c] += 1
                if track:
                    idn = iscal[2]
                    iscal[2] += 1
                    ion_id[v] = idn
                    ion_sp[idn] = c
                _refresh_near(v, -1, iscal, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx,
                              el_p, afac, cfac, site_vac, vrates, crate, tree, vstamp, estamp, d2s, d2i)
        else:
            # ---- creation: the ion on electrode site x leaves into the electrode ----
            e = leaf - cap
            x = el_sites[e]
            c = np.int64(occ[x])
            q = iscal[0]
            iscal[0] = q + 1
            occ[x] = VAC
            site_vac[x] = q
            vac_site[q] = x
            varr[q] = t
            _shell_update(x, c, -1, nb, ncl, nion)
            el_count[el_of[e], 0, c] += 1
            if track:
                ion_id[x] = -1
            _refresh_near(x, -1, iscal, nb, zval, occ, ncl, nion, ba, bv, ivb, vfac, el_idx,
                          el_p, afac, cfac, site_vac, vrates, crate, tree, vstamp, estamp, d2s, d2i)
    return 0


# ---- many-vacancy fast path (no electrodes) ----------------------------------------------------
# With many vacancies each event happens at a random vacancy whose neighbourhood is cold in the
# cache; the loop therefore keeps occ, ncl, nion and zval of every site packed in one int8 row
# ``pk[site] = (occ, ncl, nion, zval)`` (one cache line per neighbour instead of four; without
# open ends and with z <= 8 the last byte holds the site's vacant-neighbour mask instead, see
# below), built on entry and written back to the state arrays on exit. Its helpers are inlined at the numba IR
# level (``inline='always'``): a call passing a dozen arrays costs more than the 8 rates it
# computes. The refresh after a hop finds the vacancies within two shells of the centres by
# walking neighbour rows (second shell only where a neighbour has another vacant neighbour),
# not by scanning the two-shell list of the general loop (same set, same stamps). Which of a
# site's neighbours to visit is decided without branches, as a bit mask over its neighbour slots,
# and the loops run over the set bits (``_LOWBIT``; z <= 12): the outcome of a per-slot test
# changes from hop to hop, and its mispredicted branches, not the loads, set the cost at 1 %
# vacancies (measured with cycle counters). Next come the cache misses: at 16³ cells the tables
# read at random sites (≈ 2 MB) overflow a 1 MB L2, so with one potential everywhere (the
# Onsager and coefficient runs) the hop field factor comes from a table by jump class
# (``jcls``, one byte per slot) instead of the 8-byte ``vfac`` entry, the jump vector from the
# same class (``jtab``), and the common-neighbour masks are int16 (paired A/B at 1 %: 1.06×);
# since then nb, cnm, rev and jcls share one 64-byte row per site (``geo``, :func:`_run_multi`).
# An extra dependent load costs more than a miss saved: per-site row classes for these tables
# (0.83×), an int16 neighbour table (0.91×) and a 16-bit site word (1.00×) were measured and
# dropped.
# Per-site vacant-neighbour masks (``vmk[x]``, bit k: the site in slot k of x is vacant; kept
# by the hop itself through ``rev``, the slot of x in its neighbour's row) replace the scans of
# a site's neighbours for vacancies: one load where the refresh lists a site's vacant
# neighbours, where the rates need v's vacant neighbours, and, with the common-neighbour mask
# of i at v's slot, i's vacant neighbours that are neither v nor next to v. On a lattice without
# open ends (``per``: every site has z neighbours) the loop is compiled without the open-end
# tests and reads z for zval; with z <= 8 there the mask lives in the packed row's slot 3
# (:func:`_vm`: one cache line per touched site instead of two; 1.05×, median of 8 separate
# processes). Paired A/B at 1 % on 16³ cells: masks 1.11×, with ``per`` 1.21×,
# state bitwise equal. Measured and dropped: nion derived from the masks (a popcount table
# instead of the byte it updates: 0.88×), the moved vacancy's clean rates fused with its masks
# and the refresh skipped where no other vacancy is within reach (1.00×; the branch it adds
# mispredicts as often as the work it saves), speculative prefetch of the next event's rows
# (its guess is right 91 % of the time; 1.00×), unsigned indices throughout (0.98×), recomputing
# only the slots of a listed vacancy whose ion site is next to i or v where nothing else can
# have changed (56 % of the listed vacancies, 1.4 of 8 slots each; bitwise equal, 1.00×).
# Counted under valgrind before the masks: ~2300 instructions per hop at 1 % (one vacancy:
# ~300), 180 conditional branches.
# Latency, not memory, is what is left: the hop is one dependency chain (tree descent ->
# event -> move -> rates -> sum tree -> next descent). Off that chain: the walk masks of the
# refresh are built in the loop that updates the shell counts (the values are in hand), the
# descent takes r − left by a select (no int-to-float conversion and multiply per level), and
# each vacancy's cumulative rate sums are kept beside its rates (``vcum``, written where the
# rates are summed anyway), so the event is chosen by 8 independent compares instead of after
# 8 dependent additions. Together ~1.1× at 1 % on 16³ cells; single steps are below the noise
# of this machine, whose speed differs by ±10 % from one process to the next for the same code
# (placement), so each was judged over several processes. Memory: doubling the neighbour and
# common-neighbour tables (+0.6 MB) or renumbering the sites in Morton order changed nothing
# measurable. The sum-tree descent two levels per step (in :func:`_multi_loop`): 1.09×.
# Measured and dropped after it: three levels per step (1.01×), per-vacancy copies of the
# neighbour rows loaded as soon as the vacancy is chosen (0.97×), the clean rates of all slots
# in one simple loop with the other-vacancy factors applied after it (0.86–1.03×), and
# ``error_model='numpy'`` (1.01×). Sampled at 1 % after the descent change: rates of the
# moved vacancy ~15 %, of the other listed vacancies ~20 % (0.62 per hop, each near another
# vacancy: the non-clean branches), the move loop ~19 %, the refresh's walks ~10 %, the
# descent and event choice ~13 %.
@njit(cache=True, inline='always')
def _vm(pk, vmk, u, z, per):
    """Vacant-neighbour mask of site u: in the packed row (slot 3) when per and z <= 8."""
    if per and z <= 8:
        return np.int64(pk[u * P4 + np.uint64(3)]) & 255
    return np.int64(vmk[u])


@njit(cache=True, inline='always')
def _vm_clear(pk, vmk, u, b, z, per):
    """Clear bit b (slot b of u is no longer vacant) of u's vacant-neighbour mask (see :func:`_vm`)."""
    if per and z <= 8:
        pk[u * P4 + np.uint64(3)] &= ~(np.int8(1) << np.int8(b))
    else:
        vmk[u] &= ~(np.int16(1) << np.int16(b))


@njit(cache=True, inline='always')
def _vm_set(pk, vmk, u, b, z, per):
    """Set bit b (slot b of u is now vacant) of u's vacant-neighbour mask (see :func:`_vm`)."""
    if per and z <= 8:
        pk[u * P4 + np.uint64(3)] |= np.int8(1) << np.int8(b)
    else:
        vmk[u] |= np.int16(1) << np.int16(b)


@njit(cache=True, inline='always')
def _cn(geo, u, k, z):
    """The common-neighbour mask ``cnm[u, k]`` from the row of site u in the geometry table of
    :func:`_run_multi` (low 16 bits of the slot's second word)."""
    return np.int64(geo[u * np.uint64(2 * z) + np.uint64(z) + k]) & 65535


@njit(cache=True, inline='always')
def _rv(geo, u, k, z):
    """``rev[u, k]`` (the slot of u in the row of its neighbour in slot k) from u's geometry row."""
    return (np.int64(geo[u * np.uint64(2 * z) + np.uint64(z) + k]) >> 16) & 255


@njit(cache=True, inline='always')
def _jc(geo, u, k, z):
    """The jump class ``jcls[u, k]`` from u's geometry row (top byte of the slot's second word)."""
    return np.uint64(np.int64(geo[u * np.uint64(2 * z) + np.uint64(z) + k]) >> 24)


@njit(cache=True, inline='always')
def _hop_rates_p(q, v, z, per, geo, vmk, pk, hopt, bv, ivb, vfac, bycls, vrates, vcum, fsc):
    """``vrates[q]`` of the vacancy on v (no electrode; bitwise :func:`_vac_rates`): the
    clean-hop factor ``ba·bv`` from ``hopt``, unsigned indices after the sign checks. Returns
    the sum of the rates, and keeps its running values in ``vcum[q]`` (the cumulative sums the
    event selection compares with, bitwise the general loop's).

    The factor of the other vacancies (:func:`_hop_other_factor`, same products in the same
    order) is assembled from v's vacant neighbours, found once (a bit mask of their slots, their
    factors for Br/Cl movers in ``fsc`` by slot). Whether such a neighbour a is next to the
    moving ion's site i = nb[v, k] is a bit of the geometry's common-neighbour mask
    ``cnm[v, k]``; i's vacant neighbours that are neither v nor next to v are i's mask ``vmk``
    less the common-neighbour mask of i at v's slot (``rev``), read only when i has a vacant
    neighbour besides v (``zval − nion`` of i, less 1 for v).
    Neighbour tests build bit masks without branches; the loops run over their set bits
    (``_LOWBIT``, in slot order: the products keep their order).
    ``geo`` is :func:`_run_multi`'s geometry table (``nb``, ``cnm``, ``rev`` and ``jcls`` rows; read
    through :func:`_cn`, :func:`_rv`, :func:`_jc`)."""
    zu = np.uint64(z)
    z2 = np.uint64(2 * z)
    zw = np.uint64(z + 2)
    hz = np.uint64(z + 1)  # hopt flat, [2, z+1, z+1, z+1]
    vu = np.uint64(v)
    nv = np.uint64(pk[vu * P4 + np.uint64(1)])
    iv = ivb[nv, np.uint64(pk[vu * P4 + np.uint64(2)])]
    clean_v = _vm(pk, vmk, vu, z, per) == 0
    tot = 0.0
    qu = np.uint64(q)
    vm = np.int64(-1)  # v's vacant neighbours not listed yet
    for k in range(z):
        r = 0.0
        i = geo[vu * z2 + np.uint64(k)]
        if per or i >= 0:
            iu = np.uint64(i)
            s = pk[iu * P4]
            if s != VAC:
                m = np.int64(pk[iu * P4 + np.uint64(2)]) + 1
                jk = vu * zu + np.uint64(k)
                vf = vfac[_jc(geo, vu, np.uint64(k), z) if bycls else jk]  # (bycls: vfac is the class table)
                r = hopt[((np.uint64(s) * hz + np.uint64(pk[iu * P4 + np.uint64(1)])) * hz + nv) * hz
                         + np.uint64(m)] * iv * vf
                more_i = (np.int64(z) if per else np.int64(pk[iu * P4 + np.uint64(3)])) - m  # i's vacant neighbours besides v
                if not (clean_v and more_i == 0):
                    c = np.int64(s)
                    if vm < 0:  # v's vacant neighbours: slot mask, factors for Br/Cl movers by slot
                        vm = np.int64(0)
                        if not clean_v:
                            vm = _vm(pk, vmk, vu, z, per)
                            b2 = vm
                            while b2 != 0:
                                k2 = _LOWBIT[b2 & 4095]
                                b2 &= b2 - 1
                                au = np.uint64(geo[vu * z2 + np.uint64(k2)])
                                na = pk[au * P4 + np.uint64(1)]  # its Cl and ion neighbours
                                ma = pk[au * P4 + np.uint64(2)]
                                fsc[k2, 0] = bv[na, ma + 1] * ivb[na, ma]
                                fsc[k2, 1] = bv[na + 1, ma + 1] * ivb[na, ma]
                    cm = _cn(geo, vu, np.uint64(k), z)
                    f = 1.0
                    if more_i > 0:  # i has a vacant neighbour besides v
                        # i's vacant neighbours that are neither v nor next to v: the common-
                        # neighbour mask of i at v's slot in i's row (rev) removes those
                        ib = _vm(pk, vmk, iu, z, per) & ~_cn(geo, iu, np.uint64(_rv(geo, vu, np.uint64(k), z)), z)
                        while ib != 0:  # in slot order
                            k2 = _LOWBIT[ib & 4095]
                            ib &= ib - 1
                            a = geo[iu * z2 + np.uint64(k2)]
                            na = pk[np.uint64(a) * P4 + np.uint64(1)]
                            ma = pk[np.uint64(a) * P4 + np.uint64(2)]
                            f *= bv[na - c, ma - 1] * ivb[na, ma]
                    b2 = vm & ~cm  # v's vacant neighbours not next to i, in slot order
                    while b2 != 0:
                        f *= fsc[_LOWBIT[b2 & 4095], c]
                        b2 &= b2 - 1
                    r *= f
        vrates[qu * zw + np.uint64(k)] = r
        tot += r
        vcum[qu * zu + np.uint64(k)] = tot
    vrates[qu * zw + np.uint64(z)] = 0.0
    vrates[qu * zw + np.uint64(z + 1)] = 0.0
    return tot


@njit(cache=True, inline='always')
def _list_slots(nu, bits, z, geo, site_vac, vstamp, stamp, lst, nl):
    """Stamp the vacancies on the neighbours of site ``nu`` in the set bits of ``bits`` (slots,
    lowest first) that this refresh has not stamped yet and append their sites to ``lst``;
    returns the new length of the list."""
    z2 = np.uint64(2 * z)
    while bits != 0:
        k = _LOWBIT[bits & 4095]
        bits &= bits - 1
        m = geo[nu * z2 + np.uint64(k)]
        q = site_vac[np.uint64(m)]
        if vstamp[q] != stamp:
            vstamp[q] = stamp
            lst[nl] = m
            nl += 1
    return nl


@njit(cache=True, inline='always')
def _list_vacant_neighbors(nu, z, per, geo, vmk, pk, site_vac, vstamp, stamp, lst, nl):
    """Stamp every vacancy next to site ``nu`` (the slots of its vacant-neighbour mask) that
    this refresh has not stamped yet and append its site to ``lst``; returns the new length of
    the list."""
    return _list_slots(nu, _vm(pk, vmk, nu, z, per), z, geo, site_vac, vstamp, stamp, lst, nl)


@njit(cache=True, inline='always')
def _refresh_hop_p(i, v, kk, wi, wv, stamp, nleaf, z, per, geo, vmk, pk, hopt, bv, ivb, vfac, bycls, site_vac,
                   vrates, vcum, tree, vstamp, fsc, mark, lst):
    """:func:`_refresh_near` of an ion hop i -> v without electrodes: the same vacancies
    recomputed (those within two shells of i, v and their vacant neighbours), the same stamps
    and the same leaves (the order of the recomputations does not matter: rates are functions
    of the state, and the sum tree is a function of its leaves).

    Instead of scanning the two-shell list of each centre c (39 sites on perovskite-x, a
    1.9 MB table for 16³ cells), the second shell is walked only through the neighbours n of c
    that have a vacant neighbour other than c (``zval − nion`` of n, in the packed row): at 1 %
    vacancies ~8 packed rows per centre instead of 39 list entries. The centre i (the vacancy's
    new site) is also a vacant neighbour of v: walked once; and the other centres skip i and
    its neighbours, which the centre i covers: it touches them and walks every one that has a
    vacant neighbour besides i. Which of v's neighbours those are is read from the geometry's
    common-neighbour mask ``cnm[v, kk]`` (i = nb[v, kk]); the rare other centres mark them. The
    walk masks ``wi`` and ``wv`` come from the caller (:func:`_multi_loop` builds them in the
    loop that updates the shell counts). The vacancies found are stamped and listed in ``lst``
    first, then recomputed (one call site: compact code)."""
    z2 = np.uint64(2 * z)
    nl = 0
    iu = np.uint64(i)
    # bit masks over neighbour slots: i's vacant neighbours (vi) and those with a vacant
    # neighbour besides i (wi, whose neighbours the centre i walks; from the caller's move
    # loop, which has the new shell counts in hand); v's vacant neighbours (vv: centres), and
    # of those not covered by the centre i (i and its neighbours: the bits of cnm[v, kk]) the
    # vacant ones (uv) and those with a vacant neighbour (wv, from the move loop)
    vi = _vm(pk, vmk, iu, z, per)
    vu = np.uint64(v)
    vv = _vm(pk, vmk, vu, z, per)
    uv = vv & ~_cn(geo, vu, np.uint64(kk), z)
    # the centres i and v: themselves, their vacant neighbours (uncovered ones for v) and the
    # neighbours of the walkable ones (the caller has stamped the moved vacancy, on i)
    for side in range(2):
        bu = iu if side == 0 else vu
        abits = vi if side == 0 else uv
        wbits = wi if side == 0 else wv
        if pk[bu * P4] == VAC:
            q = site_vac[bu]
            if vstamp[q] != stamp:
                vstamp[q] = stamp
                lst[nl] = np.int64(bu)
                nl += 1
        nl = _list_slots(bu, abits, z, geo, site_vac, vstamp, stamp, lst, nl)
        while wbits != 0:
            k = _LOWBIT[wbits & 4095]
            nl = _list_vacant_neighbors(np.uint64(geo[bu * z2 + np.uint64(k)]), z, per, geo, vmk, pk, site_vac, vstamp,
                                        stamp, lst, nl)
            wbits &= wbits - 1
    # the other centres: vacant neighbours of i (side 0) and of v other than i (side 1); rare.
    # They skip i and its neighbours (marked here), which the centre i has covered
    vv &= ~(np.int64(1) << kk)
    if (vi | vv) == 0:
        ms = np.int64(0)
    else:
        ms = mark[-1] + 1
        mark[-1] = ms
        mark[iu] = ms
        for k in range(z):
            n = geo[iu * z2 + np.uint64(k)]
            if per or n >= 0:
                mark[np.uint64(n)] = ms
    for side in range(2):
        base = i if side == 0 else v
        bits = vi if side == 0 else vv
        while bits != 0:
            j = _LOWBIT[bits & 4095]
            bits &= bits - 1
            c = geo[np.uint64(base) * z2 + np.uint64(j)]
            cu = np.uint64(c)
            q = site_vac[cu]
            if vstamp[q] != stamp:
                vstamp[q] = stamp
                lst[nl] = c
                nl += 1
            # c's vacant neighbours (those that are i or next to i are listed already), and the
            # vacant neighbours of c's neighbours n that have one besides c, unless the centre i
            # has walked n (marked)
            nl = _list_vacant_neighbors(cu, z, per, geo, vmk, pk, site_vac, vstamp, stamp, lst, nl)
            for k in range(z):
                n = geo[cu * z2 + np.uint64(k)]
                if per or n >= 0:
                    nu = np.uint64(n)
                    zn = np.int64(z) if per else np.int64(pk[nu * P4 + np.uint64(3)])
                    if mark[nu] != ms and zn - np.int64(pk[nu * P4 + np.uint64(2)]) > 1:
                        nl = _list_vacant_neighbors(nu, z, per, geo, vmk, pk, site_vac, vstamp, stamp, lst, nl)
    for t in range(nl):
        y = lst[t]
        q = np.int64(site_vac[np.uint64(y)])  # signed: nleaf + q must stay an integer without numba
        tot = _hop_rates_p(q, y, z, per, geo, vmk, pk, hopt, bv, ivb, vfac, bycls, vrates, vcum, fsc)
        if tot != tree[nleaf + q]:
            _tree_set(tree, nleaf, q, tot)


@njit(cache=True)
def _run_multi(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab,
               zval, cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
               ion_id, ion_R, ion_nj, ring, ion_W, corr, z, per):
    """Pack the site table, the vacant-neighbour masks and the geometry rows (``nb``, ``cnm``,
    ``rev``, ``jcls`` of a site side by side), run :func:`_multi_loop` for
    coordination ``z`` (= ``nb.shape[1]``, at most 12) and write occ/ncl/nion back. ``per``:
    every site has z neighbours (no ``-1`` in ``nb``, ``zval`` = z everywhere). Called with z
    and per literals by :func:`_run_multi8`, :func:`_run_multi8p` etc. (the specialisations
    unroll the neighbour loops and drop the open-end tests)."""
    n = occ.shape[0]
    pk = np.empty(4 * n, dtype=np.int8)  # flat rows: constant strides in the loop
    for x in range(n):
        pk[4 * x] = occ[x]
        pk[4 * x + 1] = ncl[x]
        pk[4 * x + 2] = nion[x]
        pk[4 * x + 3] = zval[x]
    # vmk[x], bit k: the neighbour in slot k of x is vacant (kept up to date by the loop through
    # rev, the slot of x in its neighbour's row): one load instead of a scan of x's neighbours
    vmk = np.zeros(n, dtype=np.int16)
    for q in range(iscal[0]):  # from the vacancies: O(n_vac·z) besides the zeroing
        x = vac_site[q]
        for k in range(z):
            y = nb[x, k]
            if y >= 0:
                vmk[y] |= np.int16(1) << np.int16(rev[x * z + k])
    if per and z <= 8:  # the mask in the packed row's slot 3 (zval = z everywhere: not needed)
        for x in range(n):
            pk[4 * x + 3] = np.int8(vmk[x] if vmk[x] < 128 else vmk[x] - 256)
    # the geometry table: one row of 2z int32 words per site, the z neighbours, then per slot
    # cnm (bits 0-15), rev (bits 16-23) and the jump class (bits 24-31): everything the loop
    # reads about a site's slots in one 64-byte line for z = 8 (rows aligned to 64 bytes); in
    # four separate tables before (1.03-1.05x, bitwise the same). Measured and dropped: int16
    # words (32-byte rows, n < 32768: half the bytes, 0.98-1.04x, no gain beyond the noise) and
    # each vacancy's rates in 64-byte-aligned rows of z copied back after the loop (0.97-1.00x)
    z2 = 2 * z
    gbuf = np.empty(n * z2 + 16, dtype=np.int32)
    off = ((-gbuf.ctypes.data) % 64) // 4
    geo = gbuf[off:off + n * z2]
    for x in range(n):
        for k in range(z):
            if jcls[x * z + k] > 127:
                raise ValueError("jcls: more than 128 jump classes do not fit the geometry row")
            geo[x * z2 + k] = nb[x, k]
            geo[x * z2 + z + k] = np.int32((np.int64(cnm[x * z + k]) & 65535) | ((np.int64(rev[x * z + k]) & 255) << 16)
                                           | (np.int64(jcls[x * z + k]) << 24))
    vff = np.ascontiguousarray(vfac).reshape(-1)
    vrf = vrates.reshape(-1)  # (C-contiguous state array: a view)
    if hopt.shape != (2, z + 1, z + 1, z + 1):
        raise ValueError("hopt must have shape (2, z+1, z+1, z+1)")
    htf = np.ascontiguousarray(hopt).reshape(-1)
    # the cumulative sums of each vacancy's rates, in slot order (what the event selection
    # compares r with; _hop_rates_p keeps them with the rates)
    vcum = np.empty(vac_site.shape[0] * z)
    for q in range(iscal[0]):
        cum = 0.0
        for k in range(z):
            cum += vrates[q, k]
            vcum[q * z + k] = cum
    fsc = np.empty((z, 2))  # scratch of _hop_rates_p: Br/Cl-mover factors of v's vacant neighbours (by slot)
    # marks of _refresh_hop_p:
    mark = np.zeros(n + 1, dtype=np.int64)  # (mark[-1]: the current mark)
    lst = np.empty(vac_site.shape[0], dtype=np.int64)  # vacancies to recompute (_refresh_hop_p)
    # hop field factors: by jump class (vtab[jcls]) where that table holds (one potential
    # everywhere: the (n, z) table stays out of the cache), else vfac; one compilation (a
    # separate one for the class table ran slower)
    bycls = vtab.shape[0] > 0
    if bycls:
        vff = vtab
    code = _multi_loop(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, htf, geo, jtab, bycls,
                       pk, vmk, fsc, mark, lst, bv, ivb, vff, site_vac, vac_site, vrf, vcum, tree, vstamp, varr,
                       vres, dR, ion_id, ion_R, ion_nj, ring, ion_W, corr, z, per)
    for x in range(n):
        occ[x] = pk[4 * x]
        ncl[x] = pk[4 * x + 1]
        nion[x] = pk[4 * x + 2]
    return code


@njit(cache=True)
def _run_multi6(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                ion_id, ion_R, ion_nj, ring, ion_W, corr):
    return _run_multi(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                      cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                      ion_id, ion_R, ion_nj, ring, ion_W, corr, 6, False)


@njit(cache=True)
def _run_multi6p(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                 cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                 ion_id, ion_R, ion_nj, ring, ion_W, corr):
    return _run_multi(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                      cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                      ion_id, ion_R, ion_nj, ring, ion_W, corr, 6, True)


@njit(cache=True)
def _run_multi8(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                ion_id, ion_R, ion_nj, ring, ion_W, corr):
    return _run_multi(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                      cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                      ion_id, ion_R, ion_nj, ring, ion_W, corr, 8, False)


@njit(cache=True)
def _run_multi8p(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                 cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                 ion_id, ion_R, ion_nj, ring, ion_W, corr):
    return _run_multi(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                      cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                      ion_id, ion_R, ion_nj, ring, ion_W, corr, 8, True)


@njit(cache=True)
def _run_multi12(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                 cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                 ion_id, ion_R, ion_nj, ring, ion_W, corr):
    return _run_multi(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                      cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                      ion_id, ion_R, ion_nj, ring, ion_W, corr, 12, False)


@njit(cache=True)
def _run_multi12p(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                  cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                  ion_id, ion_R, ion_nj, ring, ion_W, corr):
    return _run_multi(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, nb, jcls, jtab, vtab, zval,
                      cnm, rev, bv, ivb, vfac, occ, ncl, nion, site_vac, vac_site, vrates, tree, vstamp, varr, vres, dR,
                      ion_id, ion_R, ion_nj, ring, ion_W, corr, 12, True)


@njit(cache=True)
def _multi_loop(step_target, t_max, iscal, fscal, rng, clock_mean, track, window, hopt, geo, jtab, bycls,
                pk, vmk, fsc, mark, lst, bv, ivb, vfac, site_vac, vac_site, vrates, vcum, tree, vstamp, varr, vres,
                dR, ion_id, ion_R, ion_nj, ring, ion_W, corr, z, per):
    """:func:`_run` for several vacancies and no electrodes: the same events, rates, random
    numbers, stamps and sum-tree leaves as the general loop (tests check the state arrays
    bitwise), with the scalar state in locals, the packed site table, the geometry rows ``geo``
    (:func:`_run_multi`), the clean-hop factor from ``hopt``, and unsigned indices after the sign
    checks."""
    zu = np.uint64(z)
    z2 = np.uint64(2 * z)
    zw = np.uint64(z + 2)
    s0 = rng[0]
    s1 = rng[1]
    s2 = rng[2]
    s3 = rng[3]
    t = fscal[0]
    pend = fscal[1]
    steps = iscal[1]
    hops = iscal[4]
    stamp = iscal[3]
    nleaf = iscal[5]
    code = 0
    while steps < step_target:
        if pend < 0.0:
            total = tree[1]
            if not (total > 0.0):
                code = 4
                break
            if clock_mean:
                dt = 1.0 / total
            else:
                e, s0, s1, s2, s3 = _exp_variate(s0, s1, s2, s3)
                dt = e / total
            pend = t + dt
        if pend > t_max:
            t = t_max
            code = 1
            break
        t = pend
        pend = -1.0
        u, s0, s1, s2, s3 = _xoshiro64(s0, s1, s2, s3)
        r = ((u >> _U11) * _INV53) * tree[1]
        n = np.uint64(1)
        nlu = np.uint64(nleaf)
        # the general loop's descent (right iff r >= left sum and the right sum is positive,
        # then r -= left), two levels per step: the loads of a node's left sum and of both
        # grandchildren's depend on n only, and both outcomes of the second level are computed
        # (each with the same subtraction as one level at a time: bitwise the same r and n);
        # the values are selected, never the addresses of the next loads. 7 levels (123
        # vacancies): ~1.09× per hop at 1 % on 16³ cells (4 separate processes, 2 paired)
        while n + n < nlu:
            n2 = n + n
            n4 = n2 + n2
            left = tree[n2]
            ll = tree[n4]  # left sum below the left child
            rl = tree[n4 + np.uint64(2)]  # left sum below the right child
            a = (r >= left) & (tree[n2 + np.uint64(1)] > 0.0)
            rb = r - left
            ba = (r >= ll) & (tree[n4 + np.uint64(1)] > 0.0)
            bb = (rb >= rl) & (tree[n4 + np.uint64(3)] > 0.0)
            raa = r - ll
            rbb = rb - rl
            xa = raa if ba else r
            xb = rbb if bb else rb
            r = xb if a else xa
            g2 = bb if a else ba
            n = n4 + np.uint64(a) + np.uint64(a) + np.uint64(g2)
        if n < nlu:  # the last level of an odd depth, one level as in the general loop
            left = tree[n + n]
            go = (r >= left) & (tree[n + n + np.uint64(1)] > 0.0)
            rl = r - left
            r = rl if go else r  # a select, not r − left·go (the same r: left·1 = left, r − 0 = r)
            n = n + n + np.uint64(go)
        q = np.int64(n - nlu)
        steps += 1
        qu = np.uint64(q)
        v = vac_site[qu]
        vu = np.uint64(v)
        # the first event whose cumulative sum exceeds r: the count of sums r passes (the sums
        # do not decrease and adding a zero rate leaves them unchanged), branch-free
        kk = 0
        last = 0
        for k in range(z):
            kk += r >= vcum[qu * zu + np.uint64(k)]
            last = k if vrates[qu * zw + np.uint64(k)] > 0.0 else last
        if kk >= z:
            kk = last
        kku = np.uint64(kk)
        i = geo[vu * z2 + kku]
        iu = np.uint64(i)
        sp = pk[iu * P4]
        c = np.int64(sp)
        c8 = np.int8(sp)
        pk[vu * P4] = sp
        pk[iu * P4] = VAC
        site_vac[vu] = -1
        site_vac[iu] = q
        vac_site[qu] = i
        vres[vu] += t - varr[qu]
        varr[qu] = t
        # shell counts and vacant-neighbour masks of the neighbours of v, then of i; with the
        # new counts, the walk masks of the refresh (_refresh_hop_p): neighbours of i with a
        # vacant neighbour besides i (wi: counts final, the v side is done), neighbours of v not
        # covered by the centre i (cov: i and its neighbours, whose i-side update is pending)
        # with a vacant neighbour (wv)
        cov = _cn(geo, vu, kku, z)
        wv = np.int64(0)
        for k in range(z):
            y = geo[vu * z2 + np.uint64(k)]
            if per or y >= 0:
                yu = np.uint64(y)
                ny = pk[yu * P4 + np.uint64(2)] + np.int8(1)
                pk[yu * P4 + np.uint64(2)] = ny
                pk[yu * P4 + np.uint64(1)] += c8
                _vm_clear(pk, vmk, yu, _rv(geo, vu, np.uint64(k), z), z, per)
                zn = np.int64(z) if per else np.int64(pk[yu * P4 + np.uint64(3)])
                wv |= ((((cov >> k) & 1) ^ 1) & np.int64(zn - np.int64(ny) > 0)) << k
        wi = np.int64(0)
        for k in range(z):
            y = geo[iu * z2 + np.uint64(k)]
            if per or y >= 0:
                yu = np.uint64(y)
                ny = pk[yu * P4 + np.uint64(2)] - np.int8(1)
                pk[yu * P4 + np.uint64(2)] = ny
                pk[yu * P4 + np.uint64(1)] -= c8
                _vm_set(pk, vmk, yu, _rv(geo, iu, np.uint64(k), z), z, per)
                zn = np.int64(z) if per else np.int64(pk[yu * P4 + np.uint64(3)])
                wi |= np.int64(zn - np.int64(ny) > 1) << k
        jc = _jc(geo, vu, kku, z) * np.uint64(3)
        dx = -np.int64(jtab[jc])
        dy = -np.int64(jtab[jc + np.uint64(1)])
        dz = -np.int64(jtab[jc + np.uint64(2)])
        cu = np.uint64(c)
        dR[cu, 0] += dx
        dR[cu, 1] += dy
        dR[cu, 2] += dz
        hops += 1
        if track:
            idn = ion_id[iu]
            ion_id[vu] = idn
            ion_id[iu] = -1
            ion_R[idn, 0] += dx
            ion_R[idn, 1] += dy
            ion_R[idn, 2] += dz
            dd = dx * dx + dy * dy + dz * dz
            corr[c, 0] += dd + 2 * (dx * ion_W[idn, 0] + dy * ion_W[idn, 1] + dz * ion_W[idn, 2])
            corr[c, 1] += dd
            nj = ion_nj[idn]
            slot = nj % window
            if nj >= window:
                ion_W[idn, 0] -= ring[idn, slot, 0]
                ion_W[idn, 1] -= ring[idn, slot, 1]
                ion_W[idn, 2] -= ring[idn, slot, 2]
            ring[idn, slot, 0] = dx
            ring[idn, slot, 1] = dy
            ring[idn, slot, 2] = dz
            ion_W[idn, 0] += dx
            ion_W[idn, 1] += dy
            ion_W[idn, 2] += dz
            ion_nj[idn] = nj + 1
        tot = _hop_rates_p(q, i, z, per, geo, vmk, pk, hopt, bv, ivb, vfac, bycls, vrates, vcum, fsc)
        _tree_set(tree, nleaf, q, tot)
        vstamp[qu] = stamp + 1
        stamp += 1
        _refresh_hop_p(i, v, kk, wi, wv, stamp, nleaf, z, per, geo, vmk, pk, hopt, bv, ivb, vfac, bycls, site_vac,
                       vrates, vcum, tree, vstamp, fsc, mark, lst)
    rng[0] = s0
    rng[1] = s1
    rng[2] = s2
    rng[3] = s3
    fscal[0] = t
    fscal[1] = pend
    iscal[1] = steps
    iscal[3] = stamp
    iscal[4] = hops
    return code
