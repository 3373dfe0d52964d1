import os

import pytest

# Never let a test pop up a window.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(20201015)
