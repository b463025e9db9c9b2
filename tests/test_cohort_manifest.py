"""Cohort manifests: CSV and YAML, every problem reported at once with row and column."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from vasomics.cohort.manifest import ManifestError, load_manifest
from vasomics.cohort.pipelines import get_pipeline
from vasomics.errors import InputError

HEADER = "scan_id,subject_id,path,centre,modality,acquisition_date,label:hvpg"


@pytest.fixture
def files(tmp_path):
    for name in ("a.nii.gz", "b.nii.gz", "c.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def _csv(folder, lines, name="m.csv"):
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_valid_csv_manifest(files):
    path = _csv(files, [HEADER, "s1,P1,a.nii.gz,Paris,mask,2024-03-01,12.5",
                        "s2,P1,b.nii.gz,Lyon,MASK,,"])
    m = load_manifest(path)
    assert [e.scan_id for e in m.entries] == ["s1", "s2"]
    s1, s2 = m.entries
    assert s1.path == files / "a.nii.gz" and s1.acquisition_date == dt.date(2024, 3, 1)
    assert s1.labels == {"hvpg": 12.5} and s2.labels == {}
    assert s2.acquisition_date is None and s2.pipeline == "mask"
    assert s1.params_hash == s2.params_hash and len(s1.params_hash) == 16


def test_every_problem_is_reported_with_row_and_column(files, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "o.nii.gz"
    outside.write_bytes(b"x")
    path = _csv(files, [
        HEADER + ",centr",
        "s1,P1,a.nii.gz,Paris,mask,2024-03-01,1,x",
        "s1,P2,b.nii.gz,Paris,mask,2024-03-01,2,x",        # duplicate scan id
        "s3,P3,missing.nii.gz,Paris,mask,2024-03-01,3,x",  # missing file
        f"s4,P4,{outside},Paris,mask,2024-03-01,4,x",       # outside root
        "s5,P5,c.nii.gz,Paris,mask,2024-13-45,5,x",        # bad date
        "s6,P6,c.nii.gz,Paris,ultrasoundish,,6,x",         # unknown modality
        "bad id,,c.nii.gz,Paris,mask,,7,x",                # bad id, empty subject
    ])
    with pytest.raises(ManifestError) as info:
        load_manifest(path, root=files)
    problems = info.value.problems
    text = str(info.value)
    expected = [
        "column 'centr': unknown column",
        "line 3, scan_id: duplicate scan id 's1' (first at line 2)",
        "line 4, path: file not found",
        "line 5, path:",
        "line 6, acquisition_date: '2024-13-45' is not a date",
        "line 7, modality: no pipeline handles modality 'ultrasoundish'",
        "line 8, subject_id: empty",
        "line 8, scan_id: 'bad id' is not a valid id",
    ]
    for needle in expected:
        assert any(needle in p for p in problems), (needle, problems)
    assert "did you mean 'centre'?" in text
    assert "outside the root folder" in [p for p in problems if p.startswith("line 5")][0]
    assert "\n" not in text and text.startswith(str(path))


def test_missing_required_columns_and_same_file_twice(files):
    path = _csv(files, ["scan_id,path,modality", "s1,a.nii.gz,mask", "s2,a.nii.gz,mask"])
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    problems = info.value.problems
    assert "column 'subject_id': required column is missing" in problems
    assert "column 'centre': required column is missing" in problems
    assert any(p.startswith("line 3, path: same file as line 2") for p in problems)


def test_symlink_escaping_root_is_refused(files, tmp_path_factory):
    target = tmp_path_factory.mktemp("secret") / "x.nii.gz"
    target.write_bytes(b"x")
    os.symlink(target, files / "link.nii.gz")
    path = _csv(files, [HEADER, "s1,P1,link.nii.gz,Paris,mask,,"])
    with pytest.raises(ManifestError, match="outside the root folder"):
        load_manifest(path, root=files)
    assert len(load_manifest(path)) == 1  # without --root the link is fine


def test_per_scan_parameters_change_the_hash_and_are_validated(files):
    (files / "strict.yaml").write_text("qc:\n  max_anisotropy: 2.0\n")
    path = _csv(files, [
        "scan_id,subject_id,path,centre,modality,params,param:qc.min_foreground_voxels",
        "s1,P1,a.nii.gz,A,mask,,",
        "s2,P2,b.nii.gz,A,mask,strict.yaml,",
        "s3,P3,c.nii.gz,A,mask,,100",
    ])
    s1, s2, s3 = load_manifest(path).entries
    assert s2.params.qc.max_anisotropy == 2.0 and s3.params.qc.min_foreground_voxels == 100
    assert len({s1.params_hash, s2.params_hash, s3.params_hash}) == 3
    # cohort-wide parameters apply under the row's own
    c1, c2, _ = load_manifest(path, params={"qc": {"max_anisotropy": 3.0}}).entries
    assert c1.params.qc.max_anisotropy == 3.0 and c2.params.qc.max_anisotropy == 2.0
    bad = _csv(files, ["scan_id,subject_id,path,centre,modality,param:qc.max_anisotropy,"
                       "param:qc.nonsense", "s1,P1,a.nii.gz,A,mask,-1,3"], "bad.csv")
    with pytest.raises(ManifestError) as info:
        load_manifest(bad)
    problems = " ".join(info.value.problems)
    assert "line 2, params qc.max_anisotropy" in problems
    assert "line 2, params qc.nonsense" in problems


def test_yaml_manifest_with_defaults_and_problems(files):
    path = files / "m.yaml"
    path.write_text(
        "defaults: {centre: Paris, modality: mask}\n"
        "scans:\n"
        "  - {scan_id: s1, subject_id: P1, path: a.nii.gz, acquisition_date: 2024-05-06,\n"
        "     labels: {hvpg: 9, cirrhosis: child_b}}\n"
        "  - {scan_id: s2, subject_id: P2, path: b.nii.gz, params: {qc: {max_anisotropy: 2}}}\n"
    )
    s1, s2 = load_manifest(path).entries
    assert s1.centre == "Paris" and s1.acquisition_date == dt.date(2024, 5, 6)
    assert s1.labels == {"hvpg": 9.0, "cirrhosis": "child_b"}
    assert s2.params.qc.max_anisotropy == 2
    path.write_text("scans:\n  - {scan_id: s1, subject_id: P1, path: nope.nii, centre: A,\n"
                    "     modality: mask, colour: red}\n  - 7\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    problems = info.value.problems
    assert any("scans[0], path: file not found" in p for p in problems)
    assert any("scans[1]: not a mapping" in p for p in problems)
    assert any("column 'colour': unknown column" in p for p in problems)


def test_semicolon_csv_with_bom(files):
    path = files / "excel.csv"
    path.write_bytes("\ufeffscan_id;subject_id;path;centre;modality\ns1;P1;a.nii.gz;A;mask\n"
                     .encode())
    assert load_manifest(path).entries[0].centre == "A"


def test_unreadable_and_empty_manifests(tmp_path):
    with pytest.raises(Exception, match="manifest not found"):
        load_manifest(tmp_path / "none.csv")
    empty = _csv(tmp_path, [HEADER])
    with pytest.raises(ManifestError, match="no scans listed"):
        load_manifest(empty)
    assert get_pipeline("mask").name == "mask"


def test_malformed_rows_yaml_and_cells(files):
    path = _csv(files, ["scan_id,subject_id,path,centre,modality,param:qc.max_anisotropy",
                        "s1,P1,a.nii.gz,A,mask,[unclosed", "s2,P2,b.nii.gz,A"])
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    problems = info.value.problems
    assert any(p.startswith("line 2, param:qc.max_anisotropy: cannot parse") for p in problems)
    assert "line 3: 4 cells for 6 columns" in problems
    bad_yaml = files / "m.yaml"
    bad_yaml.write_text("scans: [ {scan_id: s1\n")
    with pytest.raises(InputError, match="invalid YAML at line"):
        load_manifest(bad_yaml)
