"""Bad input and unlucky environments: every case a one-line error, the right exit status, no file left.

Table-driven: each case is a command line (run in-process in an empty folder that holds only the
fixtures below), the expected exit status and the text the message must contain (the option or
``section.key`` and the value). Nothing may be written (the folder must hold exactly the fixtures
afterwards) and nothing may escape as a traceback (an exception would fail the test).
"""
import os
import subprocess
import sys
import time

import pytest

from halide_ionics.coupling.cli import main

FIXTURES = {
    "latin1.toml": "[geometry]\n# caf\xe9\n".encode("latin-1"),
    "utf16.toml": "[geometry]\n".encode("utf-16"),
    "binary.toml": bytes(range(256)),
    "nul.toml": b"[geometry]\n\x00\n",
    "nodes_huge.toml": b"[solver]\nnodes = 99999999999999999999\n",
    "nodes_big.toml": b"[solver]\nnodes = 10000000\n",
    "outputs_big.toml": b"[solver]\nn_outputs = 100000000\n",
    "profiles_big.toml": b"[solver]\nnodes = 200000\nn_outputs = 1000\n",
    "grading.toml": b"[solver]\ngrading_ratio = 1e300\n",
    "times_string.toml": b'[solver]\noutput_times_s = "123"\n',
    "times_beyond.toml": b"[solver]\noutput_times_s = [0, 100, 99999]\n[bias]\nfield_V_per_um = 1\nduration_s = 1000\n",
    "temperature.toml": b"[material]\ntemperature_K = 1e-3\n",
    "table_strings.toml": b'[transport]\nmodel = "table"\nc = ["a", 0.5, 1]\nl_brbr_Hz = [1, 1, 1]\n'
                          b"l_brcl_Hz = [0, 0, 0]\nl_clcl_Hz = [1, 1, 1]\n",
    "table_nested.toml": b'[transport]\nmodel = "table"\nc = [[0], 0.5, 1]\nl_brbr_Hz = [1, 1, 1]\n'
                         b"l_brcl_Hz = [0, 0, 0]\nl_clcl_Hz = [1, 1, 1]\n",
    "rates_strings.toml": b'[electrode]\nmodel = "table"\nc = [0, 1]\nk_create0_per_s = ["1", 2]\n'
                          b"k_annihilate0_per_s = [1, 2]\n",
    "voltage.toml": b"[bias]\nschedule = [[0, 1e300]]\nduration_s = 10\n",
    "formation.toml": b"[vacancy]\nformation_energy_cl_eV = 1000\n",
    "a_file": b"not a folder\n",
}
DIRS = ("a_dir", "a_dir.toml", "a_dir.nc")

D = ["device"]
TINY_COEF = ["coefficients", "--compositions", "5", "--onsager-replicas", "2", "--onsager-hops", "100",
             "--electrode-replicas", "2", "--electrode-events", "100"]

CASES = [
    # (id, argv, status, substrings of the message)
    ("config-empty", D + ["--config", ""], 2, ["config=''"]),
    ("config-dir", D + ["--config", "a_dir.toml"], 2, ["config=", "directory"]),
    ("config-missing", D + ["--config", "nope.toml"], 2, ["config=", "not found"]),
    ("config-latin1", D + ["--config", "latin1.toml"], 2, ["config=", "UTF-8"]),
    ("config-utf16", D + ["--config", "utf16.toml"], 2, ["config=", "UTF-8"]),
    ("config-binary", D + ["--config", "binary.toml"], 2, ["config="]),
    ("config-nul", D + ["--config", "nul.toml"], 2, ["config=", "NUL"]),
    ("nodes-20-digits", D + ["--config", "nodes_huge.toml"], 2, ["solver.nodes=99999999999999999999", "<="]),
    ("nodes-1e7", D + ["--config", "nodes_big.toml"], 2, ["solver.nodes=10000000"]),
    ("n-outputs-1e8", D + ["--config", "outputs_big.toml"], 2, ["solver.n_outputs=100000000"]),
    ("nodes-x-outputs", D + ["--config", "profiles_big.toml"], 2, ["solver.nodes=200000", "GB"]),
    ("grading-1e300", D + ["--config", "grading.toml"], 2, ["solver.grading_ratio=1e+300"]),
    ("times-string", D + ["--config", "times_string.toml"], 2, ["solver.output_times_s='123'", "list"]),
    ("times-beyond-duration", D + ["--config", "times_beyond.toml"], 2, ["solver.output_times_s=", "duration_s"]),
    ("temperature-1e-3", D + ["--config", "temperature.toml"], 2, ["material.temperature_K=0.001"]),
    ("table-strings", D + ["--config", "table_strings.toml"], 2, ["transport.c=", "numbers"]),
    ("table-nested", D + ["--config", "table_nested.toml"], 2, ["transport.c=", "numbers"]),
    ("rates-strings", D + ["--config", "rates_strings.toml"], 2, ["electrode.k_create0_per_s="]),
    ("voltage-1e300", D + ["--config", "voltage.toml"], 2, ["bias.schedule="]),
    ("formation-1000-eV", D + ["--config", "formation.toml"], 2, ["vacancy=", "temperature_K = 298"]),
    ("device-nodes-opt", D + ["--nodes", "99999999999", "--hours", "0.01"], 2, ["--nodes=99999999999"]),
    ("device-field-1e300", D + ["--field", "1e300"], 2, ["--field=1e+300"]),
    ("device-hours-inf", D + ["--hours", "inf"], 2, ["--hours=inf"]),
    ("device-out-empty", D + ["--hours", "0.01", "--out", ""], 2, ["--out=''"]),
    ("device-out-dir", D + ["--hours", "0.01", "--out", "a_dir.nc"], 2, ["--out='a_dir.nc'", "directory"]),
    ("device-out-under-file", D + ["--hours", "0.01", "--out", "a_file/x.nc"], 2, ["--out='a_file/x.nc'"]),
    ("device-out-suffix", D + ["--hours", "0.01", "--out", "x.txt"], 2, ["--out='x.txt'"]),
    ("onsager-rate-ratio", ["kmc", "onsager", "--rate-ratio", "1e300"], 2, ["--rate-ratio=1e+300"]),
    ("onsager-cells", ["kmc", "onsager", "--cells", "100000"], 2, ["--cells=100000"]),
    ("onsager-replicas", ["kmc", "onsager", "--replicas", "100000000"], 2, ["--replicas=100000000"]),
    ("onsager-seed-2^64", ["kmc", "onsager", "--seed", str(2**64)], 2, [f"--seed={2**64}"]),
    ("onsager-workers-0", ["kmc", "onsager", "--workers", "0"], 2, ["--workers=0"]),
    ("electrode-overpotential", ["kmc", "electrode", "--overpotential", "1e6"], 2, ["--overpotential=1000000.0"]),
    ("electrode-vacancy-0", ["kmc", "electrode", "--vacancy-fraction", "0"], 2, ["--vacancy-fraction=0.0"]),
    ("electrode-cells", ["kmc", "electrode", "--cells", "100000"], 2, ["--cells=100000"]),
    ("coef-compositions", TINY_COEF + ["--compositions", "100000000", "--out", "t.nc"], 2,
     ["--compositions=100000000"]),
    ("coef-seed-2^64", TINY_COEF + ["--seed", str(2**64), "--out", "t.nc"], 2, [f"--seed={2**64}"]),
    ("coef-seed-negative", TINY_COEF + ["--seed", "-1", "--out", "t.nc"], 2, ["--seed=-1"]),
    ("coef-workers-0", TINY_COEF + ["--workers", "0", "--out", "t.nc"], 2, ["--workers=0"]),
    ("coef-out-empty", TINY_COEF + ["--out", ""], 2, ["--out=''"]),
    ("coef-out-dir", TINY_COEF + ["--out", "a_dir.nc"], 2, ["--out='a_dir.nc'"]),
    ("coef-out-under-file", TINY_COEF + ["--out", "a_file/t.nc"], 2, ["--out='a_file/t.nc'"]),
    ("coef-cache-empty", TINY_COEF + ["--out", "t.nc", "--cache-dir", ""], 2, ["--cache-dir=''"]),
    ("coef-cache-file", TINY_COEF + ["--out", "t.nc", "--cache-dir", "a_file"], 2, ["--cache-dir='a_file'"]),
    ("coef-scheduler-garbage", TINY_COEF + ["--out", "t.nc", "--scheduler", "not an address"], 2, ["--scheduler="]),
    ("coef-scheduler-protocol", TINY_COEF + ["--out", "t.nc", "--scheduler", "foo://h:1"], 2, ["--scheduler="]),
    ("coef-scheduler-no-port", TINY_COEF + ["--out", "t.nc", "--scheduler", "tcp://host"], 2, ["--scheduler="]),
    ("reproduce-out-file", ["reproduce", "--quick", "--out", "a_file"], 2, ["--out='a_file'"]),
    ("reproduce-out-under-file", ["reproduce", "--quick", "--out", "a_file/out"], 2, ["--out='a_file/out'"]),
    ("reproduce-out-empty", ["reproduce", "--quick", "--out", ""], 2, ["--out=''"]),
    ("reproduce-seed", ["reproduce", "--quick", "--out", "o", "--seed", str(2**64)], 2, [f"--seed={2**64}"]),
    ("consistency-out-file", ["consistency", "--quick", "--out", "a_file"], 2, ["--out='a_file'"]),
    ("consistency-seed", ["consistency", "--quick", "--out", "o", "--seed", str(2**64)], 2, [f"--seed={2**64}"]),
    ("consistency-workers", ["consistency", "--quick", "--out", "o", "--workers", "0"], 2, ["--workers=0"]),
    ("structure-cells", ["structure", "--cells", "100000", "100000", "100000", "--out", "j.extxyz"], 2, ["cells="]),
    ("structure-out-under-file", ["structure", "--cells", "2", "2", "4", "--out", "a_file/j.extxyz"], 2,
     ["out='a_file/j.extxyz'"]),
    ("structure-png-dir", ["structure", "--cells", "2", "2", "4", "--png", "a_dir"], 2, ["png="]),
    ("structure-seed", ["structure", "--cells", "2", "2", "4", "--seed", str(2**64)], 2, [f"seed={2**64}"]),
]


def _populate(folder):
    for name, data in FIXTURES.items():
        (folder / name).write_bytes(data)
    for name in DIRS:
        (folder / name).mkdir()


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    _populate(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HALIDE_IONICS_CACHE_DIR", str(tmp_path / "a_dir"))
    return tmp_path


@pytest.mark.parametrize("argv,status,needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2_no_file(workdir, capsys, argv, status, needles):
    before = _listing(workdir)
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == status
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"halide-ionics {argv[0]}: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert out == ""
    assert _listing(workdir) == before  # nothing written, nothing created


def test_cache_dir_environment_variable_is_validated(workdir, capsys, monkeypatch):
    monkeypatch.setenv("HALIDE_IONICS_CACHE_DIR", str(workdir / "a_file"))
    before = _listing(workdir)
    assert main(TINY_COEF + ["--out", "t.nc"]) == 2
    err = capsys.readouterr().err
    assert "HALIDE_IONICS_CACHE_DIR=" in err and len(err.strip().splitlines()) == 1
    assert _listing(workdir) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unwritable_output_folder(workdir, capsys):
    ro = workdir / "a_dir"
    ro.chmod(0o555)
    try:
        assert main(D + ["--hours", "0.01", "--out", "a_dir/x.nc"]) == 2
        assert "no write permission" in capsys.readouterr().err
    finally:
        ro.chmod(0o755)


def test_png_failure_leaves_no_extxyz(workdir, capsys, monkeypatch):
    import halide_ionics.coupling.cli.structure as S

    def broken_png(atoms, path, **kw):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(S, "write_junction_png", broken_png)
    before = _listing(workdir)
    rc = main(["structure", "--cells", "2", "2", "4", "--out", "j.extxyz", "--png", "j.png"])
    err = capsys.readouterr().err
    assert rc == 1 and "no space left on device" in err and len(err.strip().splitlines()) == 1
    assert _listing(workdir) == before


def test_workers_capped_at_tasks_with_a_message(workdir, capsys, caplog, monkeypatch):
    import logging

    import halide_ionics.parallel as par

    monkeypatch.setattr(par, "_WARNED", set())
    caplog.set_level(logging.WARNING)
    rc = main(["kmc", "onsager", "--cells", "3", "--replicas", "2", "--hops-per-replica", "200", "--workers", "64",
               "--json"])
    assert rc == 0
    assert any("instead of 64" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------- signals
def _coefficients_cmd(tmp_path, workers=2):
    return [sys.executable, "-m", "halide_ionics.coupling.cli", "coefficients", "--compositions", "5",
            "--onsager-replicas", "2", "--onsager-hops", "400000", "--electrode-replicas", "2",
            "--electrode-events", "100000", "--workers", str(workers), "--seed", "3",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "t.nc")]


def _start_pooled_run(tmp_path):
    psutil = pytest.importorskip("psutil")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.Popen(_coefficients_cmd(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 90
    while time.time() < deadline and len(parent.children()) < 2 and proc.poll() is None:
        time.sleep(0.05)
    kids = parent.children(recursive=True)
    assert len(kids) >= 2, "the pool must be running when the signal lands"
    time.sleep(0.5)
    return proc, kids, psutil


@pytest.mark.parametrize("signame,status,word", [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_signal_to_pooled_run_leaves_no_process_and_one_line(tmp_path, signame, status, word):
    import signal

    proc, kids, psutil = _start_pooled_run(tmp_path)
    os.killpg(proc.pid, getattr(signal, signame))  # Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert err.strip() == f"halide-ionics coefficients: {word}", err  # one line, no worker traceback
    _, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive, "pool workers outlived the run"
    assert not (tmp_path / "t.nc").exists()


def test_kill_9_of_pooled_run_takes_the_workers_with_it(tmp_path):
    import signal

    proc, kids, psutil = _start_pooled_run(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: the workers must notice on their own
    proc.communicate(timeout=60)
    _, alive = psutil.wait_procs(kids, timeout=10)
    try:
        assert not alive, "pool workers outlived a kill -9 of their parent"
    finally:
        for k in alive:
            k.kill()


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_numba_threads_environment_variable_is_validated(workdir, capsys, monkeypatch, value):
    monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    before = _listing(workdir)
    assert main(["kmc", "onsager"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"halide-ionics: error: NUMBA_NUM_THREADS={value!r}: must be a positive integer (or unset)"
    assert _listing(workdir) == before


# ------------------------------------------------------------------------- slow (pytest -m slow)
@pytest.mark.slow
def test_unreachable_scheduler_is_a_one_line_input_error(workdir, capsys):
    """Nothing listens on port 1: the connection attempt times out into one line (about 10 s)."""
    pytest.importorskip("distributed")
    before = _listing(workdir)
    rc = main(TINY_COEF + ["--out", "t.nc", "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines() == [err] and "--scheduler='tcp://127.0.0.1:1': cannot connect" in err
    assert _listing(workdir) == before


@pytest.mark.slow
def test_reproduce_quick_cli_end_to_end_strict_json(tmp_path):
    """The README's main command in its quick form: exit 0, strict summary.json, no partial files."""
    import json

    env = dict(os.environ, NUMBA_NUM_THREADS="1", HALIDE_IONICS_CACHE_DIR=str(tmp_path / "cache"))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "halide_ionics.coupling.cli", "reproduce", "--quick", "--workers", "2",
                        "--out", str(out)], capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text(),
                   parse_constant=lambda name: pytest.fail(f"summary.json holds {name}"))
    assert s["targets"] and not list(out.glob("*.part*"))
