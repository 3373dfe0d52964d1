"""Compiled variable-order NDF integrator for the device DAE (numba; no Python per step).

The semi-discrete system is ``M y' = F(y)`` with ``M = diag(box)`` on the species rows
(x_Br, x_V) and ``0`` on the Poisson rows (psi is algebraic: an index-1 DAE).  It is integrated
with the quasi-constant-step numerical differentiation formulas of Shampine & Reichelt (the
MATLAB ``ode15s`` / scipy ``solve_ivp(method="BDF")`` scheme, orders 1-5) in backward-difference
form: ``D[j]`` holds the j-th backward differences of the interpolating polynomial through the
last accepted states, ``D[0] = y_n``.  A step of order k solves

    M (d + psi_k) / c - F(y_pred + d) = 0,   c = h / alpha_k,
    y_pred = sum_{j<=k} D[j],  psi_k = sum_{1<=j<=k} gamma_j D[j] / alpha_k,

i.e. the residual kernel's stage with ``massc = 1/c`` and ``hist = (y_pred - psi_k)/c``.

Newton.  By default every step evaluates the analytic Jacobian at the predictor and factors it
(3x3 block-tridiagonal LU, :func:`.kernels.block_factor`, with the banded LU with partial
pivoting as fallback): for this problem one Jacobian costs about as much as one residual, and
a fresh Jacobian makes Newton converge quadratically from the predictor (the second correction
is typically 1e-6 of the first).  A step therefore stops after one correction when the
quadratic model ``kappa * |dy_1|^2`` -- ``kappa = |dy_2| / |dy_1|^2`` measured on a step no more
than ``KAPPA_MAX_AGE`` steps ago with a fresh Jacobian -- is below ``KAPPA_SAFETY * newton_tol``;
otherwise it iterates with scipy's rate test (``newton_tol = max(10 eps/rtol, min(0.03,
rtol^0.5))`` in the weighted norm, at most ``solver.max_newton`` corrections).  Factor reuse
over steps (simplified Newton) is available through the control array but off by default.
A non-converging iteration with an old Jacobian retries with a fresh one; otherwise the step
is halved (quartered when an iterate leaves the physical domain).

Error control, order and step selection follow the scipy code: local error
``error_const_k * d``, orders k-1 and k+1 estimated from ``D[k]`` and ``D[k+2]`` after k+1 equal
steps, step factor ``safety * err^(-1/(k+1))`` limited to [0.2, 10] (increases below
``MIN_GROWTH`` are skipped).  The error norm is the RMS over the species rows of
``e / (atol_i + rtol max(|y_n|, |y_n+1|))`` with ``atol_i = atol`` for x_Br and
``atol * x_V,ref`` for x_V; psi is algebraic and enters only the Newton norm (with
``PSI_ATOL``).  Steps whose x_V dips below ``-atol * x_V,ref`` are rejected.

Conservation ledger: the three site inventories ``Q_i`` obey ``dQ_i/dt = S_i`` (integrated
sources; the face fluxes telescope).  The same NDF recursion -- the same difference arrays,
rescalings and coefficients -- is applied to them, so ``inventory(y_n) - Q_n`` measures exactly
what the discrete scheme fails to conserve (round-off plus the Newton residual of the sources).

Outputs at requested times use the method's interpolating polynomial (dense output).  The
caller restarts the integrator (order 1, consistent psi) at every bias breakpoint.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernels import assemble_blocks, band_factor, band_solve, block_factor, block_solve, blocks_to_band, source_totals

MAX_ORDER = 5
_KAPPA = np.array([0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0])
GAMMA = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, MAX_ORDER + 1))])
ALPHA = (1.0 - _KAPPA) * GAMMA
ERROR_CONST = _KAPPA * GAMMA + 1.0 / np.arange(1, MAX_ORDER + 2)

MIN_FACTOR = 0.2
MAX_FACTOR = 10.0
MAX_CONSECUTIVE_FAILURES = 25

# control array ctl[...] of advance(): tuning knobs, defaults in DEFAULT_CONTROL
C_LU_SLACK, C_LU_MAX_AGE, C_MIN_GROWTH, C_KAPPA_MAX_AGE, C_KAPPA_SAFETY = range(5)
LU_SLACK = 0.0        # reuse factors while |c_LU / c - 1| <= this ...
LU_MAX_AGE = 1        # ... and fewer than this many steps have passed (1: fresh Jacobian every step)
MIN_GROWTH = 1.2      # skip step-size increases smaller than this
KAPPA_MAX_AGE = 10    # steps a measured quadratic-convergence constant stays valid
KAPPA_SAFETY = 0.1    # one-correction acceptance: kappa |dy_1|^2 < KAPPA_SAFETY * newton_tol
DEFAULT_CONTROL = (LU_SLACK, LU_MAX_AGE, MIN_GROWTH, KAPPA_MAX_AGE, KAPPA_SAFETY)

# integer state ist[...]
I_ORDER, I_NEQ, I_LU_OK, I_LU_MODE, I_STEPS, I_REJ, I_NEWTON, I_NLU, I_FAILS, I_NREC, I_IOUT, I_LU_AGE, \
    I_STATUS, I_NFEV, I_KAPPA_AGE, I_NBAND = range(16)
N_IST = 16
# float state fst[...]
F_T, F_H, F_MIN_XV, F_MASSC_LU, F_KAPPA = range(5)
N_FST = 5

# status codes
ST_RUNNING, ST_SEGMENT_DONE, ST_BUFFER_FULL, ST_MAX_STEPS, ST_STEP_FAILURE = 0, 1, 2, 3, 4


@njit(cache=True)
def _change_D(D, ncomp, order, factor, RU, Dtmp):
    """Rescale the difference array D[:order+1] for a step size multiplied by ``factor``."""
    k = order + 1
    # R(order, factor) and U = R(order, 1); RU = R @ U
    R = np.empty((k, k))
    U = np.empty((k, k))
    for j in range(k):
        R[0, j] = 1.0
        U[0, j] = 1.0
    for i in range(1, k):
        R[i, 0] = 0.0
        U[i, 0] = 0.0
        for j in range(1, k):
            R[i, j] = R[i - 1, j] * (i - 1 - factor * j) / i
            U[i, j] = U[i - 1, j] * (i - 1 - j) / i
    for i in range(k):
        for j in range(k):
            s = 0.0
            for m in range(k):
                s += R[i, m] * U[m, j]
            RU[i, j] = s
    # D[i] <- sum_m RU[m, i] D[m]
    for c in range(ncomp):
        for i in range(k):
            s = 0.0
            for m in range(k):
                s += RU[m, i] * D[m, c]
            Dtmp[i] = s
        for i in range(k):
            D[i, c] = Dtmp[i]


@njit(cache=True)
def _inventory(y, vol, out):
    """Linear part of the inventories of a state increment: (sum box x_Br, -(..Br + ..V), sum box x_V)."""
    N = vol.shape[0]
    iB = 0.0
    iV = 0.0
    for k in range(N):
        iB += vol[k] * y[3 * k]
        iV += vol[k] * y[3 * k + 1]
    out[0] = iB
    out[1] = -(iB + iV)
    out[2] = iV


@njit(cache=True)
def _inventory_state(y, vol, out):
    N = vol.shape[0]
    iB = 0.0
    iV = 0.0
    iC = 0.0
    for k in range(N):
        iB += vol[k] * y[3 * k]
        iV += vol[k] * y[3 * k + 1]
        iC += vol[k] * (1.0 - y[3 * k] - y[3 * k + 1])
    out[0] = iB
    out[1] = iC
    out[2] = iV


@njit(cache=True)
def start_segment(y0, Q0, t0, tb, h_user, rtol, atol, xref, D, DQ, ist, fst, R, Dg, Lo, Up, hface, vol, srclen,
                  dirich, psiD, xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, vfac):
    """Initialise the difference arrays at a (re)start: order 1, D[1] = h f(y0) on the species rows.

    ``y0`` must carry the consistent potential.  The first step is ``h_user`` if positive, else
    ``min(1/||f||, 1e-3 (tb - t0))`` with the species error weights.  Returns 0, or 1 if y0 is
    outside the domain.
    """
    n = y0.shape[0]
    N = n // 3
    hist = np.zeros(n)
    st = assemble_blocks(y0, 0.0, hist, False, R, Dg, Lo, Up, hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh, dc,
                         t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, vfac)
    if st != 0:
        return 1
    acc = 0.0
    for k in range(N):
        fB = -R[3 * k] / vol[k]
        fV = -R[3 * k + 1] / vol[k]
        wB = atol + rtol * abs(y0[3 * k])
        wV = atol * xref + rtol * abs(y0[3 * k + 1])
        acc += (fB / wB) ** 2 + (fV / wV) ** 2
    d1 = math.sqrt(acc / (2 * N))
    if h_user > 0.0:
        h = h_user
    elif d1 == 0.0:
        h = 1e-3 * (tb - t0)
    else:
        h = min(1.0 / d1, 1e-3 * (tb - t0))
    for j in range(D.shape[0]):
        for i in range(n):
            D[j, i] = 0.0
        for i in range(3):
            DQ[j, i] = 0.0
    for i in range(n):
        D[0, i] = y0[i]
    for k in range(N):
        D[1, 3 * k] = -h * R[3 * k] / vol[k]
        D[1, 3 * k + 1] = -h * R[3 * k + 1] / vol[k]
    for i in range(3):
        DQ[0, i] = Q0[i]
    tmp = np.empty(3)
    _inventory(D[1], vol, tmp)
    for i in range(3):
        DQ[1, i] = tmp[i]
    ist[I_ORDER] = 1
    ist[I_NEQ] = 0
    ist[I_LU_OK] = 0
    ist[I_FAILS] = 0
    ist[I_KAPPA_AGE] = 1 << 30
    ist[I_STATUS] = ST_RUNNING
    ist[I_NFEV] += 1
    fst[F_T] = t0
    fst[F_H] = h
    return 0


@njit(cache=True)
def advance(tb, rtol, atol, xref, psi_atol, newton_tol, maxit, max_steps, ctl, inv0, t_out, out_y, rec_t, rec_err,
            D, DQ, ist, fst, y, d, dy, ypred, hist, psiv, scale, R, Dg, Lo, Up, Dinv, abT, ipiv, RU, Dtmp,
            hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, vfac):
    """Integrate from fst[F_T] to tb (a breakpoint or the end) with the state in D, DQ, ist, fst.

    Returns when the segment is done, the step record buffer (rec_t, rec_err) is full, max_steps
    is reached or the step size collapses; ist[I_STATUS] says which.  Outputs at the times t_out
    (from index ist[I_IOUT]) are written into out_y as they are passed.
    """
    n = y.shape[0]
    N = n // 3
    nout = t_out.shape[0]
    nrec_max = rec_t.shape[0]
    tslack = 1e-12 * max(tb, 1.0)
    Qpred = np.empty(3)
    psiQ = np.empty(3)
    dQ = np.empty(3)
    inv = np.empty(3)
    stmp = np.empty(3)
    status = ST_RUNNING
    while True:
        t = fst[F_T]
        if t >= tb - tslack:
            status = ST_SEGMENT_DONE
            break
        if ist[I_STEPS] >= max_steps:
            status = ST_MAX_STEPS
            break
        if ist[I_NREC] >= nrec_max:
            status = ST_BUFFER_FULL
            break
        order = ist[I_ORDER]
        h = fst[F_H]
        if h < max(1e-18, 10.0 * 2.220446049250313e-16 * abs(t)) or ist[I_FAILS] > MAX_CONSECUTIVE_FAILURES:
            status = ST_STEP_FAILURE
            break
        # land exactly on the segment end (stretch by up to 10% rather than leave a sliver)
        if t + 1.1 * h > tb:
            hn = tb - t
            _change_D(D, n, order, hn / h, RU, Dtmp)
            _change_D(DQ, 3, order, hn / h, RU, Dtmp)
            ist[I_NEQ] = 0
            h = hn
            fst[F_H] = h
        tnew = t + h
        if tnew >= tb - tslack:
            tnew = tb
        alpha = ALPHA[order]
        c = h / alpha
        massc = 1.0 / c
        # predictor, history combination
        for i in range(n):
            s = 0.0
            p = 0.0
            for j in range(order + 1):
                s += D[j, i]
            for j in range(1, order + 1):
                p += GAMMA[j] * D[j, i]
            ypred[i] = s
            psiv[i] = p / alpha
            hist[i] = massc * (s - psiv[i])
        for k in range(N):
            scale[3 * k] = atol + rtol * abs(ypred[3 * k])
            scale[3 * k + 1] = atol * xref + rtol * abs(ypred[3 * k + 1])
            scale[3 * k + 2] = psi_atol + rtol * abs(ypred[3 * k + 2])
        if ist[I_LU_OK] != 0:
            mlu = fst[F_MASSC_LU]
            if abs(mlu / massc - 1.0) > ctl[C_LU_SLACK] or ist[I_LU_AGE] >= ctl[C_LU_MAX_AGE]:
                ist[I_LU_OK] = 0
        converged = False
        domain_fail = False
        n_iter = 0
        jac_fresh = False
        while True:
            # Newton (simplified: LU factors possibly from an earlier step)
            for i in range(n):
                y[i] = ypred[i]
                d[i] = 0.0
            converged = False
            domain_fail = False
            dn_old = -1.0
            for it in range(maxit):
                n_iter = it + 1
                ist[I_NEWTON] += 1
                ist[I_NFEV] += 1
                if it == 0 and ist[I_LU_OK] == 0:
                    st = assemble_blocks(y, massc, hist, True, R, Dg, Lo, Up, hface, vol, srclen, dirich, psiD, xbg,
                                         inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, vfac)
                    if st != 0:
                        domain_fail = True
                        break
                    ist[I_NLU] += 1
                    jac_fresh = True
                    ist[I_LU_AGE] = 0
                    fst[F_MASSC_LU] = massc
                    ist[I_LU_MODE] = 0
                    if block_factor(Dg, Lo, Up, Dinv) != 0:
                        # no safe block pivots: banded LU with partial pivoting of the same matrix
                        assemble_blocks(y, massc, hist, True, R, Dg, Lo, Up, hface, vol, srclen, dirich, psiD, xbg,
                                        inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, vfac)
                        blocks_to_band(Dg, Lo, Up, abT)
                        ist[I_LU_MODE] = 1
                        ist[I_NBAND] += 1
                        if band_factor(abT, n, ipiv) != 0:
                            ist[I_LU_OK] = 0
                            break
                    ist[I_LU_OK] = 1
                else:
                    st = assemble_blocks(y, massc, hist, False, R, Dg, Lo, Up, hface, vol, srclen, dirich, psiD,
                                         xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, vfac)
                    if st != 0:
                        domain_fail = True
                        break
                for i in range(n):
                    dy[i] = -R[i]
                if ist[I_LU_MODE] == 0:
                    block_solve(Lo, Up, Dinv, dy)
                else:
                    band_solve(abT, n, ipiv, dy)
                acc = 0.0
                for i in range(n):
                    q = dy[i] / scale[i]
                    acc += q * q
                dn = math.sqrt(acc / n)
                if not math.isfinite(dn):
                    break
                rate = -1.0
                if dn_old > 0.0:
                    rate = dn / dn_old
                    if jac_fresh and it == 1:
                        # quadratic convergence constant of this Jacobian: e_1 ~ kappa e_0^2
                        fst[F_KAPPA] = dn / (dn_old * dn_old)
                        ist[I_KAPPA_AGE] = 0
                    if rate >= 1.0 or rate ** (maxit - it) / (1.0 - rate) * dn > newton_tol:
                        break
                for i in range(n):
                    y[i] += dy[i]
                    d[i] += dy[i]
                if dn == 0.0 or (rate > 0.0 and rate / (1.0 - rate) * dn < newton_tol):
                    converged = True
                    break
                if (it == 0 and jac_fresh and ist[I_KAPPA_AGE] < ctl[C_KAPPA_MAX_AGE]
                        and fst[F_KAPPA] * dn * dn < ctl[C_KAPPA_SAFETY] * newton_tol):
                    # one Newton step from the predictor with the Jacobian at the predictor: the
                    # remaining error is ~ kappa dn^2 (kappa measured on a recent step)
                    converged = True
                    break
                dn_old = dn
            if converged or domain_fail:
                break
            # not converged: with factors from an older Jacobian, refresh and retry the same step
            if not jac_fresh:
                ist[I_LU_OK] = 0
                continue
            break
        if converged:
            for k in range(N):
                xb = y[3 * k]
                if not (xb > 0.0) or not (1.0 - xb - y[3 * k + 1] > 0.0):
                    domain_fail = True
                    converged = False
                    break
        if not converged:
            ist[I_REJ] += 1
            ist[I_FAILS] += 1
            ist[I_KAPPA_AGE] = 1 << 30
            fac = 0.25 if domain_fail else 0.5
            _change_D(D, n, order, fac, RU, Dtmp)
            _change_D(DQ, 3, order, fac, RU, Dtmp)
            fst[F_H] = h * fac
            ist[I_NEQ] = 0
            ist[I_LU_OK] = 0
            continue
        # local error on the species rows
        ec = ERROR_CONST[order]
        acc = 0.0
        xvmin = 1.0
        for k in range(N):
            i = 3 * k
            w = atol + rtol * max(abs(D[0, i]), abs(y[i]))
            scale[i] = w
            q = ec * d[i] / w
            acc += q * q
            i += 1
            w = atol * xref + rtol * max(abs(D[0, i]), abs(y[i]))
            scale[i] = w
            q = ec * d[i] / w
            acc += q * q
            if y[i] < xvmin:
                xvmin = y[i]
        err = math.sqrt(acc / (2 * N))
        # scipy's safety factor (NEWTON_MAXITER = 4); a one-iteration step counts as two
        safety = 0.9 * 9.0 / (8.0 + max(n_iter, 2))
        if not (err <= 1.0) or xvmin < -atol * xref:
            ist[I_REJ] += 1
            ist[I_FAILS] += 1
            if err > 1.0 and math.isfinite(err):
                fac = max(MIN_FACTOR, safety * err ** (-1.0 / (order + 1)))
            elif err > 1.0:
                fac = MIN_FACTOR
            else:
                fac = 0.5
            _change_D(D, n, order, fac, RU, Dtmp)
            _change_D(DQ, 3, order, fac, RU, Dtmp)
            fst[F_H] = h * fac
            ist[I_NEQ] = 0
            continue
        # ---- accepted
        ist[I_FAILS] = 0
        ist[I_STEPS] += 1
        ist[I_NEQ] += 1
        ist[I_LU_AGE] += 1
        ist[I_KAPPA_AGE] += 1
        # ledger: the same recursion for the inventories
        tB, tC, tV = source_totals(y, srclen, dc, t_lkc, t_lka, vfac)
        stmp[0] = tB
        stmp[1] = tC
        stmp[2] = tV
        for m in range(3):
            s = 0.0
            p = 0.0
            for j in range(order + 1):
                s += DQ[j, m]
            for j in range(1, order + 1):
                p += GAMMA[j] * DQ[j, m]
            Qpred[m] = s
            psiQ[m] = p / alpha
            dQ[m] = c * stmp[m] - psiQ[m]
        # difference updates
        for i in range(n):
            D[order + 2, i] = d[i] - D[order + 1, i]
            D[order + 1, i] = d[i]
        for m in range(3):
            DQ[order + 2, m] = dQ[m] - DQ[order + 1, m]
            DQ[order + 1, m] = dQ[m]
        for j in range(order, -1, -1):
            for i in range(n):
                D[j, i] += D[j + 1, i]
            for m in range(3):
                DQ[j, m] += DQ[j + 1, m]
        _inventory_state(D[0], vol, inv)
        e = 0.0
        for m in range(3):
            sc = max(max(abs(DQ[0, m]), abs(inv0[m])), 1e-300)
            v = abs(inv[m] - DQ[0, m]) / sc
            if v > e:
                e = v
        rec_t[ist[I_NREC]] = tnew
        rec_err[ist[I_NREC]] = e
        ist[I_NREC] += 1
        if xvmin < fst[F_MIN_XV]:
            fst[F_MIN_XV] = xvmin
        # dense output at the requested times passed in this step
        io = ist[I_IOUT]
        while io < nout and t_out[io] <= tnew + tslack:
            to = t_out[io]
            if to >= tnew:
                for i in range(n):
                    out_y[io, i] = D[0, i]
            else:
                # y(t) = D0 + sum_j D[j] prod_{m<j} (t - tnew + m h) / (h (m + 1))
                for i in range(n):
                    out_y[io, i] = D[0, i]
                pj = 1.0
                for j in range(1, order + 1):
                    pj *= (to - (tnew - (j - 1) * h)) / (h * j)
                    for i in range(n):
                        out_y[io, i] += D[j, i] * pj
            io += 1
        ist[I_IOUT] = io
        fst[F_T] = tnew
        # order and step-size selection (quasi-constant steps)
        if ist[I_NEQ] >= order + 1:
            em = math.inf
            ep = math.inf
            if order > 1:
                acc = 0.0
                cm = ERROR_CONST[order - 1]
                for k in range(N):
                    for r in range(2):
                        i = 3 * k + r
                        q = cm * D[order, i] / scale[i]
                        acc += q * q
                em = math.sqrt(acc / (2 * N))
            if order < MAX_ORDER:
                acc = 0.0
                cp = ERROR_CONST[order + 1]
                for k in range(N):
                    for r in range(2):
                        i = 3 * k + r
                        q = cp * D[order + 2, i] / scale[i]
                        acc += q * q
                ep = math.sqrt(acc / (2 * N))
            fm = em ** (-1.0 / order) if em > 0.0 else math.inf
            f0 = err ** (-1.0 / (order + 1)) if err > 0.0 else math.inf
            fp = ep ** (-1.0 / (order + 2)) if ep > 0.0 else math.inf
            if order == 1:
                fm = 0.0
            if order == MAX_ORDER:
                fp = 0.0
            dord = 0
            fbest = f0
            if fm > fbest:
                fbest = fm
                dord = -1
            if fp > fbest:
                fbest = fp
                dord = 1
            factor = min(MAX_FACTOR, safety * fbest)
            if dord != 0 or factor < 1.0 or factor >= ctl[C_MIN_GROWTH]:
                order += dord
                ist[I_ORDER] = order
                _change_D(D, n, order, factor, RU, Dtmp)
                _change_D(DQ, 3, order, factor, RU, Dtmp)
                fst[F_H] = h * factor
                ist[I_NEQ] = 0
    ist[I_STATUS] = status
    return status
