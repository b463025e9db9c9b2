"""The ``centerlines`` pipeline in a cohort: VMTK's path and branch-split centerline files of
one aorta give the same tree in the store (the trunk once); a graph whose radii are all zero
is measured with a QC warning."""

from __future__ import annotations

import numpy as np

from vasomics.cohort.executors import LocalExecutor
from vasomics.cohort.manifest import load_manifest
from vasomics.cohort.runner import run_cohort
from vasomics.cohort.store import CohortStore
from vasomics.io.graphs import read_vtp_centerlines, write_graph_vtp


def test_centerline_files_run_into_the_store(tmp_path, shared_data):
    folder = shared_data / "vmtk_aorta_mra"
    bare = read_vtp_centerlines(folder / "aorta-centerline.vtp", frame="RAS").to_graph()
    no_radius = write_graph_vtp(bare.replace(radius=np.zeros(len(bare.points))),
                                tmp_path / "no_radius.vtp")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "scan_id,subject_id,path,centre,modality,param:read.frame\n"
        f"paths,P1,{folder / 'aorta-centerline.vtp'},Lyon,centerlines,RAS\n"
        f"branches,P2,{folder / 'aorta-centerline-branches.vtp'},Lyon,centerlines,RAS\n"
        f"zero,P3,{no_radius},Lyon,centerlines,\n")
    db = tmp_path / "c.duckdb"
    summary = run_cohort(load_manifest(manifest), db, executor=LocalExecutor(2))
    assert summary.done == 3, summary.failures
    with CohortStore.open(db, read_only=True) as store:
        q = store.query
        assert q("SELECT DISTINCT pipeline FROM scans").pipeline.tolist() == ["centerlines"]
        values = q("SELECT scan_id, feature_id, value FROM features WHERE feature_id IN "
                   "('VX.A.T.LEN', 'VX.A.T.NSEG', 'VX.A.T.NBIF')").pivot(
            index="scan_id", columns="feature_id", values="value")
        radius = q("SELECT status FROM qc WHERE scan_id = 'zero' AND \"check\" = 'radius'")
        segments = q("SELECT count(*) AS n FROM segments WHERE scan_id = 'paths'").n.iat[0]
    for scan in ("paths", "branches"):  # the trunk once: 119 mm, not the paths' 154 mm
        assert values.loc[scan, "VX.A.T.NSEG"] == 3 and values.loc[scan, "VX.A.T.NBIF"] == 1
        assert 110 < values.loc[scan, "VX.A.T.LEN"] < 125
    assert abs(values.loc["paths", "VX.A.T.LEN"] - values.loc["branches", "VX.A.T.LEN"]) < 1
    assert segments == 3 and radius.status.tolist() == ["warn"]
