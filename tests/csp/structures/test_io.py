"""Every export format round-trips: same composition and the same space group at SYMPREC (0.1 A)."""

from __future__ import annotations

import json

import pytest

from csp.errors import InputError
from csp.structures.io import ENERGY_KIND, FORMATS, computed_entry, read_structure, write_structures
from csp.structures.matching import SYMPREC, spacegroup_number
from tests.storage.history_fixtures import cscl, rocksalt, zincblende


def _with_props(structure, **props):
    return structure.copy(properties={"id": "camp/outer/0/-1", "model_ids": ["alignn-exp:abc"], **props})


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize(("make", "number"), [(rocksalt, 225), (cscl, 221), (zincblende, 216)])
def test_export_round_trips(tmp_path, fmt, make, number):
    structure = _with_props(make(), dhf_pred_ev_per_atom=-3.0, p_syn=0.9)
    (path,) = write_structures([structure], tmp_path, fmt)
    assert path.name == f"camp_outer_0_-1{FORMATS[fmt]}"
    back = read_structure(path)
    assert back.composition.reduced_composition == structure.composition.reduced_composition
    assert spacegroup_number(back, SYMPREC) == number == spacegroup_number(structure, SYMPREC)
    assert back.volume / len(back) == pytest.approx(structure.volume / len(structure), rel=1e-4)


def test_cif_is_symmetrised(tmp_path):
    (path,) = write_structures([_with_props(rocksalt())], tmp_path, "cif")
    text = path.read_text()
    assert "_symmetry_space_group_name_H-M   Fm-3m" in text
    assert "_symmetry_Int_Tables_number   225" in text
    # the asymmetric unit: one Mg and one O row of multiplicity 4, not 8 sites
    assert "Mg  Mg0  4" in text and "O  O1  4" in text


def test_computed_entry_is_a_labelled_formation_enthalpy(tmp_path):
    structure = _with_props(rocksalt(), dhf_pred_ev_per_atom=-3.0)
    entry = computed_entry(structure)
    assert entry.energy == pytest.approx(-3.0 * 8)
    assert entry.energy_per_atom == pytest.approx(-3.0)
    assert entry.data["energy_kind"] == ENERGY_KIND and "formation enthalpy" in ENERGY_KIND
    assert entry.data["model_ids"] == ["alignn-exp:abc"]
    (path,) = write_structures([structure], tmp_path, "entry")
    assert json.loads(path.read_text())["data"]["dhf_pred_ev_per_atom"] == -3.0


def test_bad_exports_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="Unknown export format 'xyz'"):
        write_structures([rocksalt()], tmp_path, "xyz")
    with pytest.raises(InputError, match="matched nothing"):
        write_structures([], tmp_path, "cif")
    with pytest.raises(InputError, match="no predicted formation enthalpy"):
        computed_entry(rocksalt())
    with pytest.raises(InputError, match="Cannot read"):
        read_structure(tmp_path / "a.xyz")


def _failing_on_second(monkeypatch, error):
    """write_structure that writes the first file, then half of the second one, then raises ``error``."""
    import csp.structures.io as io

    real, calls = io.write_structure, []

    def write_structure(structure, path, fmt, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            path.write_text("half a file")
            raise error
        return real(structure, path, fmt, **kwargs)

    monkeypatch.setattr(io, "write_structure", write_structure)
    return calls


@pytest.mark.parametrize(
    "error",
    [OSError(28, "No space left on device"), InputError("No space group is found for MgO.")],
    ids=["disk full", "symmetry"],
)
def test_an_export_that_fails_half_way_leaves_nothing(tmp_path, monkeypatch, error):
    """Issue 22: a folder export is all or nothing: a new folder does not appear, an existing one keeps
    exactly what it held, and no hidden partial folder is left anywhere."""
    structures = [_with_props(rocksalt()), _with_props(cscl())]
    new, existing = tmp_path / "new", tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("kept")
    for folder in (new, existing):
        calls = _failing_on_second(monkeypatch, error)
        with pytest.raises(type(error)):
            write_structures(structures, folder, "cif", names=["a", "b"])
        assert len(calls) == 2 and calls[0].parent != folder  # written in a staging folder
        monkeypatch.undo()
    assert not new.exists()
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_an_export_publishes_every_file_and_no_staging_folder(tmp_path):
    structures = [_with_props(rocksalt()), _with_props(cscl())]
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("kept")
    for folder in (tmp_path / "new", existing):
        paths = write_structures(structures, folder, "poscar", names=["a", "b"])
        assert paths == [folder / "a.vasp", folder / "b.vasp"] and all(p.is_file() for p in paths)
    assert sorted(p.name for p in existing.iterdir()) == ["a.vasp", "b.vasp", "mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "new"]


def test_a_refused_write_names_the_final_path_not_the_staging_one(tmp_path, monkeypatch):
    import csp.structures.io as io

    def refused(structure, path, fmt, **kwargs):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(io, "write_structure", refused)
    with pytest.raises(OSError) as caught:
        write_structures([_with_props(rocksalt())], tmp_path / "out", "cif", names=["a"])
    assert caught.value.filename == str(tmp_path / "out" / "a.cif")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way_refuses_the_export_before_any_file_is_published(tmp_path):
    """Issue 22 follow-up: ``mkdir -p out/b.cif`` then an export of a and b into out: the export is refused
    naming out/b.cif, and out keeps exactly what it held (an a.cif of an earlier export unchanged)."""
    structures = [_with_props(rocksalt()), _with_props(cscl())]
    folder = tmp_path / "out"
    (folder / "b.cif").mkdir(parents=True)
    (folder / "a.cif").write_text("an earlier export")
    with pytest.raises(IsADirectoryError) as caught:
        write_structures(structures, folder, "cif", names=["a", "b"])
    assert caught.value.filename == str(folder / "b.cif")
    assert sorted(p.name for p in folder.iterdir()) == ["a.cif", "b.cif"]
    assert (folder / "a.cif").read_text() == "an earlier export" and (folder / "b.cif").is_dir()


def test_a_rename_that_fails_half_way_through_publishing_is_rolled_back(tmp_path, monkeypatch):
    """The files published before a failed rename are taken back and the ones they replaced restored."""
    from pathlib import Path

    structures = [_with_props(rocksalt()), _with_props(cscl()), _with_props(zincblende())]
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.cif").write_text("old a")
    (folder / "mine.txt").write_text("kept")
    real, published = Path.replace, []

    def replace(self, target):
        staged = ".partial-" in str(self) and ".replaced" not in str(self)
        if staged and Path(target).parent == folder:
            published.append(Path(target).name)
            if len(published) == 3:
                raise OSError(28, "No space left on device", str(self), str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "replace", replace)
    with pytest.raises(OSError) as caught:
        write_structures(structures, folder, "cif", names=["a", "b", "c"])
    assert published == ["a.cif", "b.cif", "c.cif"]
    assert caught.value.filename == str(folder / "c.cif")  # the final path, not the staging one
    assert sorted(p.name for p in folder.iterdir()) == ["a.cif", "mine.txt"]
    assert (folder / "a.cif").read_text() == "old a"


def test_a_writer_that_names_no_file_is_named_by_its_final_path(tmp_path, monkeypatch):
    import csp.structures.io as io

    def full(structure, path, fmt, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io, "write_structure", full)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(OSError) as caught:
        write_structures([_with_props(rocksalt())], folder, "cif", names=["a"])
    assert caught.value.filename == str(folder / "a.cif")
    assert list(folder.iterdir()) == []
