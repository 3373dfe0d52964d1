"""The 1D device solver: model assembly, adaptive BDF2 integrator and results.

Model (docs/model.md section 4).  Unknowns per node: x_Br, x_V and the potential psi
(x_Cl = 1 - x_Br - x_V).  With psi~ = e psi / kT and g(c) = ln x_V^eq(c), the exchange
potentials (ion i against a vacancy; ions carry -e, the vacancy +e relative to the lattice) are

    Delta mu_i / kT = ln(x_i / x_V) - psi~ + g(c)                      i in {Br, Cl}

so that x_V = x_V^eq(c) at psi = 0 is the zero-field equilibrium (g is the vacancy site-energy
term, -kT ln x_V^eq per vacancy).  Fluxes J_i = -sum_j L_ij d(Delta mu_j)/dz with
L_ij = c_s x_V z s^2 l_ij(c) / (6 kT), J_V = -(J_Br + J_Cl).  Under forward bias (Br-side
electrode positive, psi decreasing toward high z) halides drift to low z and vacancies to
high z.  Balances c_s dx_i/dt = -dJ_i/dz + c_s S_i; Poisson
d/dz(eps0 eps_r dpsi/dz) = -e c_s (x_V - x_V^bg) with the frozen background x_V^bg = the
initial x_V.  Free wire ends: no flux, zero field.  Contacts: psi = +V/2 (low-z electrode) and
-V/2 (high-z electrode) on every electrode node (contact_mode "region") or only on the electrode
edge facing the gap ("line").

Discretisation: vertex-centred finite volumes (key points are nodes; boxes between face
midpoints), exponentially fitted Scharfetter-Gummel fluxes of the Onsager form (see
:mod:`.kernels`), sources integrated exactly over the part of each box inside an electrode.
Each face flux enters two boxes with opposite signs and S_Br + S_Cl + S_V = 0 pointwise, so
site conservation holds to round-off for any iterate of the linear solves.

Time integration (:mod:`.kernels`, NDF section): variable-order (1-5), quasi-constant-step NDF -- the
Shampine-Reichelt scheme of ``ode15s`` / scipy's BDF -- for the index-1 DAE (psi algebraic),
with the whole time loop compiled: predictor, Newton with the analytic Jacobian (fresh at every
step, 3x3 block-tridiagonal LU with a banded partial-pivoting fallback; one correction suffices
when the measured quadratic convergence guarantees it), local error estimate over x_Br and
x_V/x_V,ref (psi excluded), order and step selection, dense output at the requested times and the
conservation ledger, which integrates the sources with the same recursion.  Bias changes are
breakpoints: the integrator restarts at order 1 with the potential re-solved.  Repeated step
failures end the run early with ``status != "ok"`` and the partial solution.  The original
Python-driven variable-step BDF2 (:class:`_BDF2Reference`) is kept as an independent reference.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from halide_ionics.errors import InputError

from . import kernels as K
from .coefficients import tabulate
from .config import E_CHARGE_C, DeviceConfig
from .mesh import Mesh, build_mesh
from .observables import cl_behind_front, front_position, gap_average

log = logging.getLogger(__name__)

PSI_ATOL = 1e-3
"""Absolute Newton tolerance on psi in units of kT/e."""


class DeviceModel:
    """A configured device: mesh, tabulated coefficients, initial state and kernel wrappers."""

    def __init__(self, config: DeviceConfig):
        if not isinstance(config, DeviceConfig):
            raise InputError("config", type(config).__name__, "must be a DeviceConfig")
        self.config = cfg = config
        g, m, s = cfg.geometry, cfg.material, cfg.solver
        self.mesh: Mesh = build_mesh(g.wire_length_um, g.electrode_width_um, g.gap_um, s.nodes,
                                     g.junction_offset_um, s.grading_ratio)
        z = self.mesh.z_um
        self.n = n = z.size
        self.tables = tabulate(cfg.onsager, cfg.vacancy, cfg.electrode)
        self.kT_eV = m.kT_eV
        self.Kh = m.hop_prefactor_um2
        self.lam_um = m.site_debye_length_um
        self.inv_lam2 = 1.0 / self.lam_um ** 2
        self.hface = np.ascontiguousarray(self.mesh.h_um)
        self.vol = np.ascontiguousarray(self.mesh.box_um)
        sl, sh = cfg.contact_source_scale
        if (sl, sh) == (1.0, 1.0):
            self.srclen = np.ascontiguousarray(self.mesh.overlap_um("electrode_low") + self.mesh.overlap_um("electrode_high"))
        else:  # per-contact source multipliers (studies); the plain device takes the line above
            self.srclen = np.ascontiguousarray(sl * self.mesh.overlap_um("electrode_low")
                                               + sh * self.mesh.overlap_um("electrode_high"))
        lo, hi = self.mesh.regions["electrode_low"], self.mesh.regions["electrode_high"]
        self.contact_low = self.mesh.mask("electrode_low")
        self.contact_high = self.mesh.mask("electrode_high")
        if s.contact_mode == "line":
            cl = np.zeros(n, bool)
            ch = np.zeros(n, bool)
            cl[self.mesh.index_of(lo[1])] = True
            ch[self.mesh.index_of(hi[0])] = True
            self.contact_low, self.contact_high = cl, ch
        self.dirich = (self.contact_low | self.contact_high).astype(np.int8)
        a, b = self.mesh.regions["gap"]
        mid = 0.5 * (z[1:] + z[:-1])
        self.face_in_gap = ((mid > a) & (mid < b)).astype(float)
        # initial state
        ini = cfg.initial
        zj = self.mesh.junction_um
        if ini.junction_width_um > 0:
            c0 = ini.cl_fraction_br_segment + (ini.cl_fraction_cl_segment - ini.cl_fraction_br_segment) * 0.5 * (
                1.0 + np.tanh((z - zj) / ini.junction_width_um))
        else:
            c0 = np.where(z < zj, ini.cl_fraction_br_segment, ini.cl_fraction_cl_segment)
            c0[np.argmin(np.abs(z - zj))] = 0.5 * (ini.cl_fraction_br_segment + ini.cl_fraction_cl_segment)
        xv0 = cfg.vacancy(c0)
        self.xbg = np.ascontiguousarray(xv0)
        self.x_v_ref = float(xv0.max())
        y = np.empty(3 * n)
        y[0::3] = (1.0 - xv0) * (1.0 - c0)
        y[1::3] = xv0
        y[2::3] = 0.0
        self.y_initial = y
        self.c_initial = c0

    # ------------------------------------------------------------------ bias-dependent pieces
    def psi_dirichlet(self, voltage_V: float) -> np.ndarray:
        """Contact potentials (kT/e units) for an applied voltage (low-z electrode at +V/2)."""
        p = np.zeros(self.n)
        half = 0.5 * voltage_V / self.kT_eV
        p[self.contact_low] = half
        p[self.contact_high] = -half
        return p

    def voltage_factor(self, voltage_V: float) -> float:
        return self.config.electrode.voltage_factor(voltage_V) if self.config.sources else 0.0

    def electrode_potential(self, voltage_V: float) -> np.ndarray:
        """Electrode potential (kT/e) seen by each source node, for the overpotential of the
        electrode law (empty when the law has no transfer coefficient)."""
        if self.config.electrode.transfer_coefficient is None:
            return np.zeros(0)
        p = np.zeros(self.n)
        half = 0.5 * voltage_V / self.kT_eV
        p[self.mesh.overlap_um("electrode_low") > 0] = half
        p[self.mesh.overlap_um("electrode_high") > 0] = -half
        return p

    def source_args(self, voltage_V):
        """Source-term arguments of the kernels: (ln k_c, ln k_a, phi_Br, psi_electrode, beta, vfac)."""
        t = self.tables
        b = self.config.electrode.transfer_coefficient
        return (t.ln_kc, t.ln_ka, t.phi_br, self.electrode_potential(voltage_V), 0.5 if b is None else float(b),
                self.voltage_factor(voltage_V))

    def _args(self, voltage_V):
        t = self.tables
        return (self.hface, self.vol, self.srclen, self.dirich, self.psi_dirichlet(voltage_V), self.xbg,
                self.inv_lam2, self.Kh, t.dc, t.p_br, t.p_cl, t.q, t.g) + self.source_args(voltage_V)

    # ------------------------------------------------------------------ kernel wrappers
    def residual(self, y, voltage_V=0.0, massc=0.0, hist=None, jacobian=False):
        """Residual (and dense Jacobian if asked) of one implicit stage; massc=0 gives -rhs."""
        y = np.ascontiguousarray(y, dtype=float)
        R = np.empty_like(y)
        abT = np.zeros((y.size, K.LDAB))
        hist = np.zeros_like(y) if hist is None else np.ascontiguousarray(hist, dtype=float)
        wk = K.block_workspace(self.n)
        st = K.assemble(y, float(massc), hist, bool(jacobian), R, abT, wk, *self._args(voltage_V))
        if st != 0:
            raise ValueError("state has a non-positive halide site fraction")
        if not jacobian:
            return R
        n = y.size
        J = np.zeros((n, n))
        for j in range(n):
            for r in range(K.KL, K.LDAB):
                i = r - K.KV + j
                if 0 <= i < n:
                    J[i, j] = abT[j, r]
        return R, J

    def rhs_species(self, y, voltage_V=0.0):
        """dx/dt of x_Br and x_V (n x 2) from the semi-discrete equations."""
        R = self.residual(y, voltage_V)
        return np.stack([-R[0::3] / self.vol, -R[1::3] / self.vol], axis=1)

    def fluxes(self, y):
        """Face fluxes (F_Br, F_Cl, F_V) in site fraction x um/s; times c_s gives sites/(area s)."""
        t = self.tables
        return K.face_fluxes(np.ascontiguousarray(y), self.hface, self.Kh, t.dc, t.p_br, t.p_cl, t.q, t.g)

    def source_totals(self, y, voltage_V):
        t = self.tables
        return np.array(K.source_totals(np.ascontiguousarray(y), self.srclen, t.dc, *self.source_args(voltage_V)))

    def solve_potential(self, y, voltage_V):
        """Return a copy of y with psi solved from Poisson for the given x_V and contacts."""
        from scipy.linalg import solve_banded

        n = self.n
        y = np.array(y, dtype=float)
        ab = np.zeros((3, n))
        rhs = np.zeros(n)
        w = 1.0 / self.hface
        d = np.zeros(n)
        d[:-1] -= w
        d[1:] -= w
        ab[1] = d
        ab[0, 1:] = w
        ab[2, :-1] = w
        rhs[:] = -self.vol * (y[1::3] - self.xbg) * self.inv_lam2
        dm = self.dirich.astype(bool)
        psiD = self.psi_dirichlet(voltage_V)
        idx = np.nonzero(dm)[0]
        ab[1, idx] = 1.0
        ab[0, idx[idx + 1 < n] + 1] = 0.0  # upper diag element (row i, col i+1) stored at ab[0, i+1]
        ab[2, idx[idx - 1 >= 0] - 1] = 0.0  # lower diag element (row i, col i-1) stored at ab[2, i-1]
        rhs[idx] = psiD[idx]
        y[2::3] = solve_banded((1, 1), ab, rhs)
        return y

    def weights(self, y, rtol, atol):
        w = np.empty_like(y)
        w[0::3] = atol + rtol * np.abs(y[0::3])
        w[1::3] = atol * self.x_v_ref + rtol * np.abs(y[1::3])
        w[2::3] = PSI_ATOL + rtol * np.abs(y[2::3])
        return w

    def split(self, y):
        y = np.asarray(y)
        xb, xv = y[..., 0::3], y[..., 1::3]
        return xb, 1.0 - xb - xv, xv, y[..., 2::3] * self.kT_eV


@dataclass
class DeviceResult:
    """Output of :func:`simulate`: snapshots at the output times plus diagnostics."""

    config: DeviceConfig
    mesh: Mesh
    times_s: np.ndarray
    x_br: np.ndarray
    x_cl: np.ndarray
    x_v: np.ndarray
    psi_V: np.ndarray
    voltage_V: np.ndarray
    front_um: np.ndarray
    migration_length_um: np.ndarray
    cl_behind_front: np.ndarray
    current_A_per_m2: np.ndarray
    x_v_gap_mean: np.ndarray
    status: str
    message: str
    steps: int
    rejected_steps: int
    newton_iterations: int
    wall_seconds: float
    site_conservation_error: float
    max_step_conservation_error: float
    conservation_by_species: dict
    step_times_s: np.ndarray = field(repr=False)
    step_conservation_error: np.ndarray = field(repr=False)
    min_x_v: float = 0.0
    #: largest vacancy site fraction on any node at any accepted step (the dilute-validity guard)
    max_x_v: float = 0.0

    @property
    def final_migration_length_um(self) -> float:
        m = self.migration_length_um[np.isfinite(self.migration_length_um)]
        return float(m[-1]) if m.size else float("nan")

    def summary(self) -> dict:
        """JSON-ready summary (the CLI's ``--json`` output)."""
        return {
            "status": self.status,
            "message": self.message,
            "migration_length_um": self.final_migration_length_um,
            "front_position_um": float(self.front_um[-1]),
            "initial_front_position_um": float(self.front_um[0]),
            "cl_behind_front_max": float(np.nanmax(self.cl_behind_front)) if np.any(
                np.isfinite(self.cl_behind_front)) else float("nan"),
            "site_conservation_error": self.site_conservation_error,
            "max_step_conservation_error": self.max_step_conservation_error,
            "steps": self.steps,
            "rejected_steps": self.rejected_steps,
            "newton_iterations": self.newton_iterations,
            "wall_seconds": self.wall_seconds,
            "final_time_s": float(self.times_s[-1]),
            "nodes": int(self.mesh.n),
            "sources": self.config.sources,
            "contact_mode": self.config.solver.contact_mode,
            "final_voltage_V": float(self.voltage_V[-1]),
            "min_x_v": self.min_x_v,
            "max_x_v": self.max_x_v,
        }

    def to_dataset(self):
        from .output import result_to_dataset

        return result_to_dataset(self)

    def write_netcdf(self, path) -> None:
        from .output import write_netcdf

        write_netcdf(self, path)


def _output_times(cfg: DeviceConfig) -> np.ndarray:
    T = cfg.bias.duration_s
    if cfg.solver.output_times_s is not None:
        ts = np.array([t for t in cfg.solver.output_times_s if t <= T])
        if ts.size == 0 or ts[0] > 0:
            ts = np.concatenate([[0.0], ts])
        return ts
    return np.linspace(0.0, T, cfg.solver.n_outputs)


def simulate(config: DeviceConfig, progress: bool = False, model: DeviceModel | None = None) -> DeviceResult:
    """Run one device simulation (see the module docstring for model and method)."""
    model = model or DeviceModel(config)
    return _Integrator(model, progress).run()


class _Integrator:
    """Driver of the compiled NDF integrator (:func:`.kernels.advance`): one compiled call per bias segment.

    Python only runs between segments (consistent potential at each restart) and whenever the
    step-record buffer fills (every ``REC_CHUNK`` steps, or every ``PROGRESS_CHUNK`` steps
    with a progress bar).
    """

    REC_CHUNK = 8192
    PROGRESS_CHUNK = 25

    def __init__(self, model: DeviceModel, progress: bool):
        self.m = model
        self.cfg = model.config
        self.progress = progress
        self.ctl = np.array(K.DEFAULT_CONTROL, dtype=float)

    def run(self) -> DeviceResult:
        m, cfg = self.m, self.cfg
        so = cfg.solver
        rtol, atol = so.rtol, so.atol
        newton_tol = max(10 * np.finfo(float).eps / rtol, min(0.03, rtol ** 0.5))
        n3 = 3 * m.n
        T = cfg.bias.duration_s
        sched = list(cfg.bias.steps)
        seg_ends = [t for t, _ in sched[1:]] + [T]
        t_out = _output_times(cfg)
        nout = t_out.size
        out_y = np.full((nout, n3), np.nan)
        out_V = np.full(nout, np.nan)
        tslack = 1e-12 * max(T, 1.0)
        tab = m.tables
        nrec = self.PROGRESS_CHUNK if self.progress else self.REC_CHUNK
        rec_t = np.empty(nrec)
        rec_err = np.empty(nrec)
        D = np.zeros((K.MAX_ORDER + 3, n3))
        DQ = np.zeros((K.MAX_ORDER + 3, 3))
        ist = np.zeros(K.N_IST, dtype=np.int64)
        fst = np.zeros(K.N_FST)
        work = [np.empty(n3) for _ in range(8)]  # y, d, dy, ypred, hist, psiv, scale, R
        abT = np.empty((n3, K.LDAB))
        ipiv = np.empty(n3, dtype=np.int64)
        blocks = [np.zeros((m.n, 3, 3)) for _ in range(5)]  # Dg, Lo, Up, L, Dinv
        RU = np.empty((K.MAX_ORDER + 1, K.MAX_ORDER + 1))
        Dtmp = np.empty((K.MAX_ORDER + 1, n3))
        h_user = so.initial_step_s if so.initial_step_s is not None else 0.0

        t = 0.0
        V = sched[0][1]
        y = m.solve_potential(m.y_initial, V)
        inv0, _ = K.ledger(y, m.vol, m.srclen, tab.dc, *m.source_args(0.0)[:-1], 0.0)
        Q = inv0.copy()
        fst[K.F_MIN_XV] = float(y[1::3].min())
        fst[K.F_MAX_XV] = float(y[1::3].max())
        step_t, step_err = [], []
        status, message = "ok", ""
        wall0 = time.perf_counter()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=T, unit="s", desc="device")
        for iseg, tb in enumerate(seg_ends):
            V = sched[iseg][1]
            if iseg > 0:
                y = m.solve_potential(D[0], V)
            args = m._args(V)
            while ist[K.I_IOUT] < nout and t_out[ist[K.I_IOUT]] <= t + tslack:
                out_y[ist[K.I_IOUT]] = y
                out_V[ist[K.I_IOUT]] = V
                ist[K.I_IOUT] += 1
            if K.start_segment(y, Q, t, tb, h_user, rtol, atol, m.x_v_ref, D, DQ, ist, fst, work[7], *blocks[:3],
                               *args) != 0:
                raise ValueError("state has a non-positive halide site fraction")
            while True:
                i0 = int(ist[K.I_IOUT])
                ist[K.I_NREC] = 0
                st = K.advance(tb, rtol, atol, m.x_v_ref, PSI_ATOL, newton_tol, so.max_newton, so.max_steps,
                               self.ctl, inv0, t_out, out_y, rec_t, rec_err, D, DQ, ist, fst, *work, *blocks, abT,
                               ipiv, RU, Dtmp, *args)
                out_V[i0:ist[K.I_IOUT]] = V
                k = int(ist[K.I_NREC])
                step_t.append(rec_t[:k].copy())
                step_err.append(rec_err[:k].copy())
                if bar is not None:
                    bar.update(fst[K.F_T] - t)
                t = float(fst[K.F_T])
                if st != K.ST_BUFFER_FULL:
                    break
            Q = DQ[0].copy()
            if st == K.ST_MAX_STEPS:
                status, message = "max_steps", (f"stopped at t={t:.6g} s after {int(ist[K.I_STEPS])} steps "
                                                "(solver.max_steps)")
            elif st == K.ST_STEP_FAILURE:
                status = "step_failure"
                message = (f"step size collapsed at t={t:.6g} s (h={fst[K.F_H]:.3g} s, {int(ist[K.I_FAILS])} "
                           "consecutive failures); partial solution returned")
                xv = D[0, 1::3]
                k = int(np.argmax(xv))
                if 1.0 - xv[k] < 1e-6:
                    message += (f"; the halide sites at z={m.mesh.z_um[k]:.4g} um are nearly empty (x_V = "
                                f"{xv[k]:.12g}): x_Br and x_Cl = 1 - x_Br - x_V lose their precision there")
            if status != "ok":
                break
        y = D[0].copy()
        if bar is not None:
            bar.close()
        wall = time.perf_counter() - wall0
        self.stats = {"jacobians": int(ist[K.I_NLU]), "lu_factorizations": int(ist[K.I_NLU]),
                      "band_fallbacks": int(ist[K.I_NBAND]),
                      "residuals": int(ist[K.I_NFEV]), "final_order": int(ist[K.I_ORDER])}
        inv, _ = K.ledger(y, m.vol, m.srclen, tab.dc, *m.source_args(0.0)[:-1], 0.0)
        scale = np.maximum(np.maximum(np.abs(Q), np.abs(inv0)), 1e-300)
        rel = np.abs(inv - Q) / scale
        if status != "ok":
            k = int(ist[K.I_IOUT])
            if k < nout:
                t_out = np.concatenate([t_out[:k], [t]])
                out_y = np.concatenate([out_y[:k], y[None]])
                out_V = np.concatenate([out_V[:k], [V]])
            log.warning("device run ended early: %s", message)
        return _make_result(m, t_out, out_y, out_V, status, message, int(ist[K.I_STEPS]), int(ist[K.I_REJ]),
                            int(ist[K.I_NEWTON]), wall, rel, np.concatenate(step_t), np.concatenate(step_err),
                            float(fst[K.F_MIN_XV]), float(fst[K.F_MAX_XV]))


class _BDF2Reference:
    """The original Python-driven variable-step BDF2 integrator, kept as an independent reference.

    Not used by :func:`simulate`; the tests compare the compiled integrator against it.
    """

    MAX_GROWTH = 2.0
    MAX_CONSECUTIVE_FAILURES = 25

    def __init__(self, model: DeviceModel, progress: bool):
        self.m = model
        self.cfg = model.config
        self.progress = progress

    def _stage_args(self, V):
        return self.m._args(V)

    def run(self) -> DeviceResult:
        m, cfg = self.m, self.cfg
        so = cfg.solver
        rtol, atol = so.rtol, so.atol
        newton_tol = max(10 * np.finfo(float).eps / rtol, min(0.03, rtol ** 0.5))
        n3 = 3 * m.n
        T = cfg.bias.duration_s
        sched = list(cfg.bias.steps)
        seg_ends = [t for t, _ in sched[1:]] + [T]
        t_out = _output_times(cfg)
        out_y = np.full((t_out.size, n3), np.nan)
        out_V = np.full(t_out.size, np.nan)
        i_out = 0
        R = np.empty(n3)
        abT = np.empty((n3, K.LDAB))
        ipiv = np.empty(n3, dtype=np.int64)
        wk = K.block_workspace(m.n)
        W = np.empty(n3)
        histv = np.empty(n3)
        ynew = np.empty(n3)
        Yh = np.empty((4, n3))
        th = np.zeros(4)
        tslack = 1e-12 * max(T, 1.0)
        tab = m.tables

        t = 0.0
        V = sched[0][1]
        y = m.solve_potential(m.y_initial, V)
        inv0, _ = K.ledger(y, m.vol, m.srclen, tab.dc, *m.source_args(0.0)[:-1], 0.0)
        total_Q = inv0.copy()
        steps = rejected = newton_its = 0
        step_t, step_err = [], []
        status, message = "ok", ""
        min_xv = float(y[1::3].min())
        max_xv = float(y[1::3].max())
        wall0 = time.perf_counter()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=T, unit="s", desc="device")
        xm = np.ones(n3, bool)
        xm[2::3] = False
        for iseg, tb in enumerate(seg_ends):
            V = sched[iseg][1]
            if iseg > 0:
                y = m.solve_potential(y, V)
            args = self._stage_args(V)
            nh = 1
            Yh[0] = y
            th[0] = t
            Q = [total_Q.copy()]
            while i_out < t_out.size and t_out[i_out] <= t + tslack:
                out_y[i_out] = y
                out_V[i_out] = V
                i_out += 1
            # derivative at the (re)start for the first error estimate and step size
            K.assemble(y, 0.0, np.zeros(n3), False, R, abT, wk, *args)
            ydot0 = np.zeros(n3)
            ydot0[0::3] = -R[0::3] / m.vol
            ydot0[1::3] = -R[1::3] / m.vol
            w0 = m.weights(y, rtol, atol)
            if so.initial_step_s is not None:
                h = so.initial_step_s
            else:
                d1 = np.sqrt(np.mean((ydot0[xm] / w0[xm]) ** 2))
                h = 1e-3 * (tb - t) if d1 == 0 else min(1.0 / d1, 1e-3 * (tb - t))
            fails = 0
            while t < tb:
                if steps >= so.max_steps:
                    status, message = "max_steps", f"stopped at t={t:.6g} s after {steps} steps (solver.max_steps)"
                    break
                if h < max(1e-18, 8 * np.finfo(float).eps * t) or fails > self.MAX_CONSECUTIVE_FAILURES:
                    status = "step_failure"
                    message = (f"step size collapsed at t={t:.6g} s (h={h:.3g} s, {fails} consecutive failures); "
                               "partial solution returned")
                    break
                if t + 1.1 * h > tb:
                    h = tb - t
                st, en, its, xv_min = K.attempt_step(Yh, th, nh, h, ydot0, rtol, atol, m.x_v_ref, PSI_ATOL,
                                                     newton_tol, so.max_newton, ynew, histv, W, R, abT, ipiv, wk,
                                                     *args)
                newton_its += its
                order = 2 if nh >= 3 else 1
                if st != 0 or not np.isfinite(en):
                    rejected += 1
                    fails += 1
                    h *= 0.25
                    continue
                if en > 1.0 or xv_min < -atol * m.x_v_ref:
                    rejected += 1
                    fails += 1
                    h *= max(0.2, 0.9 * en ** (-1.0 / (order + 1))) if en > 1.0 else 0.5
                    continue
                fails = 0
                steps += 1
                tn1 = t + h
                inv, S = K.ledger(ynew, m.vol, m.srclen, tab.dc, *args[-6:])
                if order == 2:
                    om = h / (th[nh - 1] - th[nh - 2])
                    a = (1 + 2 * om) / (1 + om)
                    Qn1 = ((1 + om) * Q[-1] - om * om / (1 + om) * Q[-2] + h * S) / a
                else:
                    Qn1 = Q[-1] + h * S
                Q.append(Qn1)
                if len(Q) > 3:
                    del Q[0]
                scale = np.maximum(np.maximum(np.abs(Qn1), np.abs(inv0)), 1e-300)
                step_err.append(float(np.max(np.abs(inv - Qn1) / scale)))
                step_t.append(tn1)
                min_xv = min(min_xv, xv_min)
                max_xv = max(max_xv, float(ynew[1::3].max()))
                while i_out < t_out.size and t_out[i_out] <= tn1 + tslack:
                    out_y[i_out] = self._interp(th, Yh, nh, tn1, ynew, min(t_out[i_out], tn1))
                    out_V[i_out] = V
                    i_out += 1
                if nh == 4:
                    Yh[:3] = Yh[1:]
                    th[:3] = th[1:]
                    nh = 3
                Yh[nh] = ynew
                th[nh] = tn1
                nh += 1
                if bar is not None:
                    bar.update(tn1 - t)
                t = tn1
                fac = 0.9 * en ** (-1.0 / (order + 1)) if en > 0 else self.MAX_GROWTH
                h *= min(self.MAX_GROWTH, max(0.2, fac))
            total_Q = Q[-1].copy()
            y = Yh[nh - 1].copy()
            if status != "ok":
                break
        if bar is not None:
            bar.close()
        wall = time.perf_counter() - wall0
        inv, _ = K.ledger(y, m.vol, m.srclen, tab.dc, *m.source_args(0.0)[:-1], 0.0)
        scale = np.maximum(np.maximum(np.abs(total_Q), np.abs(inv0)), 1e-300)
        rel = np.abs(inv - total_Q) / scale
        if status != "ok":
            k = int((~np.isnan(out_y[:, 0])).sum())
            if k < t_out.size:
                t_out = np.concatenate([t_out[:k], [t]])
                out_y = np.concatenate([out_y[:k], y[None]])
                out_V = np.concatenate([out_V[:k], [V]])
            log.warning("device run ended early: %s", message)
        return _make_result(m, t_out, out_y, out_V, status, message, steps, rejected, newton_its, wall, rel,
                            np.array(step_t), np.array(step_err), min_xv, max_xv)

    @staticmethod
    def _interp(th, Yh, nh, tn1, ynew, to):
        """Quadratic interpolation through the last two accepted states and the new one."""
        if to >= tn1:
            return ynew.copy()
        t1, y1 = th[nh - 1], Yh[nh - 1]
        if nh >= 2:
            t0, y0 = th[nh - 2], Yh[nh - 2]
            l0 = (to - t1) * (to - tn1) / ((t0 - t1) * (t0 - tn1))
            l1 = (to - t0) * (to - tn1) / ((t1 - t0) * (t1 - tn1))
            l2 = (to - t0) * (to - t1) / ((tn1 - t0) * (tn1 - t1))
            return l0 * y0 + l1 * y1 + l2 * ynew
        s = (to - t1) / (tn1 - t1)
        return (1 - s) * y1 + s * ynew



def _make_result(m, t_out, out_y, out_V, status, message, steps, rejected, newton_its, wall, rel, step_t,
                 step_err, min_xv, max_xv):
    cfg = m.config
    so = cfg.solver
    z = m.mesh.z_um
    xb, xc, xv, psi = m.split(out_y)
    nt = t_out.size
    front = np.full(nt, np.nan)
    tail = np.full(nt, np.nan)
    cur = np.full(nt, np.nan)
    xvg = np.full(nt, np.nan)
    c_s = cfg.material.site_density_per_m3
    gap_nodes = m.mesh.mask("gap")
    near = m.mesh.junction_um
    for i in range(nt):
        if not np.isfinite(xb[i, 0]):
            continue
        front[i] = front_position(z, xb[i], so.front_level, near_um=near)
        if np.isfinite(front[i]):
            near = front[i]
        tail[i] = cl_behind_front(z, xc[i], front[i], so.cl_tail_offset_um)
        _, _, FV = m.fluxes(out_y[i])
        cur[i] = E_CHARGE_C * c_s * 1e-6 * gap_average(m.hface, FV, m.face_in_gap)
        xvg[i] = float(np.dot(m.vol[gap_nodes], xv[i, gap_nodes]) / m.vol[gap_nodes].sum())
    mig = front[0] - front
    names = ("Br", "Cl", "V")
    return DeviceResult(
        config=cfg, mesh=m.mesh, times_s=t_out, x_br=xb, x_cl=xc, x_v=xv, psi_V=psi, voltage_V=out_V,
        front_um=front, migration_length_um=mig, cl_behind_front=tail, current_A_per_m2=cur,
        x_v_gap_mean=xvg, status=status, message=message, steps=steps, rejected_steps=rejected,
        newton_iterations=newton_its, wall_seconds=wall, site_conservation_error=float(rel.max()),
        max_step_conservation_error=float(np.max(np.abs(np.diff(np.concatenate([[0.0], step_err])))))
        if step_err.size else 0.0,
        conservation_by_species={k: float(v) for k, v in zip(names, rel)},
        step_times_s=step_t, step_conservation_error=step_err, min_x_v=min_xv, max_x_v=max_xv)
