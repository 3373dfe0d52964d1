"""Material parameters: measured barriers, the named vacancy-level reading, fixed barriers in T."""
import math

import pytest

from halide_ionics.coupling.materials import CSPB_BR_CL_298K, K_B_EV
from halide_ionics.errors import InputError


def test_measured_barriers_give_the_rate_ratio():
    """Mizusaki et al. 1983: 0.25 / 0.29 eV, i.e. w_Cl/w_Br = e^{-0.04/kT} = 0.21 at 298 K."""
    m = CSPB_BR_CL_298K
    assert m.barrier_cl_eV - m.barrier_br_eV == pytest.approx(0.04, abs=1e-12)
    assert m.rate_ratio_cl_br == pytest.approx(math.exp(-0.04 / (K_B_EV * 298.0)), rel=1e-12)
    assert m.rate_ratio_cl_br == pytest.approx(0.21, abs=0.005)
    assert m.w_cl_Hz / m.w_br_Hz == pytest.approx(m.rate_ratio_cl_br, rel=1e-12)
    # the mobility-calibrated Br barrier lands on the measured 0.25 eV at the per-cell reading
    assert m.barrier_br_eV == pytest.approx(0.250, abs=0.002)


def test_vacancy_level_reading_is_a_named_choice():
    m = CSPB_BR_CL_298K
    assert m.vacancy_level_reading == "per-cell"
    assert m.vacancy_fraction_br == pytest.approx(1e-7 / 3, rel=1e-12)
    s = m.with_(vacancy_level_reading="per-site")
    assert s.vacancy_fraction_br == pytest.approx(1e-7, rel=1e-12)
    # Debye lengths the model page quotes: 0.83 um per cell, 0.48 um per site (eps_r = 250)
    assert m.debye_length_m * 1e6 == pytest.approx(0.83, abs=0.01)
    assert s.debye_length_m * 1e6 == pytest.approx(0.48, abs=0.01)
    # the same mobility at a 3x higher vacancy level needs a 3x slower w_Br
    assert s.w_br_Hz == pytest.approx(m.w_br_Hz / 3, rel=1e-9)
    d = m.with_(vacancy_fraction_br=2e-8)  # a site fraction given directly
    assert d.vacancy_level_reading == "per-site" and d.vacancy_fraction_br == 2e-8
    with pytest.raises(InputError, match="vacancy_level_reading"):
        m.with_(vacancy_level_reading="per-atom")
    with pytest.raises(InputError, match="vacancy_level_paper"):
        m.with_(vacancy_level_paper=0.5)  # site fraction 0.17


def test_barriers_fixed_with_temperature():
    m = CSPB_BR_CL_298K
    hot = m.with_(temperature_K=340.0)
    assert hot.barrier_br_eV == pytest.approx(m.barrier_br_eV, rel=1e-12)
    assert hot.w_br_Hz / m.w_br_Hz == pytest.approx(
        math.exp(-m.barrier_br_eV / (K_B_EV * 340.0) + m.barrier_br_eV / (K_B_EV * 298.0)), rel=1e-9)
