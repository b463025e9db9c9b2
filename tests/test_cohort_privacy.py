"""Privacy: identifiers in DICOM headers never reach the cohort database."""

from __future__ import annotations

import numpy as np

from _dicom import write_series
from vasomics.cohort.executors import LocalExecutor
from vasomics.cohort.manifest import load_manifest
from vasomics.cohort.runner import run_cohort
from vasomics.cohort.store import CohortStore

PATIENT_NAME = "Quixote^Alonso"
PATIENT_ID = "ZX-58213-77"
SECRETS = (PATIENT_NAME, "Quixote", "Alonso", PATIENT_ID, "58213", "La Mancha General",
           "ACC-44120", "19470923")


def _write_series(folder, volume: np.ndarray, spacing=(1.0, 0.5, 0.5)) -> None:
    """A binary mask as an MR series (uint16, one file per slice) carrying identifiers."""
    write_series(folder, volume, spacing=spacing, origin=(0.0, 0.0, 0.0), modality="MR",
                 series_number=1, identifiers={
                     "PatientName": PATIENT_NAME, "PatientID": PATIENT_ID,
                     "PatientBirthDate": "19470923", "InstitutionName": "La Mancha General",
                     "AccessionNumber": "ACC-44120",
                     "SeriesDescription": f"vessel mask of {PATIENT_NAME}"})


def test_dicom_identifiers_never_reach_the_database(tmp_path):
    z, y, x = np.mgrid[:24, :32, :32]
    tube = ((y - 16) ** 2 + (x - 12) ** 2 <= 16) & (z >= 2) & (z < 22)
    branch = ((y - 16) ** 2 + (x - 12 - (z - 10)) ** 2 <= 9) & (z >= 10) & (z < 22)
    _write_series(tmp_path / "series1", (tube | branch).astype(np.uint16))
    labels = np.zeros((12, 32, 32), np.uint16)
    labels[2:6, 10:20, 10:20], labels[6:10, 10:20, 10:20] = 1, 2  # not a binary mask
    _write_series(tmp_path / "series2", labels)
    assert PATIENT_ID.encode() in (tmp_path / "series1" / "IM0000.dcm").read_bytes()
    manifest = tmp_path / "m.csv"
    manifest.write_text("scan_id,subject_id,path,centre,modality,label:hvpg\n"
                        "scan-1,subj-001,series1,C1,mask,11.5\n"
                        "scan-2,subj-002,series2,C1,mask,\n")
    db = tmp_path / "c.duckdb"
    summary = run_cohort(load_manifest(manifest), db, executor=LocalExecutor(1))
    assert (summary.done, summary.failed) == (1, 1), summary.failures
    with CohortStore.open(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM features").iat[0, 0] > 50
        assert store.query("SELECT subject_id FROM subjects ORDER BY 1").subject_id.tolist() == \
            ["subj-001", "subj-002"]
        columns = store.query("SELECT table_name, column_name FROM information_schema.columns "
                              "WHERE table_schema = 'main'")
        assert len(columns) > 60
        hits = []
        for table, column in columns.itertuples(index=False):
            for secret in (*SECRETS, "subj-002"):  # the manifest id: a positive control
                n = store.query(f'SELECT count(*) FROM "{table}" WHERE '
                                f'CAST("{column}" AS VARCHAR) ILIKE ?', [f"%{secret}%"]).iat[0, 0]
                if n:
                    hits.append((table, column, secret))
        failed = store.query("SELECT error_message FROM runs WHERE status = 'failed'").iat[0, 0]
    assert {h[2] for h in hits} == {"subj-002"}
    assert {(t, c) for t, c, _ in hits} >= {("subjects", "subject_id"), ("scans", "subject_id")}
    assert "not binary" in failed  # the failure reason names the folder, not the patient
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("c.duckdb*"))
    assert not any(secret.encode() in raw for secret in SECRETS)
