"""``halide-ionics structure`` end to end, and its rejection of bad input."""
import json

import numpy as np
import pytest
from ase.io import read

from halide_ionics.coupling.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_acceptance_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(
        ["structure", "--cells", "6", "6", "40", "--interface", "0.5", "--x-br-ends", "1.0", "0.1",
         "--vacancy-fraction", "0.01", "--seed", "1", "--out", "j.extxyz", "--png", "j.png", "--json"]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    summary = json.loads(out.out)
    counts = summary["counts"]
    n_cells = 6 * 6 * 40
    assert counts["Cs"] == n_cells and counts["Pb"] == n_cells
    assert counts["Br"] + counts["Cl"] + counts["vacancy"] == 3 * n_cells == summary["n_halide_sites"]
    # composition: 20 Br-pure layers, 20 layers at x_Br = 0.1 (binomial, 4 standard errors)
    n_half = 1.5 * n_cells * (1 - 0.01)
    expected_br = n_half + 0.1 * n_half
    assert abs(counts["Br"] - expected_br) < 4 * np.sqrt(n_half * 0.09 + 3 * n_cells * 0.0099)
    assert abs(counts["vacancy"] - 0.01 * 3 * n_cells) < 4 * np.sqrt(3 * n_cells * 0.0099)
    assert summary["lattice_constant_A"] == 5.8
    np.testing.assert_allclose(summary["cell_lengths_A"], [34.8, 34.8, 232.0])
    assert summary["files"] == {"extxyz": "j.extxyz", "png": "j.png"}
    assert (tmp_path / "j.png").read_bytes()[:8] == PNG_SIGNATURE
    atoms = read(tmp_path / "j.extxyz")
    assert len(atoms) == 5 * n_cells
    assert (atoms.numbers == 0).sum() == counts["vacancy"]
    assert (atoms.numbers == 35).sum() == counts["Br"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.extxyz", "j.png"]


def test_same_seed_same_file(tmp_path, capsys):
    args = ["structure", "--cells", "3", "3", "5", "--vacancy-fraction", "0.1", "--seed", "7",
            "--lattice-constant", "CsPbBr3-pseudocubic"]
    assert main(args + ["--out", str(tmp_path / "a.extxyz")]) == 0
    assert main(args + ["--out", str(tmp_path / "b.extxyz")]) == 0
    a, b = read(tmp_path / "a.extxyz"), read(tmp_path / "b.extxyz")
    np.testing.assert_array_equal(a.numbers, b.numbers)
    assert a.info["lattice_constant_A"] == 5.840
    capsys.readouterr()


@pytest.mark.parametrize(
    "args, field",
    [
        (["--cells", "0", "6", "40"], "cells"),
        (["--cells", "6", "-6", "40"], "cells"),
        (["--cells", "1", "6", "40"], "cells"),
        (["--interface", "1.5"], "interface"),
        (["--interface", "-0.1"], "interface"),
        (["--x-br-ends", "1.0", "1.2"], "x_br_ends"),
        (["--x-br-ends", "-0.1", "0.1"], "x_br_ends"),
        (["--vacancy-fraction", "-0.01"], "vacancy_fraction"),
        (["--vacancy-fraction", "2"], "vacancy_fraction"),
        (["--seed", "-3"], "seed"),
        (["--lattice-constant", "CsPbI3"], "lattice_constant"),
        (["--lattice-constant", "-5.8"], "lattice_constant"),
        (["--lattice-constant", "0"], "lattice_constant"),
        (["--out", "j.txt"], "out"),
        (["--png", "j.jpg"], "png"),
    ],
)
def test_invalid_arguments(tmp_path, capsys, monkeypatch, args, field):
    monkeypatch.chdir(tmp_path)
    defaults = {"--out": "j.extxyz", "--png": "j.png"}
    argv = ["structure", "--cells", "4", "4", "6", "--json"] + args
    for opt, value in defaults.items():
        if opt not in args:
            argv += [opt, value]
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 2
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("halide-ionics structure: error:")
    assert f"{field}=" in lines[0]
    assert list(tmp_path.iterdir()) == []
