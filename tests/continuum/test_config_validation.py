"""Config edge cases that used to crash, hang or be misread."""
import numpy as np
import pytest

from halide_ionics.continuum import DeviceConfig, config_from_dict, simulate
from halide_ionics.continuum.coefficients import OnsagerCoefficients
from halide_ionics.continuum.mesh import build_mesh
from halide_ionics.errors import InputError


def test_three_point_onsager_table_spanning_both_pure_ends():
    c = [0.0, 0.5, 1.0]
    aa, ab, bb = [1e7, 4e6, 0.0], [0.0, 5e5, 0.0], [0.0, 3e5, 1e6]
    on = OnsagerCoefficients.from_table(c, aa, ab, bb)
    grid = np.linspace(0, 1, 33)
    ratios = on.ratios(grid)
    assert all(np.all(np.isfinite(r)) for r in ratios)
    got = on(np.array(c))
    for g, want in zip(got, (aa, ab, bb)):
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-9 * max(aa))
    cfg = config_from_dict({"transport": {"model": "table", "c": c, "l_brbr_Hz": aa, "l_brcl_Hz": ab,
                                          "l_clcl_Hz": bb},
                            "bias": {"field_V_per_um": 1.0, "duration_s": 10.0}, "solver": {"nodes": 60}})
    r = simulate(cfg)
    assert r.status == "ok" and r.site_conservation_error < 1e-9


def test_four_point_table_extrapolation_unchanged():
    """Tables with two or more interior points extrapolate the end ratios linearly (as before)."""
    from halide_ionics.continuum.coefficients import _extrapolate_ends

    c = np.array([0.0, 0.25, 0.5, 1.0])
    v = np.array([np.nan, 2.0, 3.0, np.nan])
    out = _extrapolate_ends(c, v, True, True)
    assert out[0] == 1.0 and out[-1] == 5.0


def test_mesh_with_absurd_node_count_fails_fast():
    import time

    t0 = time.perf_counter()
    with pytest.raises(InputError, match="solver.nodes"):
        build_mesh(10.0, 1.5, 4.0, 10**20)  # used to loop forever
    assert time.perf_counter() - t0 < 1.0


def test_output_times_read_as_a_list_and_kept_within_duration():
    with pytest.raises(InputError, match="output_times_s='123'"):
        config_from_dict({"solver": {"output_times_s": "123"}})
    with pytest.raises(InputError, match="duration_s"):
        config_from_dict({"solver": {"output_times_s": [0, 5000]}, "bias": {"duration_s": 1000}})
    cfg = config_from_dict({"solver": {"output_times_s": [0, 500, 1000], "nodes": 60},
                            "bias": {"duration_s": 1000, "field_V_per_um": 1}})
    r = simulate(cfg)
    assert r.times_s[-1] == 1000.0 and len(r.times_s) == 3


def test_temperature_out_of_range_names_the_field():
    from halide_ionics.continuum.config import Material

    with pytest.raises(InputError, match=r"material.temperature_K=0.001"):
        DeviceConfig.paper_device().replace(material=Material(temperature_K=1e-3))
