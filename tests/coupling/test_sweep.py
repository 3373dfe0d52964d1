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


# ------------------------------------------------------------------ a cache that cannot lie
def _one(tmp_path, n=3, seed=7):
    work = tmp_path / "w"
    return work, run_sweep(_tasks(n), work, root_seed=seed, workers=1)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip-payload-byte"])
def test_damaged_entry_is_detected_and_recomputed(tmp_path, caplog, damage):
    import logging

    work, ref = _one(tmp_path)
    t = _tasks(3)[1]
    path = work / f"{t.digest(7)}.pkl"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a bit flip inside the pickled result: only the checksum can see it
        import pickle

        rec = pickle.loads(data)
        p = bytearray(rec["payload"])
        p[-3] ^= 0x01
        rec["payload"] = bytes(p)
        path.write_bytes(pickle.dumps(rec))
    caplog.set_level(logging.WARNING)
    again = run_sweep(_tasks(3), work, root_seed=7, workers=1)
    assert again == ref
    assert any("damaged or mismatched" in r.getMessage() and "t1" in r.getMessage() for r in caplog.records)


def test_entry_of_another_task_or_seed_is_not_used(tmp_path, caplog):
    import logging
    import shutil

    work, ref = _one(tmp_path)
    tasks = _tasks(3)
    # another task's file under this task's name
    shutil.copy(work / f"{tasks[0].digest(7)}.pkl", work / f"{tasks[1].digest(7)}.pkl")
    # another seed's file for task 2
    other = tmp_path / "other"
    run_sweep(_tasks(3), other, root_seed=8, workers=1)
    shutil.copy(other / f"{tasks[2].digest(8)}.pkl", work / f"{tasks[2].digest(7)}.pkl")
    caplog.set_level(logging.WARNING)
    again = run_sweep(tasks, work, root_seed=7, workers=1)
    assert again == ref  # recomputed, not the other task's or seed's numbers
    msgs = " ".join(r.getMessage() for r in caplog.records)
    assert "t1" in msgs and "t2" in msgs and "mismatch" in msgs


def test_stale_partial_files_are_removed(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    t = _tasks(2)[0]
    stale = work / f".{t.digest(7)}.pkl.abc123.part"
    stale.write_bytes(b"half a record")
    run_sweep(_tasks(2), work, root_seed=7, workers=1)
    assert not stale.exists()
    assert not list(work.glob("*.part*"))


def test_cache_key_follows_the_code(tmp_path, monkeypatch):
    """Editing the source of the module that produces a result changes the task's key."""
    from halide_ionics.coupling.sweep import code_hash

    mod = tmp_path / "hi_tmp_task_mod.py"
    mod.write_text("def f(seed):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    t = Task(key="k", func="hi_tmp_task_mod:f")
    code_hash.cache_clear()
    d1 = t.digest(1)
    mod.write_text("def f(seed):\n    return 2\n")
    code_hash.cache_clear()
    assert t.digest(1) != d1
    code_hash.cache_clear()
    # the KMC kernels are part of the coefficient tasks' code
    from halide_ionics.coupling.sweep import _imports_of

    src = open(__import__("halide_ionics.kmc", fromlist=["x"]).__file__).read()
    assert "halide_ionics.kmc.simulation" in _imports_of("halide_ionics.kmc", src, True)


def slow_logged(seed, key, log):
    import time

    with open(log, "a") as fh:
        fh.write(f"{key}\n")
    time.sleep(0.3)
    return float(np.random.default_rng(seed).random())


def _sweep_in_process(work, log, q):
    tasks = [Task(key=f"t{i}", func=f"{__name__}:slow_logged", kwargs={"key": f"t{i}", "log": log},
                  spawn_key=(i,)) for i in range(6)]
    q.put(run_sweep(tasks, work, root_seed=3, workers=1))


def test_concurrent_runs_on_one_cache_do_no_double_work(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    log = str(tmp_path / "log.txt")
    procs = [ctx.Process(target=_sweep_in_process, args=(tmp_path / "w", log, q)) for _ in range(2)]
    for p in procs:
        p.start()
    res = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert res[0] == res[1] and len(res[0]) == 6
    computed = open(log).read().split()
    assert sorted(computed) == [f"t{i}" for i in range(6)]  # every task exactly once


def test_workers_capped_at_tasks(tmp_path, caplog, monkeypatch):
    import logging

    import halide_ionics.parallel as par

    monkeypatch.setattr(par, "_WARNED", set())
    caplog.set_level(logging.WARNING)
    r = run_sweep(_tasks(2), tmp_path / "w", root_seed=7, workers=64)
    assert len(r) == 2
    assert any("instead of 64" in rec.getMessage() for rec in caplog.records)


def test_claims_in_batches_give_the_same_results(tmp_path, monkeypatch):
    import halide_ionics.coupling.sweep as sw

    ref = run_sweep(_tasks(5), tmp_path / "a", root_seed=4, workers=1)
    monkeypatch.setattr(sw, "CLAIM_BATCH", 2)
    assert run_sweep(_tasks(5), tmp_path / "b", root_seed=4, workers=1) == ref
