"""extxyz round trip and PNG pictures; both written atomically."""
import numpy as np
import pytest
from ase.io import read

from halide_ionics import InputError
from halide_ionics.structures import (
    SPECIES_STYLE,
    build_junction,
    halide_occupancy,
    junction_graph,
    write_extxyz,
    write_junction_png,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def junction():
    return build_junction((4, 4, 12), interface_z_fraction=0.5, x_br_ends=(1.0, 0.1), vacancy_fraction=0.03, seed=2)


@pytest.mark.parametrize("name", ["j.extxyz", "j.xyz"])
def test_extxyz_round_trip(junction, tmp_path, name):
    path = write_extxyz(junction, tmp_path / name)
    back = read(path)
    assert len(back) == len(junction)
    np.testing.assert_allclose(back.positions, junction.positions, atol=1e-6)
    assert back.get_chemical_symbols() == junction.get_chemical_symbols()
    assert (back.numbers == 0).sum() == (junction.numbers == 0).sum() > 0
    for key in ("sublattice", "site_index"):
        assert np.issubdtype(back.arrays[key].dtype, np.integer)
        np.testing.assert_array_equal(back.arrays[key], junction.arrays[key])
    np.testing.assert_allclose(back.cell[:], junction.cell[:])
    assert list(back.pbc) == list(junction.pbc)
    for key in ("lattice_constant_A", "interface_z_fraction", "vacancy_fraction", "seed", "profile", "site_lattice"):
        assert back.info[key] == junction.info[key]
    np.testing.assert_array_equal(back.info["cells"], junction.info["cells"])
    np.testing.assert_allclose(back.info["x_br_ends"], junction.info["x_br_ends"])
    # a KMC state can be recovered from the file
    np.testing.assert_array_equal(halide_occupancy(back), halide_occupancy(junction))
    assert junction_graph(back).n_sites == junction.info["n_halide_sites"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_extxyz_write_failure_leaves_no_file(junction, tmp_path, monkeypatch):
    import ase.io

    def broken_write(filename, images, format=None, **kw):
        with open(filename, "w") as fh:
            fh.write("partial")
        raise OSError("disk full")

    monkeypatch.setattr(ase.io, "write", broken_write)
    with pytest.raises(OSError):
        write_extxyz(junction, tmp_path / "j.extxyz")
    assert list(tmp_path.iterdir()) == []


def test_png_picture(junction, tmp_path):
    import matplotlib.image

    path = write_junction_png(junction, tmp_path / "j.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[1] > 1000 and img.shape[0] > 300
    rgb = img[..., :3].reshape(-1, 3)

    def has_colour(hex_colour, tol=0.03):
        from matplotlib.colors import to_rgb

        return bool((np.abs(rgb - np.array(to_rgb(hex_colour))).max(axis=1) < tol).any())

    # front atoms are drawn unshaded: every species colour appears; vacancy rings are black
    for z in (55, 82, 35, 17):
        assert has_colour(SPECIES_STYLE[z][1]), SPECIES_STYLE[z][0]
    assert has_colour("#000000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.png"]


def test_png_rejects_bad_name_and_writes_nothing(junction, tmp_path):
    with pytest.raises(InputError) as exc:
        write_junction_png(junction, tmp_path / "j.jpg")
    assert exc.value.field == "png"
    with pytest.raises(InputError) as exc:
        write_extxyz(junction, tmp_path / "j.pdb")
    assert exc.value.field == "out"
    with pytest.raises(InputError) as exc:
        write_junction_png(junction, tmp_path / "j.png", cross_section_z_fraction=1.5)
    assert exc.value.field == "cross_section_z_fraction"
    assert list(tmp_path.iterdir()) == []


def test_extxyz_comment_keys_do_not_shadow_reserved_keys(junction, tmp_path):
    """OVITO matches extxyz keys case-insensitively: an info key 'lattice' breaks its reader."""
    import shlex

    path = write_extxyz(junction, tmp_path / "j.extxyz")
    comment = path.read_text().splitlines()[1]
    keys = [item.split("=", 1)[0] for item in shlex.split(comment)]
    for reserved in ("Lattice", "Properties", "pbc"):
        assert [k for k in keys if k.lower() == reserved.lower()] == [reserved]


def test_extxyz_reads_in_ovito(junction, tmp_path):
    io = pytest.importorskip("ovito.io")
    path = write_extxyz(junction, tmp_path / "j.extxyz")
    data = io.import_file(str(path)).compute()
    assert data.particles.count == len(junction)
    names = {t.id: t.name for t in data.particles.particle_types.types}
    types = np.array([names[t] for t in np.asarray(data.particles.particle_types)])
    np.testing.assert_array_equal(types, junction.get_chemical_symbols())
    np.testing.assert_array_equal(np.asarray(data.particles["site_index"]), junction.arrays["site_index"])
    np.testing.assert_allclose(np.asarray(data.particles.positions), junction.positions, atol=1e-6)
