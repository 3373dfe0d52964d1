"""Numba kernels: residual, analytic Jacobian (banded and 3x3 block-tridiagonal), LUs, BDF2 step.

The compiled NDF integrator (last section: :func:`start_segment`, :func:`advance`) uses
:func:`assemble_blocks`, :func:`block_factor` / :func:`block_solve` and, as fallback,
:func:`band_factor` / :func:`band_solve`; the banded :func:`assemble` and :func:`attempt_step`
serve :class:`DeviceModel.residual` (dense Jacobian for tests) and the BDF2 reference integrator.
All numba code lives in this one module on purpose: numba's on-disk cache of a function is
invalidated only when its own source file changes, not when a callee in another file does.

Unknowns are interleaved per node, ``y[3k] = x_Br``, ``y[3k+1] = x_V``, ``y[3k+2] = psi~``
(``psi~ = e psi / kT``), so the Jacobian has lower and upper bandwidth 5.  Lengths are in um,
time in s.  Band storage is LAPACK's ``dgbtrf`` layout, transposed so that a column is
contiguous: ``abT[j, KV + i - j] = J[i, j]`` with ``KV = KL + KU``; rows ``0..KL-1`` of each
column hold the fill-in of partial pivoting.

Discretisation (vertex-centred finite volumes, docs in :mod:`halide_ionics.continuum.solver`):
for each face between nodes a and b = a+1 with length h,

    u_j = ln x_j - psi~ + ln x_V^eq(c)                         (j = Br, Cl)
    G_j = [B(-du_j) x_V,a - B(du_j) x_V,b] / h,   du_j = u_j,b - u_j,a,   B(t) = t/(e^t - 1)
    lV_j = Lambda(x_j,a, x_j,b) * mean(p_j(c)/(1-x_V))           (column sums l_Brj + l_Clj)
    lx   = Lambda(x_Br) Lambda(x_Cl) * mean(q(c)/(1-x_V)^2)      (off-diagonal l_BrCl)
    F_Br = -Kh [lV_Br G_Br + lx (G_Cl - G_Br)],  F_V = Kh [lV_Br G_Br + lV_Cl G_Cl]

with Lambda the logarithmic mean and Kh = z s^2 / 6.  ``G_j`` is the exact Scharfetter-Gummel
flux of ``x_V d(Delta mu_j/kT)/dz``, so every face flux vanishes exactly on a discrete
equilibrium, and the logarithmic means make ``Lambda(x) d ln x = dx`` exact.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

NV = 3
KL = 5
KU = 5
KV = KL + KU
LDAB = 2 * KL + KU + 1


@njit(cache=True)
def interp(tab, dc, c):
    """Piecewise-linear value and slope of a table on the uniform grid [0, 1] (linear extrapolation)."""
    n = tab.shape[0]
    u = c / dc
    i = int(math.floor(u))
    if i < 0:
        i = 0
    elif i > n - 2:
        i = n - 2
    f = u - i
    slope = (tab[i + 1] - tab[i]) / dc
    return tab[i] + f * (tab[i + 1] - tab[i]), slope


@njit(cache=True, inline="always")
def _source(y, k, xb, xv, c, rs, dc, t_lkc, t_lka, t_phi, psiE, beta, vfac):
    """Electrode source at node k: S_V, the Br share ``fr`` of the ions exchanged, and partials.

    ``S_V = k_c e^{beta eta} (1 - x_V) - k_a e^{-(1-beta) eta} x_V`` with ``k = exp(table) * vfac``
    and ``eta = psiE[k] - psi~`` (the electrode's potential over the lattice's, kT/e units) when
    ``psiE`` is not empty, else no overpotential factor.  ``S_Br = -fr S_V``, ``S_Cl = -(1 - fr) S_V``
    with ``fr = t_phi(c)`` (the KMC species split) when ``t_phi`` is not empty, else the local ion
    composition ``x_Br/(1 - x_V)``.  Returns (S_V, dS_V/dx_Br, dS_V/dx_V, dS_V/dpsi~, fr,
    dfr/dx_Br, dfr/dx_V).
    """
    lkc, lkcp = interp(t_lkc, dc, c)
    lka, lkap = interp(t_lka, dc, c)
    kc = math.exp(lkc) * vfac
    ka = math.exp(lka) * vfac
    dSP = 0.0
    if psiE.shape[0] > 0:
        eta = psiE[k] - y[3 * k + 2]
        kc *= math.exp(beta * eta)
        ka *= math.exp(-(1.0 - beta) * eta)
        dSP = -beta * kc * (1.0 - xv) - (1.0 - beta) * ka * xv
    SV = kc * (1.0 - xv) - ka * xv
    dcB = -rs
    dcV = -xb * rs * rs
    dSc = kc * lkcp * (1.0 - xv) - ka * lkap * xv
    dSB = dSc * dcB
    dSV = -kc - ka + dSc * dcV
    if t_phi.shape[0] > 0:
        fr, frp = interp(t_phi, dc, c)
        dfB = frp * dcB
        dfV = frp * dcV
    else:
        fr = xb * rs
        dfB = rs
        dfV = xb * rs * rs
    return SV, dSB, dSV, dSP, fr, dfB, dfV


def block_workspace(n: int) -> np.ndarray:
    """Workspace of :func:`assemble`: the three (n, 3, 3) block diagonals."""
    return np.zeros((3, n, 3, 3))


@njit(cache=True)
def assemble(y, massc, hist, want_jac, R, abT, wk, hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh,
             dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac):
    """Residual R(y) and, if ``want_jac``, the banded Jacobian (into ``abT``) of one implicit stage.

    The banded form of :func:`assemble_blocks` (one discretisation, one code path): the blocks are
    assembled into the workspace ``wk`` (:func:`block_workspace`) and copied into the transposed
    LAPACK band layout.  Species rows: ``vol*(massc*x - hist) + (F_out - F_in) - srclen*S``; with
    massc = 0 and hist = 0 this is minus the semi-discrete right-hand side.  Poisson rows: the
    finite-volume ``d2 psi~/dz2 + (x_V - x_bg)/lambda^2`` (dimensionless), or ``psi~ - psiD`` on
    contact nodes.  Returns 0 on success, 1 if a halide fraction is not positive.
    """
    st = assemble_blocks(y, massc, hist, want_jac, R, wk[0], wk[1], wk[2], hface, vol, srclen, dirich, psiD, xbg,
                         inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac)
    if st == 0 and want_jac:
        blocks_to_band(wk[0], wk[1], wk[2], abT)
    return st


@njit(cache=True, inline="always")  # numba-level inlining: LLVM would call it and pass the tuple in memory
def _node(y, k, inv_dc, nt, t_pbr, t_pcl, t_q, t_g, want):
    """Per-node quantities of the fluxes (see :func:`assemble`): values and partials in (x_Br, x_V)."""
    xb = y[3 * k]
    xv = y[3 * k + 1]
    psi = y[3 * k + 2]
    xc = 1.0 - xb - xv
    rs = 1.0 / (1.0 - xv)
    c = xc * rs
    u = c * inv_dc
    i = int(u) if u > 0.0 else 0
    if i > nt - 2:
        i = nt - 2
    f = u - i
    dcB = -rs
    dcV = -xb * rs * rs
    d = t_g[i + 1] - t_g[i]
    g = t_g[i] + f * d
    gp = d * inv_dc
    d = t_pbr[i + 1] - t_pbr[i]
    pB = (t_pbr[i] + f * d) * rs
    pBp = d * inv_dc * rs
    d = t_pcl[i + 1] - t_pcl[i]
    pC = (t_pcl[i] + f * d) * rs
    pCp = d * inv_dc * rs
    d = t_q[i + 1] - t_q[i]
    rs2 = rs * rs
    q = (t_q[i] + f * d) * rs2
    qp = d * inv_dc * rs2
    lxb = math.log(xb)
    lxc = math.log(xc)
    if want:
        rxb = 1.0 / xb
        rxc = 1.0 / xc
    else:
        rxb = rxc = gp = pBp = pCp = qp = 0.0
    return (xb, xv, xc, lxb, lxc, lxb - psi + g, lxc - psi + g,
            rxb + gp * dcB, gp * dcV, -rxc + gp * dcB, -rxc + gp * dcV,
            pB, pBp * dcB, pBp * dcV + pB * rs, pC, pCp * dcB, pCp * dcV + pC * rs,
            q, qp * dcB, qp * dcV + 2.0 * q * rs, i, f, rs, rxb, rxc)


@njit(cache=True)
def _bern2(du, want):
    """B(-du), B(du) and (if want) their du-derivatives, with one expm1."""
    if abs(du) < 1e-3:
        x2 = du * du
        b = 1.0 - 0.5 * du + x2 / 12.0 - x2 * x2 / 720.0
        db = -0.5 + du / 6.0 - du * x2 / 180.0
    elif du > 700.0:
        e = math.exp(-du)
        b = du * e
        db = (1.0 - du) * e
    else:
        r = 1.0 / math.expm1(du)
        b = du * r
        db = (1.0 - b) * r - b if want else 0.0
    return b + du, -1.0 - db, b, db


@njit(cache=True)
def _logmean_r(a, b, la, lb, ra, rb, want):
    """:func:`logmean` with the reciprocals 1/a, 1/b given (one division); partials only if want."""
    L = lb - la
    if abs(L) < 2e-3:
        s = a + b
        t = (b - a) / s
        m = 0.5 * s
        t2 = t * t
        phi = 1.0 - t2 / 3.0 - 4.0 * t2 * t2 / 45.0
        if not want:
            return m * phi, 0.0, 0.0
        dphi = -2.0 * t / 3.0 - 16.0 * t * t2 / 45.0
        s2 = s * s
        return m * phi, 0.5 * phi - m * dphi * 2.0 * b / s2, 0.5 * phi + m * dphi * 2.0 * a / s2
    rL = 1.0 / L
    lam = (b - a) * rL
    if not want:
        return lam, 0.0, 0.0
    return lam, (lam * ra - 1.0) * rL, (1.0 - lam * rb) * rL


@njit(cache=True)
def _dflux(dLB, dLC, dPB, dPC, dQ, dGB, dGC, LBr, LCl, Pm, Pm2, Qm, GBr, GCl, lVBr, lVCl, lx, Kh):
    dlVBr = dLB * Pm + LBr * 0.5 * dPB
    dlVCl = dLC * Pm2 + LCl * 0.5 * dPC
    dlx = (dLB * LCl + LBr * dLC) * Qm + LBr * LCl * 0.5 * dQ
    tt = dlVBr * GBr + lVBr * dGB
    return -Kh * (tt + dlx * (GCl - GBr) + lx * (dGC - dGB)), Kh * (tt + dlVCl * GCl + lVCl * dGC)


@njit(cache=True)
def assemble_blocks(y, massc, hist, want_jac, R, Dg, Lo, Up, hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh,
                    dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac):
    """:func:`assemble` with the Jacobian in 3x3 block-tridiagonal form, in one streaming pass.

    Same residual and Jacobian entries as the banded :func:`assemble` (to round-off).  ``Dg[k]``
    is the diagonal block of node k, ``Lo[k]`` its coupling to node k-1 (block row k, column
    k-1) and ``Up[k]`` to node k+1; ``Lo[0]`` and ``Up[N-1]`` are zero.  Node quantities are
    computed once and carried to the next face in registers.  Returns 0, or 1 if a halide
    fraction is not positive.
    """
    N = vol.shape[0]
    nt = t_g.shape[0]
    inv_dc = 1.0 / dc
    src_on = vfac > 0.0
    if want_jac:
        for r in range(3):
            for c in range(3):
                Lo[0, r, c] = 0.0
                Up[N - 1, r, c] = 0.0
    # node a = previous node (carried), b = current node
    xba = xva = xca = lxba = lxca = uBa = uCa = dBBa = dBVa = dCBa = dCVa = 0.0
    pBa = pBBa = pBVa = pCa = pCBa = pCVa = qa = qBa = qVa = rxba = rxca = 0.0
    wl = 0.0  # 1 / (length of the face to the left of the current node)
    for k in range(N):
        xb = y[3 * k]
        xv = y[3 * k + 1]
        if not (xb > 0.0) or not (1.0 - xb - xv > 0.0):
            return 1
        (xbb, xvb, xcb, lxbb, lxcb, uBb, uCb, dBBb, dBVb, dCBb, dCVb, pBb, pBBb, pBVb, pCb, pCBb, pCVb,
         qb, qBb, qVb, ti, tf, rs, rxbb, rxcb) = _node(y, k, inv_dc, nt, t_pbr, t_pcl, t_q, t_g, want_jac)
        # node terms: storage and electrode sources
        rB = vol[k] * (massc * xbb - hist[3 * k])
        rV = vol[k] * (massc * xvb - hist[3 * k + 1])
        if want_jac:
            for r in range(3):
                for c in range(3):
                    Dg[k, r, c] = 0.0
            Dg[k, 0, 0] = vol[k] * massc
            Dg[k, 1, 1] = vol[k] * massc
        if src_on and srclen[k] > 0.0:
            SV, dSV_B, dSV_V, dSV_P, fr, dfB, dfV = _source(y, k, xbb, xvb, xcb * rs, rs, dc, t_lkc, t_lka, t_phi,
                                                            psiE, beta, vfac)
            L = srclen[k]
            rB += L * SV * fr
            rV -= L * SV
            if want_jac:
                Dg[k, 0, 0] += L * (dSV_B * fr + SV * dfB)
                Dg[k, 0, 1] += L * (dSV_V * fr + SV * dfV)
                Dg[k, 0, 2] += L * dSV_P * fr
                Dg[k, 1, 0] -= L * dSV_B
                Dg[k, 1, 1] -= L * dSV_V
                Dg[k, 1, 2] -= L * dSV_P
        R[3 * k] = rB
        R[3 * k + 1] = rV
        # Poisson row
        r = 3 * k + 2
        wr = 1.0 / hface[k] if k < N - 1 else 0.0
        if dirich[k]:
            R[r] = y[r] - psiD[k]
            if want_jac:
                Dg[k, 2, 2] = 1.0
                if k > 0:
                    Lo[k, 2, 2] = 0.0
                if k < N - 1:
                    Up[k, 2, 2] = 0.0
        else:
            acc = vol[k] * (xvb - xbg[k]) * inv_lam2
            if k > 0:
                acc += wl * (y[r - 3] - y[r])
            if k < N - 1:
                acc += wr * (y[r + 3] - y[r])
            R[r] = acc
            if want_jac:
                if k > 0:
                    Lo[k, 2, 2] = wl
                if k < N - 1:
                    Up[k, 2, 2] = wr
                Dg[k, 2, 2] = -(wl + wr)
                Dg[k, 2, 1] = vol[k] * inv_lam2
        if want_jac:
            if k > 0:
                Lo[k, 2, 0] = 0.0
                Lo[k, 2, 1] = 0.0
            if k < N - 1:
                Up[k, 2, 0] = 0.0
                Up[k, 2, 1] = 0.0
        if k > 0:
            # face (a, b) = (k - 1, k)
            a = k - 1
            rh = wl
            LBr, la, lb = _logmean_r(xba, xbb, lxba, lxbb, rxba, rxbb, want_jac)
            LCl, lca, lcb = _logmean_r(xca, xcb, lxca, lxcb, rxca, rxcb, want_jac)
            Pm = 0.5 * (pBa + pBb)
            Pm2 = 0.5 * (pCa + pCb)
            Qm = 0.5 * (qa + qb)
            lVBr = LBr * Pm
            lVCl = LCl * Pm2
            lx = LBr * LCl * Qm
            du = uBb - uBa
            B1, dB1, B2, dB2 = _bern2(du, want_jac)
            GBr = (B1 * xva - B2 * xvb) * rh
            du = uCb - uCa
            C1, dC1, C2, dC2 = _bern2(du, want_jac)
            GCl = (C1 * xva - C2 * xvb) * rh
            FB = -Kh * (lVBr * GBr + lx * (GCl - GBr))
            FV = Kh * (lVBr * GBr + lVCl * GCl)
            R[3 * a] += FB
            R[3 * k] -= FB
            R[3 * a + 1] += FV
            R[3 * k + 1] -= FV
            if want_jac:
                gB = (-dB1 * xva - dB2 * xvb) * rh
                gC = (-dC1 * xva - dC2 * xvb) * rh
                # x_Br of a
                fb, fv = _dflux(la, -lca, pBBa, pCBa, qBa, -gB * dBBa, -gC * dCBa, LBr, LCl, Pm, Pm2, Qm, GBr, GCl,
                                lVBr, lVCl, lx, Kh)
                Dg[a, 0, 0] += fb
                Dg[a, 1, 0] += fv
                Lo[k, 0, 0] = -fb
                Lo[k, 1, 0] = -fv
                # x_V of a
                fb, fv = _dflux(0.0, -lca, pBVa, pCVa, qVa, -gB * dBVa + B1 * rh, -gC * dCVa + C1 * rh, LBr, LCl, Pm,
                                Pm2, Qm, GBr, GCl, lVBr, lVCl, lx, Kh)
                Dg[a, 0, 1] += fb
                Dg[a, 1, 1] += fv
                Lo[k, 0, 1] = -fb
                Lo[k, 1, 1] = -fv
                # psi of a (psi of b: the opposite)
                fb = -Kh * (lVBr * gB + lx * (gC - gB))
                fv = Kh * (lVBr * gB + lVCl * gC)
                Dg[a, 0, 2] += fb
                Dg[a, 1, 2] += fv
                Lo[k, 0, 2] = -fb
                Lo[k, 1, 2] = -fv
                Up[a, 0, 2] = -fb
                Up[a, 1, 2] = -fv
                Dg[k, 0, 2] += fb
                Dg[k, 1, 2] += fv
                # x_Br of b
                fb, fv = _dflux(lb, -lcb, pBBb, pCBb, qBb, gB * dBBb, gC * dCBb, LBr, LCl, Pm, Pm2, Qm, GBr, GCl,
                                lVBr, lVCl, lx, Kh)
                Up[a, 0, 0] = fb
                Up[a, 1, 0] = fv
                Dg[k, 0, 0] -= fb
                Dg[k, 1, 0] -= fv
                # x_V of b
                fb, fv = _dflux(0.0, -lcb, pBVb, pCVb, qVb, gB * dBVb - B2 * rh, gC * dCVb - C2 * rh, LBr, LCl, Pm,
                                Pm2, Qm, GBr, GCl, lVBr, lVCl, lx, Kh)
                Up[a, 0, 1] = fb
                Up[a, 1, 1] = fv
                Dg[k, 0, 1] -= fb
                Dg[k, 1, 1] -= fv
        xba, xva, xca, lxba, lxca, uBa, uCa = xbb, xvb, xcb, lxbb, lxcb, uBb, uCb
        dBBa, dBVa, dCBa, dCVa = dBBb, dBVb, dCBb, dCVb
        pBa, pBBa, pBVa, pCa, pCBa, pCVa, qa, qBa, qVa = pBb, pBBb, pBVb, pCb, pCBb, pCVb, qb, qBb, qVb
        rxba, rxca = rxbb, rxcb
        wl = wr
    return 0


@njit(cache=True)
def _inv3(A, k, out):
    """out[k] = inverse of the 3x3 block A[k] (cofactors); returns False if singular or not finite."""
    a = A[k, 0, 0]
    b = A[k, 0, 1]
    c = A[k, 0, 2]
    d = A[k, 1, 0]
    e = A[k, 1, 1]
    f = A[k, 1, 2]
    g = A[k, 2, 0]
    h = A[k, 2, 1]
    i = A[k, 2, 2]
    c00 = e * i - f * h
    c01 = f * g - d * i
    c02 = d * h - e * g
    det = a * c00 + b * c01 + c * c02
    # reject (near-)singular blocks relative to the row scales (the determinant is scale-covariant)
    s0 = abs(a) + abs(b) + abs(c)
    s1 = abs(d) + abs(e) + abs(f)
    s2 = abs(g) + abs(h) + abs(i)
    if not (abs(det) > 1e-14 * s0 * s1 * s2) or not math.isfinite(det):
        return False
    r = 1.0 / det
    out[k, 0, 0] = c00 * r
    out[k, 1, 0] = c01 * r
    out[k, 2, 0] = c02 * r
    out[k, 0, 1] = (c * h - b * i) * r
    out[k, 1, 1] = (a * i - c * g) * r
    out[k, 2, 1] = (b * g - a * h) * r
    out[k, 0, 2] = (b * f - c * e) * r
    out[k, 1, 2] = (c * d - a * f) * r
    out[k, 2, 2] = (a * e - b * d) * r
    return True


@njit(cache=True)
def block_factor(Dg, Lo, Up, L, Dinv):
    """Block LU of the 3x3 block-tridiagonal matrix (Dg, Lo, Up); the matrix is left intact.

    Block Thomas algorithm: ``S_0 = Dg_0``, ``L_k = Lo_k S_{k-1}^{-1}``, ``S_k = Dg_k - L_k Up_{k-1}``;
    ``L`` receives the multipliers and ``Dinv`` the inverses ``S_k^{-1}`` (3x3 cofactors).  No
    pivoting across blocks: it is meant for the column-diagonally dominant species blocks of the
    device Jacobian (mass term plus telescoping fluxes) and the Poisson rows, where it is far more
    accurate than row pivoting across the very differently scaled rows.  A pivot block that is
    singular relative to its row scales, or element growth beyond ``1e12``, makes it return
    ``k + 1`` (the caller then falls back to the banded LU with partial pivoting).  Returns 0 on
    success.
    """
    N = Dg.shape[0]
    amax0 = 0.0
    for k in range(N):
        for r in range(3):
            for c in range(3):
                v = abs(Dg[k, r, c])
                if v > amax0:
                    amax0 = v
    for k in range(N):
        if k == 0:
            for r in range(3):
                for c in range(3):
                    Dinv[0, r, c] = Dg[0, r, c]
        else:
            # L_k = Lo_k S_{k-1}^{-1};  S_k = Dg_k - L_k Up_{k-1}  (S_k built in Dinv[k], inverted in place)
            for r in range(3):
                l0 = Lo[k, r, 0]
                l1 = Lo[k, r, 1]
                l2 = Lo[k, r, 2]
                m0 = l0 * Dinv[k - 1, 0, 0] + l1 * Dinv[k - 1, 1, 0] + l2 * Dinv[k - 1, 2, 0]
                m1 = l0 * Dinv[k - 1, 0, 1] + l1 * Dinv[k - 1, 1, 1] + l2 * Dinv[k - 1, 2, 1]
                m2 = l0 * Dinv[k - 1, 0, 2] + l1 * Dinv[k - 1, 1, 2] + l2 * Dinv[k - 1, 2, 2]
                L[k, r, 0] = m0
                L[k, r, 1] = m1
                L[k, r, 2] = m2
                for c in range(3):
                    v = Dg[k, r, c] - (m0 * Up[k - 1, 0, c] + m1 * Up[k - 1, 1, c] + m2 * Up[k - 1, 2, c])
                    Dinv[k, r, c] = v
                    if not (abs(v) <= 1e12 * amax0):
                        return k + 1
        if not _inv3(Dinv, k, Dinv):
            return k + 1
    return 0


@njit(cache=True)
def block_solve(L, Up, Dinv, b):
    """Solve with the factors (L, Dinv) of :func:`block_factor`; b (interleaved, 3N) is overwritten."""
    N = Dinv.shape[0]
    for k in range(1, N):
        z0 = b[3 * k - 3]
        z1 = b[3 * k - 2]
        z2 = b[3 * k - 1]
        b[3 * k] -= L[k, 0, 0] * z0 + L[k, 0, 1] * z1 + L[k, 0, 2] * z2
        b[3 * k + 1] -= L[k, 1, 0] * z0 + L[k, 1, 1] * z1 + L[k, 1, 2] * z2
        b[3 * k + 2] -= L[k, 2, 0] * z0 + L[k, 2, 1] * z1 + L[k, 2, 2] * z2
    x0 = 0.0
    x1 = 0.0
    x2 = 0.0
    for k in range(N - 1, -1, -1):
        r0 = b[3 * k]
        r1 = b[3 * k + 1]
        r2 = b[3 * k + 2]
        if k < N - 1:
            r0 -= Up[k, 0, 0] * x0 + Up[k, 0, 1] * x1 + Up[k, 0, 2] * x2
            r1 -= Up[k, 1, 0] * x0 + Up[k, 1, 1] * x1 + Up[k, 1, 2] * x2
            r2 -= Up[k, 2, 0] * x0 + Up[k, 2, 1] * x1 + Up[k, 2, 2] * x2
        x0 = Dinv[k, 0, 0] * r0 + Dinv[k, 0, 1] * r1 + Dinv[k, 0, 2] * r2
        x1 = Dinv[k, 1, 0] * r0 + Dinv[k, 1, 1] * r1 + Dinv[k, 1, 2] * r2
        x2 = Dinv[k, 2, 0] * r0 + Dinv[k, 2, 1] * r1 + Dinv[k, 2, 2] * r2
        b[3 * k] = x0
        b[3 * k + 1] = x1
        b[3 * k + 2] = x2


@njit(cache=True)
def blocks_to_band(Dg, Lo, Up, abT):
    """Copy a block-tridiagonal matrix into the transposed LAPACK band layout of :func:`band_factor`."""
    N = Dg.shape[0]
    abT[:, :] = 0.0
    for k in range(N):
        for r in range(3):
            i = 3 * k + r
            for c in range(3):
                abT[3 * k + c, KV + i - 3 * k - c] = Dg[k, r, c]
                if k > 0:
                    j = 3 * (k - 1) + c
                    if KV + i - j < LDAB:
                        abT[j, KV + i - j] = Lo[k, r, c]
                if k < N - 1:
                    j = 3 * (k + 1) + c
                    if KV + i - j >= 0:
                        abT[j, KV + i - j] = Up[k, r, c]


@njit(cache=True)
def face_fluxes(y, hface, Kh, dc, t_pbr, t_pcl, t_q, t_g):
    """Face fluxes F_Br, F_Cl, F_V (site fraction x um/s; multiply by c_s for sites/(area s)).

    The same flux formulas as :func:`assemble_blocks` (node quantities computed once per node).
    """
    N = hface.shape[0] + 1
    nt = t_g.shape[0]
    inv_dc = 1.0 / dc
    FB = np.empty(N - 1)
    FC = np.empty(N - 1)
    FV = np.empty(N - 1)
    na = _node(y, 0, inv_dc, nt, t_pbr, t_pcl, t_q, t_g, False)
    for b in range(1, N):
        nb = _node(y, b, inv_dc, nt, t_pbr, t_pcl, t_q, t_g, False)
        rh = 1.0 / hface[b - 1]
        LBr, _, _ = _logmean_r(na[0], nb[0], na[3], nb[3], 0.0, 0.0, False)
        LCl, _, _ = _logmean_r(na[2], nb[2], na[4], nb[4], 0.0, 0.0, False)
        lVBr = LBr * 0.5 * (na[11] + nb[11])
        lVCl = LCl * 0.5 * (na[14] + nb[14])
        lx = LBr * LCl * 0.5 * (na[17] + nb[17])
        du = nb[5] - na[5]
        B1, _, B2, _ = _bern2(du, False)
        GBr = (B1 * na[1] - B2 * nb[1]) * rh
        du = nb[6] - na[6]
        B1, _, B2, _ = _bern2(du, False)
        GCl = (B1 * na[1] - B2 * nb[1]) * rh
        FB[b - 1] = -Kh * (lVBr * GBr + lx * (GCl - GBr))
        FC[b - 1] = -Kh * (lVCl * GCl + lx * (GBr - GCl))
        FV[b - 1] = -(FB[b - 1] + FC[b - 1])
        na = nb
    return FB, FC, FV


@njit(cache=True)
def source_totals(y, srclen, dc, t_lkc, t_lka, t_phi, psiE, beta, vfac):
    """Integrated sources (sum over boxes of length x S_i) for Br, Cl, V, in um/s."""
    N = srclen.shape[0]
    tB = 0.0
    tV = 0.0
    if vfac > 0.0:
        for k in range(N):
            if srclen[k] > 0.0:
                xb = y[3 * k]
                xv = y[3 * k + 1]
                s = 1.0 - xv
                c = (1.0 - xb - xv) / s
                SV, _, _, _, fr, _, _ = _source(y, k, xb, xv, c, 1.0 / s, dc, t_lkc, t_lka, t_phi, psiE, beta,
                                                vfac)
                tV += srclen[k] * SV
                tB -= srclen[k] * SV * fr
    return tB, -tV - tB, tV


@njit(cache=True)
def band_factor(abT, n, ipiv):
    """In-place LU with partial pivoting of a band matrix (LAPACK dgbtf2 in transposed layout)."""
    ju = 0
    for j in range(n):
        km = min(KL, n - 1 - j)
        # fill-in rows of column j + KU become active
        jp = 0
        amax = abs(abT[j, KV])
        for i in range(1, km + 1):
            v = abs(abT[j, KV + i])
            if v > amax:
                amax = v
                jp = i
        ipiv[j] = j + jp
        if amax == 0.0 or not math.isfinite(amax):
            return j + 1
        ju = max(ju, min(j + KU + jp, n - 1))
        if jp != 0:
            for c in range(j, ju + 1):
                r1 = KV + j - c
                r2 = KV + j + jp - c
                t = abT[c, r1]
                abT[c, r1] = abT[c, r2]
                abT[c, r2] = t
        if km > 0:
            piv = 1.0 / abT[j, KV]
            for i in range(1, km + 1):
                abT[j, KV + i] *= piv
            for c in range(j + 1, ju + 1):
                t = abT[c, KV + j - c]
                if t != 0.0:
                    base = KV + j - c
                    for i in range(1, km + 1):
                        abT[c, base + i] -= abT[j, KV + i] * t
    return 0


@njit(cache=True)
def band_solve(abT, n, ipiv, b):
    """Solve with the factors of band_factor; b is overwritten with the solution."""
    for j in range(n):
        km = min(KL, n - 1 - j)
        p = ipiv[j]
        if p != j:
            t = b[p]
            b[p] = b[j]
            b[j] = t
        bj = b[j]
        if bj != 0.0:
            for i in range(1, km + 1):
                b[j + i] -= abT[j, KV + i] * bj
    for j in range(n - 1, -1, -1):
        b[j] /= abT[j, KV]
        bj = b[j]
        lo = max(0, j - KV)
        for i in range(lo, j):
            b[i] -= abT[j, KV + i - j] * bj


@njit(cache=True)
def ledger(y, vol, srclen, dc, t_lkc, t_lka, t_phi, psiE, beta, vfac):
    """Inventories sum(box * x_i) and integrated sources sum(srclen * S_i), i = Br, Cl, V (um, um/s)."""
    N = vol.shape[0]
    iB = 0.0
    iV = 0.0
    tot = 0.0
    for k in range(N):
        iB += vol[k] * y[3 * k]
        iV += vol[k] * y[3 * k + 1]
        tot += vol[k]
    inv = np.empty(3)
    inv[0] = iB
    inv[2] = iV
    iC = 0.0
    for k in range(N):
        iC += vol[k] * (1.0 - y[3 * k] - y[3 * k + 1])
    inv[1] = iC
    src = np.zeros(3)
    tB, tC, tV = source_totals(y, srclen, dc, t_lkc, t_lka, t_phi, psiE, beta, vfac)
    src[0] = tB
    src[1] = tC
    src[2] = tV
    return inv, src


@njit(cache=True)
def attempt_step(Yh, th, nh, h, ydot0, rtol, atol, xref, psi_atol, newton_tol, maxit, ynew, histv, W, R, abT,
                 ipiv, wk, hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g,
                 t_lkc, t_lka, t_phi, psiE, beta, vfac):
    """One attempted BDF step from the accepted states Yh[:nh] (oldest first) at times th[:nh].

    Order 2 (variable-step BDF2) when three states are available, else backward Euler.  Newton
    with the analytic Jacobian, reusing its LU factors while the iteration contracts fast.
    Returns (status, error_norm, newton_iterations, min x_V); status 0 converged, 1 non-positive
    halide fraction, 2 singular Jacobian, 3 diverged, 4 not converged in maxit.
    The local error is the leading term of the method's truncation error, from divided
    differences of the accepted states (BDF2: h^3 (1+w)^2/(w(1+2w)) y[t_n-2..t_n+1]).
    """
    n = ynew.shape[0]
    N = n // 3
    yn = Yh[nh - 1]
    for k in range(N):
        W[3 * k] = atol + rtol * abs(yn[3 * k])
        W[3 * k + 1] = atol * xref + rtol * abs(yn[3 * k + 1])
        W[3 * k + 2] = psi_atol + rtol * abs(yn[3 * k + 2])
    om = 1.0
    if nh >= 3:
        hp = th[nh - 1] - th[nh - 2]
        om = h / hp
        a = (1.0 + 2.0 * om) / (1.0 + om)
        bco = 1.0 + om
        cco = om * om / (1.0 + om)
        massc = a / h
        ym1 = Yh[nh - 2]
        for i in range(n):
            histv[i] = (bco * yn[i] - cco * ym1[i]) / h
    else:
        massc = 1.0 / h
        for i in range(n):
            histv[i] = yn[i] / h
    if nh >= 2:
        r = h / (th[nh - 1] - th[nh - 2])
        ym1 = Yh[nh - 2]
        for i in range(n):
            v = yn[i] + r * (yn[i] - ym1[i])
            if i % 3 != 2 and not (v > 0.5 * yn[i]):
                v = yn[i]
            ynew[i] = v
    else:
        for i in range(n):
            ynew[i] = yn[i]
    # Newton
    status = 4
    its = 0
    dn_old = 0.0
    fresh = False
    need_refactor = False
    for it in range(maxit):
        its = it + 1
        if it == 0 or need_refactor:
            st = assemble(ynew, massc, histv, True, R, abT, wk, hface, vol, srclen, dirich, psiD, xbg, inv_lam2,
                          Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac)
            if st != 0:
                return 1, 0.0, its, 0.0
            if band_factor(abT, n, ipiv) != 0:
                return 2, 0.0, its, 0.0
            fresh = True
        else:
            st = assemble(ynew, massc, histv, False, R, abT, wk, hface, vol, srclen, dirich, psiD, xbg, inv_lam2,
                          Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac)
            if st != 0:
                return 1, 0.0, its, 0.0
            fresh = False
        for i in range(n):
            R[i] = -R[i]
        band_solve(abT, n, ipiv, R)
        acc = 0.0
        for i in range(n):
            ynew[i] += R[i]
            q = R[i] / W[i]
            acc += q * q
        dn = math.sqrt(acc / n)
        if not math.isfinite(dn):
            return 3, 0.0, its, 0.0
        for k in range(N):
            xb = ynew[3 * k]
            if not (xb > 0.0) or not (1.0 - xb - ynew[3 * k + 1] > 0.0):
                return 1, 0.0, its, 0.0
        need_refactor = False
        if dn == 0.0:
            status = 0
            break
        if it > 0:
            rate = dn / dn_old
            if rate >= 1.0:
                if fresh:
                    return 3, 0.0, its, 0.0
                need_refactor = True
            elif rate / (1.0 - rate) * dn < newton_tol:
                status = 0
                break
            elif rate > 0.2:
                need_refactor = True
        elif dn < 1e-3 * newton_tol:
            status = 0
            break
        dn_old = dn
    if status != 0:
        return status, 0.0, its, 0.0
    # local error estimate on the species rows
    acc = 0.0
    xvmin = 1.0
    tn1 = th[nh - 1] + h
    for k in range(N):
        for r in range(2):
            i = 3 * k + r
            if nh >= 3:
                t0 = th[nh - 3]
                t1 = th[nh - 2]
                t2 = th[nh - 1]
                d10 = (Yh[nh - 2][i] - Yh[nh - 3][i]) / (t1 - t0)
                d11 = (Yh[nh - 1][i] - Yh[nh - 2][i]) / (t2 - t1)
                d12 = (ynew[i] - Yh[nh - 1][i]) / (tn1 - t2)
                d20 = (d11 - d10) / (t2 - t0)
                d21 = (d12 - d11) / (tn1 - t1)
                d3 = (d21 - d20) / (tn1 - t0)
                e = h * h * h * (1.0 + om) ** 2 / (om * (1.0 + 2.0 * om)) * d3
            elif nh == 2:
                hp = th[1] - th[0]
                dd2 = ((ynew[i] - yn[i]) / h - (yn[i] - Yh[0][i]) / hp) / (h + hp)
                e = h * h * dd2
            else:
                e = ynew[i] - yn[i] - h * ydot0[i]
            if r == 0:
                w = atol + rtol * max(abs(yn[i]), abs(ynew[i]))
            else:
                w = atol * xref + rtol * max(abs(yn[i]), abs(ynew[i]))
                if ynew[i] < xvmin:
                    xvmin = ynew[i]
            q = e / w
            acc += q * q
    return 0, math.sqrt(acc / (2 * N)), its, xvmin


# =============================================================================================
# Compiled variable-order NDF integrator (used by solver._Integrator)
# =============================================================================================
# Compiled variable-order NDF integrator for the device DAE (numba; no Python per step).
#
# The semi-discrete system is ``M y' = F(y)`` with ``M = diag(box)`` on the species rows
# (x_Br, x_V) and ``0`` on the Poisson rows (psi is algebraic: an index-1 DAE).  It is integrated
# with the quasi-constant-step numerical differentiation formulas of Shampine & Reichelt (the
# MATLAB ``ode15s`` / scipy ``solve_ivp(method="BDF")`` scheme, orders 1-5) in backward-difference
# form: ``D[j]`` holds the j-th backward differences of the interpolating polynomial through the
# last accepted states, ``D[0] = y_n``.  A step of order k solves
#
#     M (d + psi_k) / c - F(y_pred + d) = 0,   c = h / alpha_k,
#     y_pred = sum_{j<=k} D[j],  psi_k = sum_{1<=j<=k} gamma_j D[j] / alpha_k,
#
# i.e. the residual kernel's stage with ``massc = 1/c`` and ``hist = (y_pred - psi_k)/c``.
#
# Newton.  By default every step evaluates the analytic Jacobian at the predictor and factors it
# (3x3 block-tridiagonal LU, :func:`block_factor`, with the banded LU with partial
# pivoting as fallback): for this problem one Jacobian costs about as much as one residual, and
# a fresh Jacobian makes Newton converge quadratically from the predictor (the second correction
# is typically 1e-6 of the first).  A step therefore stops after one correction when the
# quadratic model ``kappa * |dy_1|^2`` -- ``kappa = |dy_2| / |dy_1|^2`` measured on a step no more
# than ``KAPPA_MAX_AGE`` steps ago with a fresh Jacobian -- is below ``KAPPA_SAFETY * newton_tol``;
# otherwise it iterates with scipy's rate test (``newton_tol = max(10 eps/rtol, min(0.03,
# rtol^0.5))`` in the weighted norm, at most ``solver.max_newton`` corrections).  Factor reuse
# over steps (simplified Newton) is available through the control array but off by default.
# A non-converging iteration with an old Jacobian retries with a fresh one; otherwise the step
# is halved (quartered when an iterate leaves the physical domain).
#
# Error control, order and step selection follow the scipy code: local error
# ``error_const_k * d``, orders k-1 and k+1 estimated from ``D[k]`` and ``D[k+2]`` after k+1 equal
# steps, step factor ``safety * err^(-1/(k+1))`` limited to [0.2, 10] (increases below
# ``MIN_GROWTH`` are skipped).  The error norm is the RMS over the species rows of
# ``e / (atol_i + rtol max(|y_n|, |y_n+1|))`` with ``atol_i = atol`` for x_Br and
# ``atol * x_V,ref`` for x_V; psi is algebraic and enters only the Newton norm (with
# ``PSI_ATOL``).  Steps whose x_V dips below ``-atol * x_V,ref`` are rejected.
#
# Conservation ledger: the three site inventories ``Q_i`` obey ``dQ_i/dt = S_i`` (integrated
# sources; the face fluxes telescope).  The same NDF recursion -- the same difference arrays,
# rescalings and coefficients -- is applied to them, so ``inventory(y_n) - Q_n`` measures exactly
# what the discrete scheme fails to conserve (round-off plus the Newton residual of the sources).
#
# Outputs at requested times use the method's interpolating polynomial (dense output).  The
# caller restarts the integrator (order 1, consistent psi) at every bias breakpoint.

MAX_ORDER = 5
_KAPPA = np.array([0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0])
GAMMA = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, MAX_ORDER + 1))])
ALPHA = (1.0 - _KAPPA) * GAMMA
ERROR_CONST = _KAPPA * GAMMA + 1.0 / np.arange(1, MAX_ORDER + 2)

MIN_FACTOR = 0.2
MAX_FACTOR = 10.0
MAX_CONSECUTIVE_FAILURES = 25

# control array ctl[...] of advance(): tuning knobs, defaults in DEFAULT_CONTROL
C_LU_SLACK, C_LU_MAX_AGE, C_MIN_GROWTH, C_KAPPA_MAX_AGE, C_KAPPA_SAFETY, C_FORCE_BAND = range(6)
LU_SLACK = 0.0        # reuse factors while |c_LU / c - 1| <= this ...
LU_MAX_AGE = 1        # ... and fewer than this many steps have passed (1: fresh Jacobian every step)
MIN_GROWTH = 1.2      # skip step-size increases smaller than this
KAPPA_MAX_AGE = 10    # steps a measured quadratic-convergence constant stays valid
KAPPA_SAFETY = 0.1    # one-correction acceptance: kappa |dy_1|^2 < KAPPA_SAFETY * newton_tol
FORCE_BAND = 0        # 1: always use the banded LU with partial pivoting (tests the fallback)
DEFAULT_CONTROL = (LU_SLACK, LU_MAX_AGE, MIN_GROWTH, KAPPA_MAX_AGE, KAPPA_SAFETY, FORCE_BAND)

# integer state ist[...]
I_ORDER, I_NEQ, I_LU_OK, I_LU_MODE, I_STEPS, I_REJ, I_NEWTON, I_NLU, I_FAILS, I_NREC, I_IOUT, I_LU_AGE, \
    I_STATUS, I_NFEV, I_KAPPA_AGE, I_NBAND = range(16)
N_IST = 16
# float state fst[...]
F_T, F_H, F_MIN_XV, F_MASSC_LU, F_KAPPA, F_MAX_XV = range(6)
N_FST = 6

# status codes
ST_RUNNING, ST_SEGMENT_DONE, ST_BUFFER_FULL, ST_MAX_STEPS, ST_STEP_FAILURE = 0, 1, 2, 3, 4


@njit(cache=True)
def _change_D(D, DQ, order, factor, RU, Dtmp):
    """Rescale the difference arrays D[:order+1] and DQ[:order+1] for a step multiplied by ``factor``."""
    k = order + 1
    # R(order, factor) and U = R(order, 1); RU = R @ U  (scipy's compute_R / change_D)
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
    # D[i] <- sum_m RU[m, i] D[m]  (component loops innermost: unit stride, vectorisable)
    for A in (D, DQ):
        nc = A.shape[1]
        for i in range(k):
            for c in range(nc):
                Dtmp[i, c] = RU[0, i] * A[0, c]
            for m in range(1, k):
                f = RU[m, i]
                for c in range(nc):
                    Dtmp[i, c] += f * A[m, c]
        for i in range(k):
            for c in range(nc):
                A[i, c] = Dtmp[i, c]


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
                  dirich, psiD, xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac):
    """Initialise the difference arrays at a (re)start: order 1, D[1] = h f(y0) on the species rows.

    ``y0`` must carry the consistent potential.  The first step is ``h_user`` if positive, else
    ``min(1/||f||, 1e-3 (tb - t0))`` with the species error weights.  Returns 0, or 1 if y0 is
    outside the domain.
    """
    n = y0.shape[0]
    N = n // 3
    hist = np.zeros(n)
    no_jac = D.shape[0] < 0  # a run-time False: a literal would compile a second specialisation
    st = assemble_blocks(y0, 0.0, hist, no_jac, R, Dg, Lo, Up, hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh, dc,
                         t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac)
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
def _predict(D, order, alpha, massc, atol, rtol, xref, psi_atol, ypred, psiv, hist, scale):
    """NDF predictor ``ypred``, the history term ``hist`` of the stage equation and the inverse
    Newton weights ``scale``."""
    n = ypred.shape[0]
    ra = 1.0 / alpha
    for i in range(n):
        ypred[i] = D[0, i]
        psiv[i] = 0.0
    for j in range(1, order + 1):
        gj = GAMMA[j] * ra
        for i in range(n):
            v = D[j, i]
            ypred[i] += v
            psiv[i] += gj * v
    for i in range(n):
        hist[i] = massc * (ypred[i] - psiv[i])
    for k in range(n // 3):
        scale[3 * k] = 1.0 / (atol + rtol * abs(ypred[3 * k]))
        scale[3 * k + 1] = 1.0 / (atol * xref + rtol * abs(ypred[3 * k + 1]))
        scale[3 * k + 2] = 1.0 / (psi_atol + rtol * abs(ypred[3 * k + 2]))


@njit(cache=True)
def _newton(massc, newton_tol, maxit, ctl, ist, fst, y, d, dy, ypred, hist, scale, R, Dg, Lo, Up, Lm, Dinv, abT,
            ipiv, hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka,
            t_phi, psiE, beta, vfac):
    """Simplified Newton for one stage from the predictor: LU factors reused while they are fresh
    enough, refreshed (and the step retried) when an old Jacobian fails to converge; one
    correction suffices when the measured quadratic constant guarantees it.  ``y`` ends as the
    solution and ``d`` as its difference from the predictor.  Returns (converged, domain_fail,
    iterations)."""
    n = y.shape[0]
    converged = False
    domain_fail = False
    n_iter = 0
    jac_fresh = False
    while True:
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
            fresh_now = it == 0 and ist[I_LU_OK] == 0
            st = assemble_blocks(y, massc, hist, fresh_now, R, Dg, Lo, Up, hface, vol, srclen, dirich, psiD, xbg,
                                 inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE, beta, vfac)
            if st != 0:
                domain_fail = True
                break
            if fresh_now:
                ist[I_NLU] += 1
                jac_fresh = True
                ist[I_LU_AGE] = 0
                fst[F_MASSC_LU] = massc
                ist[I_LU_MODE] = 0
                if ctl[C_FORCE_BAND] != 0.0 or block_factor(Dg, Lo, Up, Lm, Dinv) != 0:
                    # no safe block pivots: banded LU with partial pivoting of the same matrix
                    blocks_to_band(Dg, Lo, Up, abT)
                    ist[I_LU_MODE] = 1
                    ist[I_NBAND] += 1
                    if band_factor(abT, n, ipiv) != 0:
                        ist[I_LU_OK] = 0
                        break
                ist[I_LU_OK] = 1
            for i in range(n):
                dy[i] = -R[i]
            if ist[I_LU_MODE] == 0:
                block_solve(Lm, Up, Dinv, dy)
            else:
                band_solve(abT, n, ipiv, dy)
            acc = 0.0
            for i in range(n):
                q = dy[i] * scale[i]
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
        for k in range(n // 3):
            xb = y[3 * k]
            if not (xb > 0.0) or not (1.0 - xb - y[3 * k + 1] > 0.0):
                return False, True, n_iter
    return converged, domain_fail, n_iter


@njit(cache=True)
def _error_norm(D, y, d, order, atol, rtol, xref, scale):
    """Local error estimate on the species rows (``scale`` becomes the inverse error weights);
    returns (error norm, min x_V, max x_V) of the new state."""
    N = y.shape[0] // 3
    acc = 0.0
    xvmin = 1.0
    xvmax = 0.0
    for k in range(N):
        i = 3 * k
        w = 1.0 / (atol + rtol * max(abs(D[0, i]), abs(y[i])))
        scale[i] = w
        q = d[i] * w
        acc += q * q
        i += 1
        w = 1.0 / (atol * xref + rtol * max(abs(D[0, i]), abs(y[i])))
        scale[i] = w
        q = d[i] * w
        acc += q * q
        if y[i] < xvmin:
            xvmin = y[i]
        if y[i] > xvmax:
            xvmax = y[i]
    ec = ERROR_CONST[order]
    acc *= ec * ec
    return math.sqrt(acc / (2 * N)), xvmin, xvmax


@njit(cache=True)
def _accept(D, DQ, d, order, alpha, c, S, vol, inv0, Qpred, psiQ, dQ, inv):
    """Update the difference arrays of the state (D) and of the inventory ledger (DQ, which
    integrates the sources S with the same recursion); returns the ledger's relative mismatch."""
    n = d.shape[0]
    for m in range(3):
        s = 0.0
        p = 0.0
        for j in range(order + 1):
            s += DQ[j, m]
        for j in range(1, order + 1):
            p += GAMMA[j] * DQ[j, m]
        Qpred[m] = s
        psiQ[m] = p / alpha
        dQ[m] = c * S[m] - psiQ[m]
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
    return e


@njit(cache=True)
def _dense_output(D, order, h, tnew, tslack, t_out, out_y, io):
    """Write the outputs whose times this step passed (interpolating polynomial of the
    differences); returns the next output index."""
    n = D.shape[1]
    nout = t_out.shape[0]
    while io < nout and t_out[io] <= tnew + tslack:
        to = t_out[io]
        for i in range(n):
            out_y[io, i] = D[0, i]
        if to < tnew:
            # y(t) = D0 + sum_j D[j] prod_{m<j} (t - tnew + m h) / (h (m + 1))
            pj = 1.0
            for j in range(1, order + 1):
                pj *= (to - (tnew - (j - 1) * h)) / (h * j)
                for i in range(n):
                    out_y[io, i] += D[j, i] * pj
        io += 1
    return io


@njit(cache=True)
def _next_order_and_factor(D, order, err, safety, scale):
    """Quasi-constant-step order and step-size choice from the error estimates at orders
    k-1, k, k+1; returns (order change, step factor)."""
    N = D.shape[1] // 3
    em = math.inf
    ep = math.inf
    if order > 1:
        acc = 0.0
        cm = ERROR_CONST[order - 1]
        for k in range(N):
            for r in range(2):
                i = 3 * k + r
                q = cm * D[order, i] * scale[i]
                acc += q * q
        em = math.sqrt(acc / (2 * N))
    if order < MAX_ORDER:
        acc = 0.0
        cp = ERROR_CONST[order + 1]
        for k in range(N):
            for r in range(2):
                i = 3 * k + r
                q = cp * D[order + 2, i] * scale[i]
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
    return dord, min(MAX_FACTOR, safety * fbest)


@njit(cache=True)
def _reject(D, DQ, order, h, fac, RU, Dtmp, ist, fst):
    ist[I_REJ] += 1
    ist[I_FAILS] += 1
    _change_D(D, DQ, order, fac, RU, Dtmp)
    fst[F_H] = h * fac
    ist[I_NEQ] = 0


@njit(cache=True)
def advance(tb, rtol, atol, xref, psi_atol, newton_tol, maxit, max_steps, ctl, inv0, t_out, out_y, rec_t, rec_err,
            D, DQ, ist, fst, y, d, dy, ypred, hist, psiv, scale, R, Dg, Lo, Up, Lm, Dinv, abT, ipiv, RU, Dtmp,
            hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE,
            beta, vfac):
    """Integrate from fst[F_T] to tb (a breakpoint or the end) with the state in D, DQ, ist, fst.

    Returns when the segment is done, the step record buffer (rec_t, rec_err) is full, max_steps
    is reached or the step size collapses; ist[I_STATUS] says which.  Outputs at the times t_out
    (from index ist[I_IOUT]) are written into out_y as they are passed.  One step: predictor
    (:func:`_predict`), Newton (:func:`_newton`), error test (:func:`_error_norm`), and on
    acceptance the difference and ledger updates (:func:`_accept`), dense output
    (:func:`_dense_output`) and the order/step choice (:func:`_next_order_and_factor`).
    """
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
            _change_D(D, DQ, order, hn / h, RU, Dtmp)
            ist[I_NEQ] = 0
            h = hn
            fst[F_H] = h
        tnew = t + h
        if tnew >= tb - tslack:
            tnew = tb
        alpha = ALPHA[order]
        c = h / alpha
        massc = 1.0 / c
        _predict(D, order, alpha, massc, atol, rtol, xref, psi_atol, ypred, psiv, hist, scale)
        if ist[I_LU_OK] != 0:
            mlu = fst[F_MASSC_LU]
            if abs(mlu / massc - 1.0) > ctl[C_LU_SLACK] or ist[I_LU_AGE] >= ctl[C_LU_MAX_AGE]:
                ist[I_LU_OK] = 0
        converged, domain_fail, n_iter = _newton(
            massc, newton_tol, maxit, ctl, ist, fst, y, d, dy, ypred, hist, scale, R, Dg, Lo, Up, Lm, Dinv, abT, ipiv,
            hface, vol, srclen, dirich, psiD, xbg, inv_lam2, Kh, dc, t_pbr, t_pcl, t_q, t_g, t_lkc, t_lka, t_phi, psiE,
            beta, vfac)
        if not converged:
            ist[I_KAPPA_AGE] = 1 << 30
            _reject(D, DQ, order, h, 0.25 if domain_fail else 0.5, RU, Dtmp, ist, fst)
            ist[I_LU_OK] = 0
            continue
        err, xvmin, xvmax = _error_norm(D, y, d, order, atol, rtol, xref, scale)
        # scipy's safety factor (NEWTON_MAXITER = 4); a one-iteration step counts as two
        safety = 0.9 * 9.0 / (8.0 + max(n_iter, 2))
        if not (err <= 1.0) or xvmin < -atol * xref:
            if err > 1.0 and math.isfinite(err):
                fac = max(MIN_FACTOR, safety * err ** (-1.0 / (order + 1)))
            elif err > 1.0:
                fac = MIN_FACTOR
            else:
                fac = 0.5
            _reject(D, DQ, order, h, fac, RU, Dtmp, ist, fst)
            continue
        # ---- accepted
        ist[I_FAILS] = 0
        ist[I_STEPS] += 1
        ist[I_NEQ] += 1
        ist[I_LU_AGE] += 1
        ist[I_KAPPA_AGE] += 1
        tB, tC, tV = source_totals(y, srclen, dc, t_lkc, t_lka, t_phi, psiE, beta, vfac)
        stmp[0] = tB
        stmp[1] = tC
        stmp[2] = tV
        e = _accept(D, DQ, d, order, alpha, c, stmp, vol, inv0, Qpred, psiQ, dQ, inv)
        rec_t[ist[I_NREC]] = tnew
        rec_err[ist[I_NREC]] = e
        ist[I_NREC] += 1
        if xvmin < fst[F_MIN_XV]:
            fst[F_MIN_XV] = xvmin
        if xvmax > fst[F_MAX_XV]:
            fst[F_MAX_XV] = xvmax
        ist[I_IOUT] = _dense_output(D, order, h, tnew, tslack, t_out, out_y, ist[I_IOUT])
        fst[F_T] = tnew
        if ist[I_NEQ] >= order + 1:
            dord, factor = _next_order_and_factor(D, order, err, safety, scale)
            if dord != 0 or factor < 1.0 or factor >= ctl[C_MIN_GROWTH]:
                order += dord
                ist[I_ORDER] = order
                _change_D(D, DQ, order, factor, RU, Dtmp)
                fst[F_H] = h * factor
                ist[I_NEQ] = 0
    ist[I_STATUS] = status
    return status
