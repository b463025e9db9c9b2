"""The ``ct`` pipeline in a cohort: a CT phantom through the CT chain into the store, and a
scan that fails quality control recorded with its reasons."""

from __future__ import annotations

import json

import numpy as np

from vasomics.chain.phase import PHASES
from vasomics.cohort.executors import LocalExecutor
from vasomics.cohort.manifest import load_manifest
from vasomics.cohort.runner import run_cohort
from vasomics.cohort.store import CohortStore
from vasomics.io.images import write_image
from vasomics.phantoms.liver_ct import liver_ct_phantom


def test_ct_scans_run_through_the_ct_chain(tmp_path, shared_data):
    ct, _ = liver_ct_phantom((60, 96, 96), seed=3, z_extent_mm=180.0, min_radius_mm=1.0)
    write_image(ct, tmp_path / "ct.nii.gz")
    art, _ = liver_ct_phantom((60, 96, 96), phase="arterial", seed=3, z_extent_mm=180.0,
                              hepatic_artery=True)
    write_image(art, tmp_path / "art.nii.gz")
    mr = shared_data / "totalsegmentator_examples" / "example_mr_sm.nii.gz"
    manifest = tmp_path / "m.csv"
    manifest.write_text("scan_id,subject_id,path,centre,modality,label:hvpg\n"
                        "ct1,P1,ct.nii.gz,Lyon,CT,14\n"
                        "ct2,P3,art.nii.gz,Lyon,CT,8\n"
                        f"mr1,P2,{mr},Lyon,CT,\n")
    db = tmp_path / "c.duckdb"
    summary = run_cohort(load_manifest(manifest), db, executor=LocalExecutor(2))
    assert (summary.done, summary.failed) == (2, 1), summary.failures
    assert "failed quality control: QC fail" in dict(summary.failures)["mr1"]
    with CohortStore.open(db, read_only=True) as store:
        q = store.query
        assert q("SELECT DISTINCT pipeline FROM scans").pipeline.tolist() == ["ct"]
        liver = q("SELECT value FROM features WHERE scan_id = 'ct1' AND feature_id = "
                  "'VX.A.T.LIVER_VOL'").value
        trees = q("SELECT DISTINCT split_part(label, ':', 1) AS tree FROM segments WHERE "
                  "scan_id = 'ct1'").tree
        # an arterial scan's hepatic artery arrives with its names (its hepatic veins are
        # not yet enhanced: no hepatic tree)
        arterial = q("SELECT DISTINCT label FROM segments WHERE scan_id = 'ct2'").label
        checks = q("SELECT \"check\", status FROM qc WHERE scan_id = 'ct1'")
        phase = q("SELECT provenance FROM runs WHERE scan_id = 'ct1'").provenance.iat[0]
    # the chain's accuracy is tested with the chain; here: its numbers arrive in the store
    assert np.isfinite(liver.iat[0]) and liver.iat[0] > 0
    assert set(trees) == {"portal", "hepatic"}
    assert "artery:hepatic_artery" in set(arterial), set(arterial)
    assert {lab.split(":")[0] for lab in arterial} == {"portal", "artery"}
    assert len(checks) >= 3 and "fail" not in set(checks.status)
    assert json.loads(phase)["info"]["phase"] in PHASES
