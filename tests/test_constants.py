"""One source for physical constants; the pinned values agree with scipy.constants."""
import math

from scipy import constants as sc

from halide_ionics import constants as C


def test_pinned_constants_agree_with_scipy():
    assert C.E_CHARGE_C == sc.elementary_charge
    assert C.K_B_J_PER_K == sc.Boltzmann
    assert math.isclose(C.K_B_EV_PER_K, sc.Boltzmann / sc.elementary_charge, rel_tol=1e-10)
    assert math.isclose(C.EPS0_F_PER_M, sc.epsilon_0, rel_tol=1e-9)
    assert C.T_ROOM_K == 298.0


def test_every_layer_uses_the_one_source():
    from halide_ionics.continuum import config as cc
    from halide_ionics.continuum import coefficients as ccoef
    from halide_ionics.coupling import materials as cm
    from halide_ionics.kmc import rates as kr
    from halide_ionics.structures import lattice as sl

    assert cc.E_CHARGE_C is C.E_CHARGE_C and cc.EPS0_F_PER_M is C.EPS0_F_PER_M
    assert ccoef.BOLTZMANN_EV_PER_K is C.K_B_EV_PER_K and cm.K_B_EV is C.K_B_EV_PER_K and kr.K_B_EV is C.K_B_EV_PER_K
    assert ccoef.F0_PEROVSKITE_X is C.F0_PEROVSKITE_X
    assert sl.TRACER_CORRELATION_FACTOR["perovskite-x"] is C.F0_PEROVSKITE_X
    # one default temperature
    assert kr.RateModel().temperature_K == cm.Material().temperature_K == cc.Material().temperature_K == C.T_ROOM_K
