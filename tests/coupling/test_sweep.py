"""Sweeps: independent of worker count, resumable after an interruption, content-hashed."""
import os
from pathlib import Path

import numpy as np
import pytest

from halide_ionics.coupling.sweep import Task, content_hash, run_sweep


def noisy_mean(seed, n, fail_flag=None):
    """Toy task: a seeded statistic; optionally fails once while ``fail_flag`` exists."""
    if fail_flag and os.path.exists(fail_flag):
        raise RuntimeError("simulated interruption")
    rng = np.random.default_rng(seed)
    return float(rng.normal(size=n).mean())


def _tasks(n_tasks, fail_key=None, flag=None):
    return [
        Task(
            key=f"t{i}",
            func=f"{__name__}:noisy_mean",
            kwargs={"n": 1000, "fail_flag": flag if f"t{i}" == fail_key else None},
            spawn_key=(i,),
        )
        for i in range(n_tasks)
    ]


def test_results_independent_of_workers(tmp_path):
    r1 = run_sweep(_tasks(6), tmp_path / "a", root_seed=7, workers=1)
    r2 = run_sweep(_tasks(6), tmp_path / "b", root_seed=7, workers=2)
    assert r1 == r2
    assert len(set(r1.values())) == 6  # distinct streams per task
    r3 = run_sweep(_tasks(6), tmp_path / "c", root_seed=8, workers=1)
    assert r3 != r1


def test_resume_after_interruption_recomputes_only_unfinished(tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("fail")
    work = tmp_path / "work"
    # the task t3 fails: the sweep stops with an error but the others are on disk
    with pytest.raises(RuntimeError):
        run_sweep(_tasks(5, fail_key="t3", flag=str(flag)), work, root_seed=1, workers=1)
    done_before = {p.name: p.stat().st_mtime_ns for p in work.glob("*.pkl")}
    assert 1 <= len(done_before) < 5
    flag.unlink()
    res = run_sweep(_tasks(5, fail_key="t3", flag=str(flag)), work, root_seed=1, workers=1)
    assert len(res) == 5
    for name, mtime in done_before.items():
        assert (work / name).stat().st_mtime_ns == mtime  # finished tasks were not recomputed
    clean = run_sweep(_tasks(5, fail_key="t3", flag=None), tmp_path / "clean", root_seed=1, workers=1)
    assert res == clean
    assert not list(Path(work).glob("*.part*"))  # no partial files left behind


def test_content_hash_sensitive_to_every_input():
    base = {"a": 1.0, "b": [1, 2], "c": np.arange(3)}
    h = content_hash(base)
    assert content_hash(dict(base)) == h
    assert content_hash({**base, "a": 1.0 + 1e-15}) != h
    assert content_hash({**base, "c": np.arange(3) + 1}) != h
