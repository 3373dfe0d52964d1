"""Error bars that mean what they say (in the style of KMCLib's functional tests): over many
independent seeds the scatter of ℓ_ij and f must match the standard errors each run reports.

For each quantity q the seeds give q_s ± SE_s; ``χ² = Σ_s (q_s − q̄)²/⟨SE²⟩`` follows χ² with
n − 1 degrees of freedom when the SEs are right (⟨SE²⟩ is the mean reported variance, an unbiased
estimate of the variance for ratio estimators over replicas). The test accepts the central
99.8 % of that distribution: SEs too small by a factor 1.5 (χ²/dof ≈ 2.3) or too large by 1.5
(χ²/dof ≈ 0.44) fail for n = 20 seeds.
"""
import numpy as np
import pytest
from scipy.stats import chi2

from halide_ionics.kmc import onsager_coefficients

QUANTITIES = ("l_brbr", "l_brcl", "l_clcl", "l_vv", "f_br", "f_cl")


def scatter_chi2(lattice, cells, x_cl, ratio, seeds, replicas, hops):
    rows = [onsager_coefficients(lattice, cells, x_cl, ratio, replicas, hops, s).to_dict() for s in seeds]
    out = {}
    for q in QUANTITIES:
        v = np.array([r[q] for r in rows])
        se = np.array([r[q + "_se"] for r in rows])
        c2 = float(((v - v.mean()) ** 2).sum() / (se ** 2).mean())
        z = (v - v.mean()) / se
        out[q] = {"chi2": c2, "dof": len(seeds) - 1, "max_abs_z": float(np.abs(z).max()),
                  "mean": float(v.mean()), "mean_se": float(np.sqrt((se ** 2).mean()))}
    return out


def _assert_scatter(res):
    for q, d in res.items():
        lo, hi = chi2.ppf([0.001, 0.999], d["dof"])
        assert lo < d["chi2"] < hi, (q, d)
        assert d["max_abs_z"] < 4.5, (q, d)  # no single run far outside its own error bar


def test_seed_scatter_matches_reported_se_correlated_alloy():
    # 50/50 alloy, w_Cl/w_Br = 0.1: strong correlations, the regime where the 8-jump window failed
    res = scatter_chi2("perovskite-x", 4, 0.5, 0.1, seeds=range(100, 120), replicas=8, hops=60_000)
    _assert_scatter(res)


@pytest.mark.slow
def test_seed_scatter_dilute_fast_solute_and_table_size():
    res = scatter_chi2("perovskite-x", 6, 0.02, 10.0, seeds=range(200, 230), replicas=8, hops=400_000)
    _assert_scatter(res)
    res = scatter_chi2("perovskite-x", 6, 0.5, 0.1, seeds=range(300, 330), replicas=8, hops=400_000)
    _assert_scatter(res)
