"""Device configuration: frozen, validated parameter objects and the TOML schema.

Device config (TOML)
====================

Every key is optional; a missing key takes the default below (the built-in paper device).
Unknown sections or keys, wrong types and out-of-range values raise
:class:`halide_ionics.InputError` naming ``section.key`` and the value.  Units are in the names.

.. code-block:: toml

    [geometry]                  # the paper does not give it; defaults from docs/model.md
    wire_length_um = 10.0
    electrode_width_um = 1.5    # two electrodes, gap centred in the wire
    gap_um = 4.0                # inter-electrode gap; field = voltage / gap
    junction_offset_um = 0.0    # heterojunction position relative to mid-gap (+ = toward Cl end)

    [material]
    temperature_K = 298.0
    lattice_constant_A = 5.8    # c_s = 3/a^3 halide sites, z = 8 neighbours at s = a/sqrt(2)
    coordination = 8
    permittivity_rel = 250.0

    [initial]                   # Br segment on the low-z side, step at the junction
    cl_fraction_br_segment = 0.001   # c = x_Cl/(x_Br+x_Cl) of the Br segment (must be > 0)
    cl_fraction_cl_segment = 0.9     # the Cl segment (x_Br ~ 0.1, incompletely exchanged)
    junction_width_um = 0.0          # 0 = sharp step; else tanh profile of this half-width

    [transport]                 # per-vacancy Onsager coefficients l_ij(c), Hz
    model = "manning"           # PLACEHOLDER closed form; or "table"
    w_br_Hz = 1.946e7           # manning: default from the paper's mobility (see coefficients.py)
    w_cl_Hz = 1.946e6           # manning: default 0.1 w_br_Hz
    # model = "table": c = [...], l_brbr_Hz = [...], l_brcl_Hz = [...], l_clcl_Hz = [...]

    [vacancy]                   # x_V^eq(c)
    model = "formation_energy"  # PLACEHOLDER; or "table" with c = [...], x_v_eq = [...]
    x_v_pure_br = 1e-7
    formation_energy_br_eV = 1.32
    formation_energy_cl_eV = 1.44

    [electrode]                 # source S_V = k_c(1-x_V) - k_a x_V inside the electrodes
    sources = true
    model = "paper"             # PLACEHOLDER paper strengths; or "table":
    # c = [...], k_create0_per_s = [...], k_annihilate0_per_s = [...]   (rates at |dV| = 1 V)
    # voltage_exponent = 1.0    # k = k0(c) * (|dV|/1 V)^n

    [bias]                      # either a constant field for duration_s ...
    field_V_per_um = 4.0        # positive = forward (Br-side electrode positive)
    duration_s = 14400.0
    # ... or a schedule of (t_start_s, voltage_V) steps, first at t = 0:
    # schedule = [[0.0, 16.0], [7200.0, -16.0]]

    [solver]
    nodes = 1000
    grading_ratio = 20.0        # largest/smallest cell in a refined segment
    rtol = 1e-6
    atol = 1e-6                 # absolute tolerance on x_Br and on x_V / x_V,ref
    contact_mode = "region"     # "region": psi fixed on every electrode node; "line": only at
                                # the contact line (the electrode edge facing the gap).  With
                                # sources on, "line" traps vacancies at that single node: on the
                                # paper device x_V -> 1 there within ~50 s and the run stops
                                # with status "step_failure" (the message says where)
    max_steps = 200000
    max_newton = 6
    n_outputs = 49              # evenly spaced output times, or give output_times_s = [...]
    front_level = 0.55          # x_Br level defining the composition front
    cl_tail_offset_um = 0.25    # Cl content behind the front is measured this far ahead of it
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from halide_ionics.errors import InputError

from halide_ionics.constants import E_CHARGE_C, EPS0_F_PER_M, T_ROOM_K
from halide_ionics.constants import K_B_EV_PER_K as BOLTZMANN_EV_PER_K

from .coefficients import ElectrodeKinetics, OnsagerCoefficients, VacancyEquilibrium, placeholder_w_br_Hz


#: Size limits (memory and run time grow with them; the reason is in each message).
MAX_NODES = 200_000
MAX_OUTPUTS = 100_000
#: nodes x output times: the run keeps 5 float64 profiles per output (5 x 8 bytes each)
MAX_PROFILE_VALUES = 25_000_000
MAX_GRADING_RATIO = 1e6
MAX_STEPS = 100_000_000
MAX_VOLTAGE_V = 1e4
MAX_NEWTON = 100
#: Temperatures (K) where the Boltzmann factors of the model stay representable in float64.
TEMPERATURE_RANGE_K = (10.0, 5000.0)


def _num(name, v, lo=None, lo_open=False, hi=None, hi_open=False, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise InputError(name, v, "must be a number")
    if integer:
        try:
            ok = float(v).is_integer()
        except OverflowError:
            ok = False
        if not ok:
            raise InputError(name, v, "must be an integer" + (" of moderate size" if isinstance(v, int) else ""))
        v = int(v)
    else:
        try:
            v = float(v)
        except OverflowError:
            raise InputError(name, v, "must be a finite number") from None
    if not math.isfinite(v):
        raise InputError(name, v, "must be finite")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise InputError(name, v, f"must be {'>' if lo_open else '>='} {lo:g}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise InputError(name, v, f"must be {'<' if hi_open else '<='} {hi:g}")
    return v


@dataclass(frozen=True)
class Geometry:
    wire_length_um: float = 10.0
    electrode_width_um: float = 1.5
    gap_um: float = 4.0
    junction_offset_um: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "wire_length_um", _num("geometry.wire_length_um", self.wire_length_um, 0, True))
        object.__setattr__(self, "electrode_width_um",
                           _num("geometry.electrode_width_um", self.electrode_width_um, 0, True))
        object.__setattr__(self, "gap_um", _num("geometry.gap_um", self.gap_um, 0, True))
        object.__setattr__(self, "junction_offset_um", _num("geometry.junction_offset_um", self.junction_offset_um))
        if 2 * self.electrode_width_um + self.gap_um > self.wire_length_um + 1e-12:
            raise InputError("geometry.wire_length_um", self.wire_length_um,
                             f"shorter than two electrodes ({self.electrode_width_um:g} um) plus the gap "
                             f"({self.gap_um:g} um)")
        if abs(self.junction_offset_um) >= 0.5 * self.gap_um:
            raise InputError("geometry.junction_offset_um", self.junction_offset_um, "junction must lie inside the gap")


@dataclass(frozen=True)
class Material:
    temperature_K: float = T_ROOM_K
    lattice_constant_A: float = 5.8
    coordination: int = 8
    permittivity_rel: float = 250.0

    def __post_init__(self):
        lo_T, hi_T = TEMPERATURE_RANGE_K
        t = _num("material.temperature_K", self.temperature_K, 0, True)
        if not lo_T <= t <= hi_T:
            raise InputError("material.temperature_K", t, f"must lie in [{lo_T:g}, {hi_T:g}] K (Boltzmann factors "
                                                          "of the model under/overflow outside)")
        object.__setattr__(self, "temperature_K", t)
        object.__setattr__(self, "lattice_constant_A",
                           _num("material.lattice_constant_A", self.lattice_constant_A, 0, True))
        object.__setattr__(self, "coordination", _num("material.coordination", self.coordination, 1, integer=True))
        object.__setattr__(self, "permittivity_rel", _num("material.permittivity_rel", self.permittivity_rel, 0, True))

    @property
    def kT_eV(self) -> float:
        return BOLTZMANN_EV_PER_K * self.temperature_K

    @property
    def site_density_per_m3(self) -> float:
        return 3.0 / (self.lattice_constant_A * 1e-10) ** 3

    @property
    def jump_length_m(self) -> float:
        return self.lattice_constant_A * 1e-10 / math.sqrt(2.0)

    @property
    def hop_prefactor_um2(self) -> float:
        """z s^2 / 6 in um^2 (the Onsager prefactor per site and per Hz of l_ij)."""
        return self.coordination * (self.jump_length_m * 1e6) ** 2 / 6.0

    @property
    def site_debye_length_um(self) -> float:
        """sqrt(eps kT / (e^2 c_s)): the Debye length of a fully charged sublattice (x_V = 1)."""
        eps = EPS0_F_PER_M * self.permittivity_rel
        return math.sqrt(eps * self.kT_eV / (E_CHARGE_C * self.site_density_per_m3)) * 1e6


@dataclass(frozen=True)
class InitialState:
    cl_fraction_br_segment: float = 0.001
    cl_fraction_cl_segment: float = 0.9
    junction_width_um: float = 0.0

    def __post_init__(self):
        for k in ("cl_fraction_br_segment", "cl_fraction_cl_segment"):
            object.__setattr__(self, k, _num(f"initial.{k}", getattr(self, k), 0.0, True, 1.0, True))
        object.__setattr__(self, "junction_width_um", _num("initial.junction_width_um", self.junction_width_um, 0.0))


@dataclass(frozen=True)
class BiasSchedule:
    """Piecewise-constant applied voltage: ``steps`` = ((t_start_s, voltage_V), ...), first at 0.

    The Br-side (low-z) electrode is held at +V/2 and the other at -V/2, so V > 0 is forward bias.
    """

    steps: tuple
    duration_s: float

    def __post_init__(self):
        try:
            st = tuple((float(a), float(b)) for a, b in self.steps)
        except (TypeError, ValueError):
            raise InputError("bias.schedule", self.steps, "must be a list of [t_start_s, voltage_V] pairs") from None
        if not st:
            raise InputError("bias.schedule", list(self.steps), "must not be empty")
        for t, v in st:
            if not (math.isfinite(t) and math.isfinite(v)):
                raise InputError("bias.schedule", list(self.steps), "entries must be finite")
            if abs(v) > MAX_VOLTAGE_V:
                raise InputError("bias.schedule", list(self.steps),
                                 f"|voltage| must be <= {MAX_VOLTAGE_V:g} V (e*V/kT overflows the model beyond)")
        if st[0][0] != 0.0:
            raise InputError("bias.schedule", list(self.steps), "first step must start at t = 0")
        if any(st[i + 1][0] <= st[i][0] for i in range(len(st) - 1)):
            raise InputError("bias.schedule", list(self.steps), "start times must be strictly increasing")
        d = _num("bias.duration_s", self.duration_s, 0.0, True)
        if st[-1][0] >= d:
            raise InputError("bias.duration_s", d, "must be later than the last schedule step")
        object.__setattr__(self, "steps", st)
        object.__setattr__(self, "duration_s", d)

    @classmethod
    def constant_field(cls, field_V_per_um: float, hours: float | None = None, gap_um: float = 4.0,
                       duration_s: float | None = None) -> "BiasSchedule":
        f = _num("bias.field_V_per_um", field_V_per_um)
        if duration_s is None:
            duration_s = _num("hours", hours, 0.0, True) * 3600.0
        return cls(steps=((0.0, f * float(gap_um)),), duration_s=duration_s)

    def voltage_at(self, t: float) -> float:
        v = self.steps[0][1]
        for t0, vv in self.steps:
            if t >= t0:
                v = vv
        return v

    def breakpoints(self):
        return [t for t, _ in self.steps[1:]]


@dataclass(frozen=True)
class SolverOptions:
    nodes: int = 1000
    grading_ratio: float = 20.0
    rtol: float = 1e-6
    atol: float = 1e-6
    contact_mode: str = "region"
    max_steps: int = 200000
    max_newton: int = 6
    n_outputs: int = 49
    output_times_s: tuple | None = None
    front_level: float = 0.55
    cl_tail_offset_um: float = 0.25
    initial_step_s: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "nodes", _num("solver.nodes", self.nodes, 30, integer=True))
        if self.nodes > MAX_NODES:
            raise InputError("solver.nodes", self.nodes, f"must be <= {MAX_NODES} (memory and run time grow with it)")
        object.__setattr__(self, "grading_ratio", _num("solver.grading_ratio", self.grading_ratio, 1.0))
        if self.grading_ratio > MAX_GRADING_RATIO:
            raise InputError("solver.grading_ratio", self.grading_ratio,
                             f"must be <= {MAX_GRADING_RATIO:g} (larger ratios give cells below floating-point "
                             "resolution)")
        object.__setattr__(self, "rtol", _num("solver.rtol", self.rtol, 1e-13, False, 0.1))
        object.__setattr__(self, "atol", _num("solver.atol", self.atol, 0.0, True, 1.0))
        if self.contact_mode not in ("region", "line"):
            raise InputError("solver.contact_mode", self.contact_mode, "must be 'region' or 'line'")
        object.__setattr__(self, "max_steps", _num("solver.max_steps", self.max_steps, 1, False, MAX_STEPS,
                                                   integer=True))
        object.__setattr__(self, "max_newton", _num("solver.max_newton", self.max_newton, 2, False, MAX_NEWTON,
                                                    integer=True))
        object.__setattr__(self, "n_outputs", _num("solver.n_outputs", self.n_outputs, 2, integer=True))
        if self.n_outputs > MAX_OUTPUTS:
            raise InputError("solver.n_outputs", self.n_outputs, f"must be <= {MAX_OUTPUTS} (every output keeps "
                                                                  "full profiles in memory)")
        if self.output_times_s is not None:
            ot = self.output_times_s
            if isinstance(ot, np.ndarray):
                ot = ot.tolist()
            if not isinstance(ot, (list, tuple)):
                raise InputError("solver.output_times_s", ot, "must be a list of times in s, e.g. [0, 3600]")
            if len(ot) > MAX_OUTPUTS:
                raise InputError("solver.output_times_s", f"<{len(ot)} times>",
                                 f"at most {MAX_OUTPUTS} times (every output keeps full profiles in memory)")
            for t in ot:
                _num("solver.output_times_s", t)
            ts = tuple(float(t) for t in ot)
            if not ts or any(not math.isfinite(t) or t < 0 for t in ts) or any(
                    ts[i + 1] <= ts[i] for i in range(len(ts) - 1)):
                raise InputError("solver.output_times_s", list(ts), "must be increasing, finite and >= 0")
            object.__setattr__(self, "output_times_s", ts)
        object.__setattr__(self, "front_level", _num("solver.front_level", self.front_level, 0.0, True, 1.0, True))
        object.__setattr__(self, "cl_tail_offset_um", _num("solver.cl_tail_offset_um", self.cl_tail_offset_um, 0.0))
        if self.initial_step_s is not None:
            object.__setattr__(self, "initial_step_s", _num("solver.initial_step_s", self.initial_step_s, 0.0, True))


@dataclass(frozen=True)
class DeviceConfig:
    """Everything that defines one device run (see the module docstring for the TOML form)."""

    geometry: Geometry = field(default_factory=Geometry)
    material: Material = field(default_factory=Material)
    initial: InitialState = field(default_factory=InitialState)
    onsager: OnsagerCoefficients | None = None
    vacancy: VacancyEquilibrium | None = None
    electrode: ElectrodeKinetics | None = None
    sources: bool = True
    bias: BiasSchedule | None = None
    solver: SolverOptions = field(default_factory=SolverOptions)
    #: multipliers of the source term on the (low-z / Br-side, high-z / Cl-side) electrode: scale
    #: both creation and annihilation there (studies of which contact controls the rate);
    #: (1, 1) is the plain device
    contact_source_scale: tuple = (1.0, 1.0)

    def __post_init__(self):
        sc = self.contact_source_scale
        if not isinstance(sc, (tuple, list)) or len(sc) != 2:
            raise InputError("contact_source_scale", sc, "must be a pair (low-z, high-z)")
        object.__setattr__(self, "contact_source_scale",
                           tuple(_num("contact_source_scale", v, 0.0) for v in sc))
        self._init_parts()
        self._check_consistency()

    def _check_consistency(self) -> None:
        sol = self.solver
        if sol.output_times_s is not None:
            last = sol.output_times_s[-1]
            if last > self.bias.duration_s * (1 + 1e-12):
                raise InputError("solver.output_times_s", list(sol.output_times_s),
                                 f"last time {last:g} s is beyond bias.duration_s = {self.bias.duration_s:g} s")
            n_out = len(sol.output_times_s) + 1
        else:
            n_out = sol.n_outputs
        if sol.nodes * n_out > MAX_PROFILE_VALUES:
            raise InputError("solver.nodes", sol.nodes,
                             f"nodes x output times = {sol.nodes * n_out:.3g} exceeds {MAX_PROFILE_VALUES:.3g} "
                             f"(about {MAX_PROFILE_VALUES * 40 / 1e9:.0f} GB of profiles); reduce solver.nodes "
                             "or the number of outputs")
        from .coefficients import tabulate

        try:  # the kernels' tables: non-finite values name the inputs that produced them
            tabulate(self.onsager, self.vacancy, self.electrode, n=257)
        except InputError as exc:
            raise InputError(exc.field, exc.value, f"{exc.reason} at material.temperature_K = "
                                                   f"{self.material.temperature_K:g}") from None

    def _init_parts(self) -> None:
        for name, cls in (("geometry", Geometry), ("material", Material), ("initial", InitialState),
                          ("solver", SolverOptions)):
            if not isinstance(getattr(self, name), cls):
                raise InputError(name, getattr(self, name), f"must be a {cls.__name__}")
        if not isinstance(self.sources, bool):
            raise InputError("electrode.sources", self.sources, "must be true or false")
        m = self.material
        if self.onsager is None:
            object.__setattr__(self, "onsager", OnsagerCoefficients.manning_placeholder(
                temperature_K=m.temperature_K, lattice_constant_A=m.lattice_constant_A, coordination=m.coordination))
        if self.vacancy is None:
            object.__setattr__(self, "vacancy", VacancyEquilibrium.formation_energy_placeholder(
                temperature_K=m.temperature_K))
        if self.electrode is None:
            object.__setattr__(self, "electrode", ElectrodeKinetics.paper_placeholder(self.geometry.gap_um))
        if self.bias is None:
            object.__setattr__(self, "bias", BiasSchedule.constant_field(4.0, duration_s=14400.0,
                                                                         gap_um=self.geometry.gap_um))
        for name, cls in (("onsager", OnsagerCoefficients), ("vacancy", VacancyEquilibrium),
                          ("electrode", ElectrodeKinetics), ("bias", BiasSchedule)):
            if not isinstance(getattr(self, name), cls):
                raise InputError(name, getattr(self, name), f"must be a {cls.__name__}")

    @classmethod
    def paper_device(cls, field_V_per_um: float = 4.0, hours: float = 4.0, sources: bool = True,
                     **solver_kw) -> "DeviceConfig":
        """The built-in paper device under a constant field (negative = reverse bias)."""
        g = Geometry()
        return cls(geometry=g, sources=sources,
                   bias=BiasSchedule.constant_field(field_V_per_um, hours=hours, gap_um=g.gap_um),
                   solver=SolverOptions(**solver_kw))

    def replace(self, **kw) -> "DeviceConfig":
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(kw)
        return DeviceConfig(**d)

    def to_dict(self) -> dict:
        def plain(obj):
            return {f.name: (list(getattr(obj, f.name)) if isinstance(getattr(obj, f.name), tuple)
                             else getattr(obj, f.name)) for f in fields(obj)}

        return {
            "geometry": plain(self.geometry), "material": plain(self.material), "initial": plain(self.initial),
            "transport": self.onsager.to_dict(), "vacancy": self.vacancy.to_dict(),
            "electrode": dict(self.electrode.to_dict(), sources=self.sources),
            "bias": {"schedule": [list(s) for s in self.bias.steps], "duration_s": self.bias.duration_s},
            "solver": {k: (list(v) if isinstance(v, tuple) else v) for k, v in plain(self.solver).items()},
            **({"contact_source_scale": list(self.contact_source_scale)}
               if self.contact_source_scale != (1.0, 1.0) else {}),
        }


# ----------------------------------------------------------------------------- TOML loading

_SIMPLE = {
    "geometry": {f.name for f in fields(Geometry)},
    "material": {f.name for f in fields(Material)},
    "initial": {f.name for f in fields(InitialState)},
    "solver": {f.name for f in fields(SolverOptions)},
}
_TRANSPORT = {"model", "w_br_Hz", "w_cl_Hz", "c", "l_brbr_Hz", "l_brcl_Hz", "l_clcl_Hz"}
_VACANCY = {"model", "x_v_pure_br", "formation_energy_br_eV", "formation_energy_cl_eV", "c", "x_v_eq"}
_ELECTRODE = {"sources", "model", "c", "k_create0_per_s", "k_annihilate0_per_s", "voltage_exponent"}
_BIAS = {"field_V_per_um", "duration_s", "schedule"}
SECTIONS = ("geometry", "material", "initial", "transport", "vacancy", "electrode", "bias", "solver")


def _section(d: dict, name: str, allowed: set) -> dict:
    sec = d.get(name, {})
    if not isinstance(sec, dict):
        raise InputError(name, sec, "must be a TOML table ([" + name + "])")
    for k in sec:
        if k not in allowed:
            raise InputError(f"{name}.{k}", sec[k], f"unknown key; allowed: {sorted(allowed)}")
    return sec


def _need(sec: dict, name: str, key: str):
    if key not in sec:
        raise InputError(f"{name}.{key}", None, "required for this model")
    return sec[key]


def _make(cls, sec: dict, name: str):
    try:
        return cls(**sec)
    except TypeError as exc:  # pragma: no cover - keys were checked already
        raise InputError(name, sec, str(exc)) from None


def config_from_dict(d: dict) -> DeviceConfig:
    """Build a :class:`DeviceConfig` from a parsed TOML document (strict: unknown keys are errors)."""
    if not isinstance(d, dict):
        raise InputError("config", d, "must be a TOML document")
    for k in d:
        if k not in SECTIONS:
            raise InputError(k, d[k], f"unknown section; allowed: {list(SECTIONS)}")
    geom = _make(Geometry, _section(d, "geometry", _SIMPLE["geometry"]), "geometry")
    mat = _make(Material, _section(d, "material", _SIMPLE["material"]), "material")
    init = _make(InitialState, _section(d, "initial", _SIMPLE["initial"]), "initial")
    sol = _section(d, "solver", _SIMPLE["solver"])
    for k in ("contact_mode",):
        if k in sol and not isinstance(sol[k], str):
            raise InputError(f"solver.{k}", sol[k], "must be a string")
    solver = _make(SolverOptions, sol, "solver")

    tr = _section(d, "transport", _TRANSPORT)
    model = tr.get("model", "manning")
    if model == "manning":
        extra = set(tr) - {"model", "w_br_Hz", "w_cl_Hz"}
        if extra:
            k = sorted(extra)[0]
            raise InputError(f"transport.{k}", tr[k], "not used by model 'manning'")
        wbr = tr.get("w_br_Hz", placeholder_w_br_Hz(mat.temperature_K, mat.lattice_constant_A, mat.coordination))
        wbr = _num("transport.w_br_Hz", wbr, 0.0, True)
        wcl = _num("transport.w_cl_Hz", tr.get("w_cl_Hz", 0.1 * wbr), 0.0, True)
        onsager = OnsagerCoefficients.manning_placeholder(wbr, wcl)
    elif model == "table":
        extra = set(tr) - {"model", "c", "l_brbr_Hz", "l_brcl_Hz", "l_clcl_Hz"}
        if extra:
            k = sorted(extra)[0]
            raise InputError(f"transport.{k}", tr[k], "not used by model 'table'")
        onsager = OnsagerCoefficients.from_table(_need(tr, "transport", "c"), _need(tr, "transport", "l_brbr_Hz"),
                                                 _need(tr, "transport", "l_brcl_Hz"),
                                                 _need(tr, "transport", "l_clcl_Hz"), source="TOML table")
    else:
        raise InputError("transport.model", model, "must be 'manning' or 'table'")

    va = _section(d, "vacancy", _VACANCY)
    model = va.get("model", "formation_energy")
    if model == "formation_energy":
        extra = set(va) - {"model", "x_v_pure_br", "formation_energy_br_eV", "formation_energy_cl_eV"}
        if extra:
            k = sorted(extra)[0]
            raise InputError(f"vacancy.{k}", va[k], "not used by model 'formation_energy'")
        vac = VacancyEquilibrium.formation_energy_placeholder(
            _num("vacancy.x_v_pure_br", va.get("x_v_pure_br", 1e-7), 0.0, True, 1.0, True),
            _num("vacancy.formation_energy_br_eV", va.get("formation_energy_br_eV", 1.32)),
            _num("vacancy.formation_energy_cl_eV", va.get("formation_energy_cl_eV", 1.44)),
            temperature_K=mat.temperature_K)
    elif model == "table":
        extra = set(va) - {"model", "c", "x_v_eq"}
        if extra:
            k = sorted(extra)[0]
            raise InputError(f"vacancy.{k}", va[k], "not used by model 'table'")
        vac = VacancyEquilibrium.from_table(_need(va, "vacancy", "c"), _need(va, "vacancy", "x_v_eq"),
                                            source="TOML table")
    else:
        raise InputError("vacancy.model", model, "must be 'formation_energy' or 'table'")

    el = _section(d, "electrode", _ELECTRODE)
    sources = el.get("sources", True)
    if not isinstance(sources, bool):
        raise InputError("electrode.sources", sources, "must be true or false")
    model = el.get("model", "paper")
    if model == "paper":
        extra = set(el) - {"model", "sources"}
        if extra:
            k = sorted(extra)[0]
            raise InputError(f"electrode.{k}", el[k], "not used by model 'paper'")
        elec = ElectrodeKinetics.paper_placeholder(geom.gap_um)
    elif model == "table":
        elec = ElectrodeKinetics(c=_need(el, "electrode", "c"), k_create0_per_s=_need(el, "electrode", "k_create0_per_s"),
                                 k_annihilate0_per_s=_need(el, "electrode", "k_annihilate0_per_s"),
                                 voltage_exponent=el.get("voltage_exponent", 1.0), source="TOML table")
    else:
        raise InputError("electrode.model", model, "must be 'paper' or 'table'")

    bi = _section(d, "bias", _BIAS)
    if "schedule" in bi and "field_V_per_um" in bi:
        raise InputError("bias.schedule", bi["schedule"], "give either schedule or field_V_per_um, not both")
    dur = bi.get("duration_s", 14400.0)
    if "schedule" in bi:
        sch = bi["schedule"]
        if not isinstance(sch, list) or not all(isinstance(s, list) and len(s) == 2 for s in sch):
            raise InputError("bias.schedule", sch, "must be a list of [t_start_s, voltage_V] pairs")
        for s in sch:
            for v in s:
                _num("bias.schedule", v)
        bias = BiasSchedule(steps=tuple(tuple(s) for s in sch), duration_s=dur)
    else:
        f = _num("bias.field_V_per_um", bi.get("field_V_per_um", 4.0))
        bias = BiasSchedule.constant_field(f, duration_s=dur, gap_um=geom.gap_um)
    return DeviceConfig(geometry=geom, material=mat, initial=init, onsager=onsager, vacancy=vac, electrode=elec,
                        sources=sources, bias=bias, solver=solver)


def read_toml(path, field: str = "config") -> dict:
    """A TOML file as a dict; every problem (empty path, directory, missing, too large, not UTF-8,
    binary, not TOML) is an :class:`InputError` naming ``field``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - python < 3.11
        import tomli as tomllib
    if path is None or str(path).strip() == "":
        raise InputError(field, path, "must be a path to a TOML file")
    p = Path(path)
    if p.is_dir():
        raise InputError(field, str(p), "is a directory, not a TOML file")
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise InputError(field, str(p), "file not found") from None
    except OSError as exc:
        raise InputError(field, str(p), f"cannot read: {exc.strerror}") from None
    if size > MAX_CONFIG_BYTES:
        raise InputError(field, str(p), f"{size} bytes: too large for a device config (max {MAX_CONFIG_BYTES})")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(field, str(p), f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(field, str(p), f"not UTF-8 text (byte {exc.start}); TOML files must be UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise InputError(field, str(p), "binary file (contains NUL bytes), not TOML")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(field, str(p), f"not valid TOML: {exc}") from None
    return doc


def load_config(path) -> DeviceConfig:
    """Read a device TOML file (see the module docstring for the schema)."""
    return config_from_dict(read_toml(path, "config"))


MAX_CONFIG_BYTES = 16 * 1024 * 1024
