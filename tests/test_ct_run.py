"""``vasomics run``: the whole chain from a file, its outputs, QC stops, liver features."""

import json

import numpy as np
import pytest

from vasomics.cli import main
from vasomics.io.images import read_image, write_image
from vasomics.phantoms.liver_ct import liver_ct_phantom


def test_run_writes_every_output_and_times_each_stage(tmp_path, shared_data, capsys):
    ct, _ = liver_ct_phantom((72, 112, 112), seed=2, z_extent_mm=216.0)
    path = write_image(ct, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "summary.html") in printed
    for name in ("qc.json", "phase.json", "organs.nii.gz", "vessels.nii.gz", "features.csv",
                 "summary.html", "params.yaml", "provenance.json"):
        assert (out / name).is_file(), name
    prov = json.loads((out / "provenance.json").read_text())
    assert {"qc", "localize", "phase", "vessels", "graph", "naming", "features"} <= set(
        prov["stage_seconds"]) and set(prov["stage_seconds"]) == set(prov["stage_cpu_seconds"])
    probs = json.loads((out / "phase.json").read_text())["probabilities"]
    assert abs(sum(probs.values()) - 1) < 1e-6
    # the atlas portal vein, which refinement moved (Dice with the atlas mask under
    # portal_vein_min_refinement_dice, as on every phantom: it lies off the trunk), is no
    # organ to show: organs.nii.gz leaves label 5 out and localization.json says so
    loc = json.loads((out / "localization.json").read_text())
    assert loc["refinement_dice"]["portal_vein"] < 0.7
    assert loc["not_in_organs_nii"] == ["portal_vein"]
    labels = set(np.unique(read_image(out / "organs.nii.gz").array).tolist())
    assert {1, 2, 3, 4} <= labels and 5 not in labels, labels
    html = (out / "summary.html").read_text()
    assert "data:image/png;base64" in html and "Quality control" in html
    # second run: cached localization and vessels
    assert main(["run", str(path), "-o", str(out)]) == 0
    prov2 = json.loads((out / "provenance.json").read_text())
    assert prov2["stage_seconds"]["localize"] < prov["stage_seconds"]["localize"]
    # a later scan that fails QC into the same folder leaves none of this scan's results
    # beside its verdict (they would read as its own); files of the user's stay
    (out / "notes.txt").write_text("mine")
    mr = shared_data / "totalsegmentator_examples" / "example_mr_sm.nii.gz"
    assert main(["run", str(mr), "-o", str(out)]) != 0
    assert json.loads((out / "qc.json").read_text())["verdict"] == "fail"
    left = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert left == {"qc.json", "params.yaml", "summary.html", "provenance.json", "notes.txt"}, left


def test_vessel_cache_is_keyed_by_the_parameters_it_reads(tmp_path):
    """The vessel stage reads the localization and the regions' HU: a run whose phase or
    localization parameters differ recomputes it instead of loading the other run's trees
    from the same cache folder."""
    from vasomics.chain.phase import PhaseParams
    from vasomics.chain.run import RunParams, characterize

    ct, _ = liver_ct_phantom((40, 64, 64), phase="portal_venous", seed=3)
    cache = tmp_path / "cache"
    names = []
    for params in (RunParams(), RunParams(phase=PhaseParams(erosion_mm=3.0))):
        characterize(ct, params, force=True, cache_dir=cache, input_key="scan")
        names.append({f.name for f in cache.glob("vessels-*.npz")})
    assert len(names[0]) == len(names[1]) == 1 and names[0] != names[1]
    assert len(list(cache.glob("localize-*.npz"))) == 1  # its own key is unchanged


def test_a_cache_folder_that_cannot_be_made_is_a_one_line_error(tmp_path):
    """The stage cache under a file (or on a file system that refuses folders): an
    OutputError naming the folder, which the CLI prints as one line, not an internal error
    from ``mkdir``."""
    from vasomics.chain.run import characterize
    from vasomics.errors import OutputError

    ct, _ = liver_ct_phantom((40, 64, 64), phase="portal_venous", seed=3)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder") as err:
        characterize(ct, force=True, cache_dir=blocker / "cache", input_key="scan")
    assert err.value.path == str(blocker / "cache")


def test_demo_on_a_generated_ct_reports_against_the_truth(tmp_path):
    """The generated half of ``vasomics demo``: a portal venous CT whose trees are traced
    and named, their length printed beside the generator's truth (a small grid here)."""
    import re

    from vasomics.demo import run_phantom_demo
    from vasomics.phantoms.truth import liver_tree_truth

    text = run_phantom_demo(tmp_path, shape=(72, 112, 112), seed=2)
    assert text.splitlines()[-1] == str(tmp_path / "summary.html")
    assert (tmp_path / "phantom_ct.nii.gz").is_file() and (tmp_path / "features.csv").is_file()
    _, truth = liver_ct_phantom((72, 112, 112), phase="portal_venous", seed=2,
                                z_extent_mm=240.0, hepatic_artery=True)
    want = liver_tree_truth(truth)[("VX.A.V.TREE_LEN", "vessel:portal_venous_tree")]
    portal = re.search(r"portal venous tree: (\d+) mm \(truth (\d+) mm, ([+-]\d+) %\)", text)
    assert portal and int(portal.group(2)) == round(want)
    got = int(portal.group(1))
    assert abs(int(portal.group(3)) - 100 * (got - want) / want) <= 1  # rounded mm
    liver = re.search(r"liver: (\d+) ml \(truth (\d+) ml, ([+-][\d.]+) %\)", text)
    assert liver and int(liver.group(2)) == round(liver_tree_truth(truth)[("VX.A.T.LIVER_VOL",
                                                                           "tree")])
    # QC's liver volume is the measured liver's (before its border step): measured 1.000;
    # 0.934 when QC measured the vessel stage's search region
    checks = json.loads((tmp_path / "qc.json").read_text())["checks"]
    qc_ml = next(c["value"] for c in checks if c["name"] == "liver_coverage")
    assert 0.995 <= qc_ml / int(liver.group(1)) <= 1.005  # printed in whole ml
    # localization.json records the liver's following: ended, the extent larger
    record = json.loads((tmp_path / "localization.json").read_text())["affine"][
        "refinement_passes"]["liver"]
    assert record["ended"] and record["extent_ml"] > record["searched_ml"] > 0


def test_run_stops_on_failed_qc_unless_forced(tmp_path, shared_data, capsys):
    mr = shared_data / "totalsegmentator_examples" / "example_mr_sm.nii.gz"
    code = main(["run", str(mr), "-o", str(tmp_path / "mr")])
    err = capsys.readouterr().err
    assert code != 0 and "quality control" in err and len(err.strip().splitlines()) == 1
    assert json.loads((tmp_path / "mr" / "qc.json").read_text())["verdict"] == "fail"
    assert not (tmp_path / "mr" / "vessels.nii.gz").exists()
    missing = main(["run", str(tmp_path / "nope.nii.gz"), "-o", str(tmp_path / "x")])
    assert missing != 0 and "not found" in capsys.readouterr().err


# ---------------------------------------------------------------- bad DICOM input, one line
def _dicom_folder(tmp_path, name, shape=(24, 48, 48), spacing=(2.0, 1.5, 1.5), series=1):
    """A small CT-like volume written as a DICOM series with the library's own writer."""
    import numpy as np

    from vasomics.image import Image
    from vasomics.io.dicom import write_dicom_series

    rng = np.random.default_rng(series)
    vol = (rng.normal(40, 10, shape)).astype(np.float32)
    return write_dicom_series(Image(vol, spacing=spacing, modality="CT"), tmp_path / name,
                              series_number=series)


def _one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_run_rejects_slices_with_different_spacing(tmp_path, capsys):
    """One slice moved 1.2 mm: steps of 2.0 and 0.8/3.2 mm in one series."""
    import pydicom

    folder = _dicom_folder(tmp_path, "uneven")
    f = sorted(folder.glob("*.dcm"))[10]
    ds = pydicom.dcmread(f)
    pos = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [f"{pos[0]:g}", f"{pos[1]:g}", f"{pos[2] + 1.2:g}"]
    ds.save_as(f)
    err = _one_line_error(capsys, ["run", str(folder), "-o", str(tmp_path / "o1")])
    assert "uneven slice spacing" in err
    assert not (tmp_path / "o1" / "organs.nii.gz").exists()


def test_run_on_mixed_series_folder(tmp_path, capsys):
    """Two series in one folder: equal sizes cannot be told apart (one-line error); otherwise
    the larger one is read and QC warns that the folder held several series."""
    import shutil

    from vasomics.chain.qc import check_image
    from vasomics.io.images import read_image

    a = _dicom_folder(tmp_path, "a", series=1)
    b = _dicom_folder(tmp_path, "b", series=2)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for src, tag in ((a, "a"), (b, "b")):
        for f in src.glob("*.dcm"):
            shutil.copy(f, mixed / f"{tag}_{f.name}")
    err = _one_line_error(capsys, ["run", str(mixed), "-o", str(tmp_path / "o2")])
    assert "2 series" in err and "24 slices each" in err
    for f in sorted(mixed.glob("b_*.dcm"))[12:]:  # series b keeps 12 slices: a is larger
        f.unlink()
    image = read_image(mixed)
    assert image.shape[0] == 24
    qc = check_image(image)
    series = [c for c in qc.checks if c.name == "series"]
    assert series and series[0].status == "warn" and series[0].value == 2


def test_run_stops_on_localizer_only_series(tmp_path, capsys):
    """A 2-slice series tagged LOCALIZER fails QC before any localization."""
    import pydicom

    folder = _dicom_folder(tmp_path, "scout", shape=(2, 48, 48))
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.save_as(f)
    err = _one_line_error(capsys, ["run", str(folder), "-o", str(tmp_path / "o3")])
    assert "quality control" in err
    qc = json.loads((tmp_path / "o3" / "qc.json").read_text())
    failed = {c["name"] for c in qc["checks"] if c["status"] == "fail"}
    assert {"localizer", "slices"} <= failed, failed


# ------------------------------------------------- the whole chain against phantom truth
_CHAIN_PHANTOMS = ((501, "arterial"), (502, "portal_venous"))
#: Trees with contrast in each phase (the hepatic veins enhance with the IVC, after 60 s).
_VISIBLE = {"arterial": ("portal",), "portal_venous": ("portal", "hepatic")}


@pytest.fixture(scope="module")
def chain_on_phantoms():
    """``characterize`` on two liver CT phantoms (96 × 160 × 160, 2.5 × 2.25 × 2.25 mm), scored
    against the generator's truth (the scoring of benchmarks/bench_ct_chain_phantoms.py:
    :func:`~vasomics.phantoms.truth.naming_scores`, :func:`~vasomics.phantoms.truth.liver_tree_truth`)."""
    from vasomics.chain.localize import _dice
    from vasomics.chain.run import characterize
    from vasomics.phantoms.liver_ct import truth_organs
    from vasomics.phantoms.truth import liver_tree_truth, naming_scores

    out = []
    for seed, phase in _CHAIN_PHANTOMS:
        ct, truth = liver_ct_phantom((96, 160, 160), phase=phase, seed=seed,
                                     z_extent_mm=240.0)
        res = characterize(ct)
        organs = truth_organs(truth)
        tol = 1.5 * max(ct.spacing)
        out.append({
            "phase": (res.phase.phase, phase),
            "dice": {k: _dice(res.localization.organs[k], organs[k]) for k in
                     ("liver", "aorta", "ivc", "spleen")},
            "naming": {k: naming_scores(g, t, tol)["accuracy"] for k, g, t in
                       (("portal", res.portal, truth.portal),
                        ("hepatic", res.hepatic, truth.hepatic))},
            "errors": {k: res.features.value(*k) / v - 1 for k, v in
                       liver_tree_truth(truth).items()},
        })
    return out


def test_chain_on_phantoms_phase_and_organs(chain_on_phantoms):
    """Measured (seeds 501, 502): phase right on both; liver Dice 0.99 / 0.99 as measured,
    the liver followed to its end (``Localization.extent``; 0.95 / 0.99 before, 0.94 /
    0.97 before the liver followed thick growth), aorta 0.96 / 0.96."""
    for r in chain_on_phantoms:
        assert r["phase"][0] == r["phase"][1], r["phase"]
        assert r["dice"]["liver"] >= 0.97 and r["dice"]["aorta"] >= 0.85, r["dice"]


def test_chain_on_phantoms_portal_to_aorta_ratio(chain_on_phantoms):
    """The portal-vein-to-aorta attenuation ratio through the chain, read on the traced main
    portal vein's lumen core, within 5 % of the rendered HU's ratio (seeds 501 / 502:
    -0.042 / -0.002). Read over the atlas-localized portal/splenic vein (Dice 0 with the
    truth, a blob of parenchyma) it was -0.49 / -0.40."""
    for r in chain_on_phantoms:
        assert abs(r["errors"][("VX.C.T.PV_AORTA_RATIO", "tree")]) <= 0.05, r["errors"]


def test_chain_on_phantoms_leaves_unenhanced_trees_unmeasured(chain_on_phantoms):
    """Arterial phantom 501: the hepatic veins (55 HU) are darker than the liver (78 HU); the
    thresholds pick 43 noisy voxels of the IVC wall (IVC 88 HU), 19 % of them in the liver,
    which the vessel stage refuses as a hepatic tree (hepatic_min_liver_fraction), so the
    chain reports the tree's length as NaN rather than a number."""
    r = chain_on_phantoms[0]
    assert r["phase"][1] == "arterial"
    assert np.isnan(r["naming"]["hepatic"])
    assert np.isnan(r["errors"][("VX.A.V.TREE_LEN", "vessel:hepatic_venous_tree")])


def test_naming_scores_are_length_weighted_per_point():
    """naming_scores of the truth against itself is 1; renaming one segment costs its length
    outside the lumen of its branch points; one segment traced over two truth segments (a
    missed division) is right for the part lying on its own name, not all or nothing."""
    from vasomics.phantoms.truth import naming_scores, tree_graph

    _, truth = liver_ct_phantom((40, 64, 64), seed=3, min_radius_mm=1.0)
    t = truth.portal
    assert naming_scores(t, t, 1.0)["accuracy"] == 1.0
    length = t.segment_lengths()
    s = int(np.argmax(length))
    wrong = t.segment_label.copy()
    wrong[s] = "elsewhere"
    lost = 1 - naming_scores(t.replace(segment_label=wrong), t, 1.0, 0.25)["accuracy"]
    lumen = 2 * float(np.max(t.radius))
    assert (length[s] - lumen) / length.sum() - 0.01 <= lost <= length[s] / length.sum()
    main, right = (int(np.nonzero(t.segment_label == n)[0][0]) for n in
                   ("main_portal_vein", "right_portal_vein"))
    pts = [t.segment_points(main), t.segment_points(right)]
    rad = [t.segment_radius(main), t.segment_radius(right)]
    two = tree_graph(pts, rad, [-1, 0]).replace(
        segment_label=np.array(["main_portal_vein", "right_portal_vein"], object))
    one = tree_graph([np.concatenate([pts[0], pts[1][1:]])],
                     [np.concatenate([rad[0], rad[1][1:]])], [-1]).replace(
        segment_label=np.array(["main_portal_vein"], object))
    acc = naming_scores(one, two, 1.0, 0.25)["accuracy"]
    part = length[main] / (length[main] + length[right])
    assert part < acc < part + rad[0][-1] / (length[main] + length[right]) + 0.01, (acc, part)


def test_extrahepatic_portal_system_naming():
    """``name_portal_system`` (the rule for the splenic vein and SMV, which the chain does not
    trace yet): about a confluence at the origin (LPS mm), the SMV rising from 80 mm below,
    the splenic vein running 80 mm to the patient's left, the main portal vein up and to the
    right; each segment takes the majority name of its points (a point more than 10 mm to the
    left is splenic, else more than 10 mm below is SMV, else main portal vein), so the
    splenic vein's first 10 mm do not make it the main portal vein."""
    from vasomics.chain.naming import name_portal_system
    from vasomics.phantoms.truth import tree_graph

    t = np.linspace(0.0, 1.0, 41)[:, None]
    smv = np.array([5.0, 0.0, -80.0]) * (1 - t)
    splenic = np.array([80.0, 20.0, 30.0]) * t
    trunk = np.array([-40.0, -5.0, 50.0]) * t
    graph = tree_graph([smv, splenic, trunk], [np.full(41, 5.0), np.full(41, 4.0),
                                               np.full(41, 7.0)], [-1, 0, 0])
    named = name_portal_system(graph, (0.0, 0.0, 0.0))
    assert named.segment_label.tolist() == ["superior_mesenteric_vein", "splenic_vein",
                                            "main_portal_vein"]
    # the rule is only as good as the confluence it is given: 12 mm to the right of it, the
    # SMV's points all lie more than 10 mm to the left and it is named splenic
    shifted = name_portal_system(graph, (-12.0, 0.0, 0.0))
    assert shifted.segment_label.tolist()[0] == "splenic_vein"


def test_hepatic_naming_with_merged_ostia():
    """The right and middle hepatic veins traced as one graph whose root segments run into
    each other at the IVC (their ostia merge in the image, as in the phantoms, where they
    leave the IVC 13 mm apart with 5-5.5 mm radii): naming cuts that segment where it comes
    nearest the IVC's axis and names both veins (the IVC point is 40 mm below the
    confluence, as the chain's IVC centroid can be). Scored against the truth: >= 0.95
    (0.51 when the joined veins were named as one tree)."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.phantoms.truth import naming_scores
    from vasomics.vessel_graph import VesselGraph

    _, truth = liver_ct_phantom((40, 64, 64), seed=3, min_radius_mm=1.0)
    h = truth.hepatic
    roots = {str(h.segment_label[s]): s for s in range(h.n_segments)
             if h.segment_generation[s] == 1}
    right, middle = roots["right_hepatic_vein"], roots["middle_hepatic_vein"]
    polys = [np.concatenate([h.segment_points(right)[::-1], h.segment_points(middle)])]
    radii = [np.concatenate([h.segment_radius(right)[::-1], h.segment_radius(middle)])]
    for s in range(h.n_segments):
        if s not in (right, middle):
            polys.append(h.segment_points(s))
            radii.append(h.segment_radius(s))
    joined = VesselGraph.from_polylines(polys, radii, merge_tol_mm=1e-6)
    assert joined.n_segments == h.n_segments - 1
    ivc = np.mean([h.segment_points(s)[0] for s in roots.values()], axis=0) - [0, 0, 40]
    named = name_hepatic_veins(joined, ivc)
    assert named.n_segments == h.n_segments
    assert np.isclose(named.segment_lengths().sum(), joined.segment_lengths().sum())
    assert naming_scores(named, h, 1.0)["accuracy"] >= 0.95


def _tube(a, b, radius):
    n = max(2, int(np.ceil(np.linalg.norm(np.subtract(b, a)))) + 1)
    return np.linspace(a, b, n), np.full(n, float(radius))


def test_hepatic_naming_hub_outside_the_ivc_wall():
    """Hepatic veins meeting at one hub outside the IVC's wall (IVC axis x = y = 0, radius
    10 mm), with a stem from the hub traced into the IVC's lumen (as the chain traces
    phantom 507 portal venous: hub 19 mm from the axis of an 11 mm IVC, 17 mm stem of
    radius 3.7 mm, right, middle and left veins at the hub). Right and left veins at a hub
    6 mm outside the wall (12 mm stem, 3.5 mm radius): measured from the wall the stem is
    within 2.5 stem radii (8.75 mm), a shared ostium. Right, middle and left veins at a hub
    20 mm outside the wall: diverging to both sides of the IVC, a shared ostium at any
    distance. Both were one vein named right when the stem was measured from the root. A
    right hepatic vein dividing 17 mm outside the wall (beyond 2.5 x its 4 mm radius) into
    two branches on the right stays one vein."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.vessel_graph import VesselGraph

    ends = {"right_hepatic_vein": ((-70.0, 20.0, 25.0), 4.0),
            "middle_hepatic_vein": ((-10.0, 70.0, 30.0), 3.5),
            "left_hepatic_vein": ((60.0, 40.0, 25.0), 3.5)}
    for hub, veins in (((0.0, 16.0, 0.0), ("right_hepatic_vein", "left_hepatic_vein")),
                       ((0.0, 30.0, 0.0), tuple(ends))):
        tubes = [_tube(hub, (0.0, 4.0, 0.0), 3.5)] + [_tube(hub, *ends[v]) for v in veins]
        g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                       merge_tol_mm=1e-6)
        assert g.n_segments == len(tubes)
        named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
        # the segments keep their polylines' order; the stem takes the largest vein's name
        assert list(named.segment_label) == ["right_hepatic_vein", *veins], named.segment_label

    right = [_tube((-4.0, 0.0, 0.0), (-27.0, 0.0, 5.0), 4.0),
             _tube((-27.0, 0.0, 5.0), (-70.0, 30.0, 30.0), 3.5),
             _tube((-27.0, 0.0, 5.0), (-70.0, -30.0, 10.0), 3.5),
             _tube((-2.0, 3.0, 0.0), (-10.0, 70.0, 30.0), 3.5),
             _tube((3.0, 2.0, 0.0), (60.0, 40.0, 25.0), 3.5)]
    g = VesselGraph.from_polylines([t[0] for t in right], [t[1] for t in right],
                                   merge_tol_mm=1e-6)
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
    assert list(named.segment_label) == ["right_hepatic_vein"] * 3 + [
        "middle_hepatic_vein", "left_hepatic_vein"]


def test_hepatic_naming_of_a_piece_cut_off_by_a_gap():
    """Right, middle and left veins from the wall of an IVC (axis x = y = 0, radius 10 mm)
    and a thick piece beyond a gap on the left vein's line (radius 3.5 mm, 30 mm long, its
    end nearest the IVC 77 mm from the axis, as the vessel stage adopts such pieces). It
    does not drain into the IVC: it takes the left vein's name. Counted as a vein it was a
    fourth major vein, the leftmost, and the left vein was named middle."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.vessel_graph import VesselGraph

    tubes = [_tube((-10.0, 2.0, 0.0), (-70.0, 20.0, 25.0), 4.0),
             _tube((-2.0, 10.0, 0.0), (-10.0, 70.0, 30.0), 3.5),
             _tube((8.0, 6.0, 0.0), (60.0, 40.0, 25.0), 3.5),
             _tube((64.0, 42.0, 27.0), (90.0, 57.0, 35.0), 3.5)]
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                   merge_tol_mm=1e-6)
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
    assert list(named.segment_label) == ["right_hepatic_vein", "middle_hepatic_vein",
                                         "left_hepatic_vein", "left_hepatic_vein"]
    as_vein = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0,
                                 max_ostium_gap_mm=np.inf)
    assert as_vein.segment_label[2] == "middle_hepatic_vein"



def test_hepatic_naming_parts_veins_that_touch_deep_in_the_liver():
    """Phantom 634 at 0.9 mm, traced from the generator's own masks: the middle hepatic
    vein touches a branch of the left vein 63 mm out from the IVC's wall, and its own
    ostium is a free end 0.1 mm from the wall, so the left and middle veins were one tree
    rooted at the left ostium and the contact branch was named middle with the middle vein
    (634: naming 0.84). A free end at the IVC's wall, reached from the root through a path
    running out more than 2.5 ostium radii, is another vein's ostium: the path is cut where
    it lies farthest from the IVC's axis (634: 1.00). Here (IVC axis x = y = 0, radius 10
    mm) the left vein's branch that touches the middle vein stays left; the total length is
    unchanged."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.vessel_graph import VesselGraph

    fork, contact = (35.0, 25.0, 10.0), (0.0, 75.0, 30.0)
    tubes = [_tube((-10.0, 2.0, 0.0), (-70.0, 20.0, 25.0), 4.0),  # right
             _tube((8.0, 6.0, 0.0), fork, 4.0),  # left trunk
             _tube(fork, (70.0, 40.0, 25.0), 3.0),  # left branch
             _tube(fork, contact, 3.0),  # left branch touching the middle vein
             _tube((-2.0, 10.0, 0.0), contact, 3.5)]  # middle vein, its ostium a free end
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                   merge_tol_mm=1e-6)
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
    right, middle, left = "right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein"
    # the contact branch is cut 1 mm short of the contact (its last interior point)
    assert list(named.segment_label) == [right, left, left, left, middle, middle]
    assert np.isclose(named.segment_lengths().sum(), g.segment_lengths().sum())
    assert np.linalg.norm(named.segment_points(3)[-1] - contact) < 1.0

def test_hepatic_naming_parts_a_vein_whose_ostium_was_lost():
    """Phantom 628 at 0.9 mm through the chain: the left hepatic vein's last centimetre was
    lost (its free end 9 mm outside the IVC's wall), so it reached the IVC only through a
    contact with the middle vein, and the middle vein's branch to that contact was named
    left over 101 mm (naming 0.859). A free end within its radius plus
    ``ostium_reach_mm`` (12 mm) of the wall counts as an ostium (628: 1.000; 534 at 2.25 mm:
    0.779 -> 0.998; 628 drawn with the hepatic artery, its free end 11.6 mm out: 0.860 ->
    1.000). Here (IVC axis x = y = 0, radius 10 mm) the left trunk (radius 4 mm) ends 9.4
    or 14.7 mm outside the wall; with ``ostium_reach_mm=0`` (or 10 for the farther end) the
    contact is not cut, and the left trunk is named middle, the middle vein left."""
    for start, short in (((16.0, 11.0, 0.0), 0.0), ((20.4, 14.0, 0.0), 10.0)):
        _check_lost_ostium(start, short)


def _check_lost_ostium(start, short_reach_mm: float):
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.vessel_graph import VesselGraph

    fork, contact = (35.0, 25.0, 10.0), (0.0, 75.0, 30.0)
    tubes = [_tube((-10.0, 2.0, 0.0), (-70.0, 20.0, 25.0), 4.0),  # right
             _tube(start, fork, 4.0),  # left trunk, its ostium lost
             _tube(fork, (70.0, 40.0, 25.0), 3.0),  # left branch
             _tube(fork, contact, 3.0),  # left branch touching the middle vein
             _tube((-2.0, 10.0, 0.0), contact, 3.5)]  # middle vein, from the wall
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                   merge_tol_mm=1e-6)
    right, middle, left = "right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein"
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
    assert list(named.segment_label) == [right, left, left, left, middle, middle]
    assert np.isclose(named.segment_lengths().sum(), g.segment_lengths().sum())
    joined = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0,
                                ostium_reach_mm=short_reach_mm)
    assert list(joined.segment_label) == [right, middle, left, left, left]


def test_hepatic_naming_keeps_a_wide_ostium_split_in_two_tips_whole():
    """Phantom 604 portal venous with the artery through the chain: the thinned mask of a
    5.5 mm hepatic vein ended at the IVC's wall in two tips (radius 1.2 mm, 1.1 and 1.5 mm
    outside the wall) that met 7.3 mm out, in the vein's lumen (radius 3.7 mm there). Taken
    for two veins that touch (the path between the tips ran out more than 2.5 tip radii),
    it was cut there, and the pieces cut off, each running along the wall from one tip,
    were cut again and again at the point farthest out: 14 one-voxel fragments, each its own
    component whose two ends counted as terminal branches (hepatic distal branch richness
    55 terminals against 16). A contact now lies out beyond the farther of the two ends by
    more than 2.5 times the widest radius along the path. Here (IVC axis x = y = 0, radius
    10 mm) the left vein (radius 3.7 mm) ends in two such tips, and a lone piece runs out
    from the wall: the graph is named without a cut. Free ends at the wall are ostia (node
    kind ``root``), not terminal branches: the distal branch richness counts the three
    veins' far ends only (nine before: their ends at the wall, the tips and the piece's)."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.features.liver import terminal_count
    from vasomics.vessel_graph import VesselGraph

    fork = (17.3, 2.0, 0.0)
    tips = [(np.linspace(fork, tip, 8), np.linspace(3.7, 1.2, 8))
            for tip in ((11.0, 5.5, 0.0), (11.5, -3.5, 0.0))]
    tubes = [_tube((-10.0, 2.0, 0.0), (-70.0, 20.0, 25.0), 4.0),  # right
             _tube((-2.0, 10.0, 0.0), (-10.0, 70.0, 30.0), 3.5),  # middle
             _tube((70.0, 40.0, 25.0), fork, 3.7), *tips,  # left, its ostium in two tips
             _tube((-11.0, -7.0, 5.0), (-14.0, -11.0, 8.0), 1.5)]  # a piece along the wall
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                   merge_tol_mm=1e-6)
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
    assert (named.n_nodes, named.n_segments) == (g.n_nodes, g.n_segments)
    assert list(named.segment_label[:5]) == ["right_hepatic_vein", "middle_hepatic_vein"] + [
        "left_hepatic_vein"] * 3
    far = [(-70.0, 20.0, 25.0), (-10.0, 70.0, 30.0), (70.0, 40.0, 25.0)]
    ends = named.node_position[named.node_kind == "endpoint"]
    assert terminal_count(named) == 3 and all(np.min(np.linalg.norm(ends - f, axis=1)) < 1e-6
                                              for f in far)


def test_hepatic_naming_takes_a_vein_cut_off_beyond_the_ostium_gap():
    """Phantoms 554 and 532 at 2.25 mm through the chain: the left hepatic vein ended 32 mm
    outside the IVC's wall, beyond ``max_ostium_gap_mm`` (30), so it counted as a fragment;
    the two veins that reached the IVC, both on its right, were named right and left (a
    common middle / left trunk), and the fragment took the nearest name (554: naming 0.555,
    532: 0.744). When both major veins lie on one side of the IVC's axis, the largest piece
    of a major calibre on the other side is the third vein (554, 532: 1.000). Here (IVC axis
    x = y = 0, radius 10 mm; LPS, +x the patient's left) the left vein's free end lies 32 mm
    outside the wall; a piece cut from the right vein's far end, on the right, stays a
    fragment named after its neighbour."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.vessel_graph import VesselGraph

    tubes = [_tube((-10.0, 2.0, 0.0), (-70.0, 20.0, 25.0), 4.0),  # right
             _tube((-6.0, 8.0, 0.0), (-25.0, 70.0, 30.0), 3.5),  # middle, right of the axis
             _tube((30.0, 30.0, 5.0), (75.0, 45.0, 25.0), 3.5),  # left, its ostium lost
             _tube((-80.0, 25.0, 30.0), (-100.0, 30.0, 40.0), 3.0)]  # cut from the right
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes])
    right, middle, left = "right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein"
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
    assert list(named.segment_label) == [right, middle, left, right]
    within = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=10.0,
                                max_ostium_gap_mm=35.0)  # the left vein drains: the same
    assert list(within.segment_label) == [right, middle, left, right]
    kept = tubes[:2] + tubes[3:]  # no piece on the left side: a common middle / left trunk
    two = name_hepatic_veins(VesselGraph.from_polylines([t[0] for t in kept],
                                                        [t[1] for t in kept]),
                             (0.0, 0.0, -20.0), ivc_radius_mm=10.0)
    assert list(two.segment_label) == [right, left, right]


def test_tracing_and_naming_on_the_generators_vessel_masks():
    """Graph and naming stages on the phantom's own portal and hepatic masks (within the
    chain's 12 mm hilum margin; segmentation, separation and localization taken out), seed
    503, whose trees have no stub branches: naming 1.00 / 1.00, tree length -0.012 / -0.005
    against liver_tree_truth. Over seeds 500-507 (benchmark --truth-vessels --shape 96 160
    160): naming mean 0.959 / 1.000 (the generator's 7-8 mm S3/S4 stubs cannot be traced),
    length median -0.038 / -0.026, range -0.063 to +0.008. Of the 292 mm missing over the
    16 trees (of 10089 mm), 176 mm are real terminal branches (axis 7-14 mm, radius 2.6-3.6
    mm, about 1.2-1.5 voxels) pruned as spurs, 103 mm stubs the thinning leaves no branch
    for, 59 mm tip retraction, -46 mm traced beyond the truth elsewhere (junctions, root
    ends; benchmarks/bench_ct_tree_length_terms.py); at 2.3 mm voxels the pruned branches
    overlap the surface
    bumps and corner branches in length and radius (skeleton branch length 2.2-9.5 mm
    against 2.5-8.6 mm)."""
    import edt

    from vasomics.chain.naming import name_hepatic_veins, name_portal_tree
    from vasomics.chain.run import RunParams, _graph
    from vasomics.phantoms.liver_ct import LABELS
    from vasomics.phantoms.truth import liver_tree_truth, naming_scores

    ct, truth = liver_ct_phantom((96, 160, 160), phase="delayed", seed=503, z_extent_mm=240.0)
    p = RunParams()
    lab, env = truth.labels.array, truth.labels.metadata["liver_envelope"]
    region = edt.edt(~env, anisotropy=ct.spacing) <= p.vessels.hilum_margin_mm
    main = truth.portal.segment_points(
        int(np.nonzero(truth.portal.segment_label == "main_portal_vein")[0][0]))
    root = main[int(np.argmax(region[tuple(np.round(ct.physical_to_index(main)).astype(int).T)]))]
    ivc = ct.index_to_physical(np.argwhere(lab == LABELS["ivc"]).mean(0))[0]
    portal = name_portal_tree(_graph(ct, (lab == LABELS["portal"]) & region, p.graph, root),
                              root)
    hepatic = name_hepatic_veins(_graph(ct, (lab == LABELS["hepatic"]) & region, p.graph,
                                        None), ivc)
    want = liver_tree_truth(truth)
    tol = 1.5 * max(ct.spacing)
    for g, t, scope in ((portal, truth.portal, "vessel:portal_venous_tree"),
                        (hepatic, truth.hepatic, "vessel:hepatic_venous_tree")):
        assert naming_scores(g, t, tol)["accuracy"] >= 0.95
        err = g.segment_lengths().sum() / want[("VX.A.V.TREE_LEN", scope)] - 1
        assert abs(err) <= 0.05, err


def test_trees_of_a_delayed_scan_are_flagged():
    """Delayed phantoms whose trees pass the contrast gate are traced, but their trees read
    short (11 such phantoms of seeds 500-559: hepatic length median -0.26, portal -0.055,
    two portal trees under -0.40): QC warns ``delayed_phase_trees``. Seed 502 traces both
    trees (hepatic -0.09); 505 is refused by the gate and gets no such warning (nothing
    traced: ``vessel_trees`` says why)."""
    from vasomics.chain.run import characterize

    names = {}
    for seed in (502, 505):
        ct, _ = liver_ct_phantom((96, 160, 160), phase="delayed", seed=seed,
                                 z_extent_mm=240.0)
        res = characterize(ct, force=True)
        assert res.phase.phase == "delayed"
        names[seed] = {c.name: c for c in res.qc.checks}
        assert ("delayed_phase_trees" in names[seed]) == bool(res.vessels.hepatic.any()
                                                               or res.vessels.portal.any())
    assert names[502]["delayed_phase_trees"].status == "warn"
    assert "portal venous" in names[502]["delayed_phase_trees"].reason
    assert "delayed_phase_trees" not in names[505] and "vessel_trees" in names[505]


def test_portal_naming_rooted_at_the_main_division():
    """When the traced region cuts the portal trunk at its main division (a liver mask that
    misses the hilum, seed 515 through the chain), the root node has three segments: the
    trunk toward the confluence and the right and left portal veins. All three were named
    main portal vein (its 234 mm against 62 mm true; naming 0.10). The thickest of them,
    carrying less volume than the other two together, is the trunk; the others are the
    division. On the generator's masks of seed 503 rooted at the division: naming 1.00."""
    import edt

    from vasomics.chain.naming import name_portal_tree
    from vasomics.chain.run import RunParams, _graph
    from vasomics.phantoms.liver_ct import LABELS
    from vasomics.phantoms.truth import naming_scores

    ct, truth = liver_ct_phantom((96, 160, 160), phase="delayed", seed=503, z_extent_mm=240.0)
    p = RunParams()
    env = truth.labels.metadata["liver_envelope"]
    region = edt.edt(~env, anisotropy=ct.spacing) <= p.vessels.hilum_margin_mm
    main = truth.portal.segment_points(
        int(np.nonzero(truth.portal.segment_label == "main_portal_vein")[0][0]))
    division = main[-1]
    graph = _graph(ct, (truth.labels.array == LABELS["portal"]) & region, p.graph, None)
    portal = name_portal_tree(graph, division)
    scores = naming_scores(portal, truth.portal, 1.5 * max(ct.spacing))
    assert scores["accuracy"] >= 0.95, scores["confusion"]
    for side in ("right_portal_vein", "left_portal_vein"):
        assert side in set(portal.segment_label)


def test_portal_naming_at_the_division_reads_each_calibre_near_the_root():
    """Phantom 601 with the artery, portal venous, one of three noise draws (160 x 320 x 320):
    the root lay at the main division, and the trunk's first junction toward the confluence
    was not drawn, so its segment ran 11 mm at 6.4 mm radius, then 27 mm of a 2 mm
    tributary: 3.2 mm on median against the right portal vein's 5.5. The right portal vein
    was taken for the trunk and every name below shifted (naming 0.19). Read over the first
    10 mm from the root the trunk is the thickest: right and left portal veins, their
    branches named (601: 1.00)."""
    from vasomics.chain.naming import name_portal_tree
    from vasomics.vessel_graph import VesselGraph

    root = (0.0, 0.0, 0.0)
    trunk_pts = np.concatenate([np.linspace(root, (0.0, 0.0, -11.0), 12),
                                np.linspace((0.0, 0.0, -12.0), (8.0, 0.0, -38.0), 28)])
    trunk_r = np.r_[np.full(12, 6.4), np.full(28, 2.0)]
    tubes = [(trunk_pts, trunk_r),
             _tube(root, (-30.0, 0.0, 5.0), 5.5),  # right portal vein
             _tube((-30.0, 0.0, 5.0), (-60.0, -20.0, 10.0), 4.0),  # right anterior
             _tube((-30.0, 0.0, 5.0), (-60.0, 25.0, 0.0), 4.0),  # right posterior
             _tube(root, (28.0, -10.0, 10.0), 4.8),  # left portal vein
             _tube((28.0, -10.0, 10.0), (45.0, -30.0, 20.0), 3.0),
             _tube((28.0, -10.0, 10.0), (50.0, 5.0, 25.0), 3.0)]
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                   merge_tol_mm=1e-6)
    named = name_portal_tree(g, root)
    by_end = {tuple(np.round(g.segment_points(s)[-1], 1)): named.segment_label[s]
              for s in range(g.n_segments)}
    assert by_end[(8.0, 0.0, -38.0)] == "main_portal_vein"
    assert by_end[(-30.0, 0.0, 5.0)] == "right_portal_vein"
    assert by_end[(28.0, -10.0, 10.0)] == "left_portal_vein"
    assert {by_end[(-60.0, -20.0, 10.0)], by_end[(-60.0, 25.0, 0.0)]} == {
        "right_anterior_portal_vein", "right_posterior_portal_vein"}
    # read over whole segments (the rule before): the right portal vein is the trunk
    whole = name_portal_tree(g, root, root_reach_mm=1e3)
    assert whole.segment_label[int(np.argmin([np.linalg.norm(
        g.segment_points(s)[-1] - (-30.0, 0.0, 5.0)) for s in range(g.n_segments)]))] == (
        "main_portal_vein")


@pytest.mark.xfail(strict=True, reason=(
    "issue #4 targets not reached through the chain. Seeds 501 arterial / 502 portal venous, "
    "scored by phantoms.truth (naming_scores, liver_tree_truth). Session 36 (hepatic roots "
    "against the liver's extent): 502's hepatic length -0.135 -> -0.12, volume -0.054 -> "
    "-0.04, the rest as in session 35: naming portal "
    "1.000 / 0.991, hepatic NaN / 1.000; tree length portal -0.045 / +0.101, hepatic -0.135 "
    "(502); lumen volume portal -0.066 / +0.024, hepatic -0.054; liver volume -0.022 / "
    "-0.015, spleen -0.022 / -0.010. 502's portal tree holds 100 mm of a middle hepatic vein "
    "branch that runs 1 mm beside portal S8 (radii 3.1 / 3.8 mm) over 30 mm: at 2.25-2.5 mm "
    "voxels the two lumens are one in the mask and the portal tree reaches their junction "
    "first (docs/ct_chain.md, known limits, portal veins inside hepatic veins). Session 24 (the liver "
    "followed to its end for its measured extent): liver volume -0.018 / -0.014, the rest "
    "as below. Session 23 (organ borders at "
    "the scan's resolution): liver volume -0.08 / -0.02, spleen -0.02 / -0.02, the rest as "
    "below. 2026-12-04 (sessions 15, 16): "
    "naming portal 0.997 / 0.889, hepatic not enhanced (NaN) / 1.000; tree length portal "
    "-0.04 / -0.21, hepatic +0.04 (502); lumen volume portal -0.05 / -0.05, hepatic +0.06; "
    "liver volume -0.09 / -0.03, spleen -0.03 / -0.03 (502's portal length fell with a "
    "25 mm spur through liver the localized liver missed: unmatched portal length 42 -> 11 "
    "mm, what is left is branches missed or taken by the hepatic tree). Session 14: "
    "naming portal 0.997 / 0.890, hepatic not enhanced (NaN) / 0.995; tree length portal "
    "-0.03 / -0.15, hepatic +0.10 (502); lumen volume portal -0.04 / -0.01, hepatic +0.08; "
    "liver volume -0.09 / -0.03, spleen -0.03 / -0.03. On 2026-12-03: naming portal 0.850 / "
    "0.866, hepatic NaN / 0.994; length portal -0.05 / -0.22, hepatic +0.10; volume portal "
    "-0.07 / -0.14, hepatic +0.07; liver volume -0.10 / -0.07. What is left, measured with "
    "benchmarks/bench_ct_chain_phantoms.py: 502's portal/hepatic swaps at tube crossings "
    "and short terminal branches pruned as spurs keep its portal length outside 5 %, the "
    "arterial liver 501 read 8-9 % small before session 24 (docs/ct_chain_history.md, known limits)"))
def test_chain_on_phantoms_naming_and_tree_features(chain_on_phantoms):
    """Targets: per-segment naming accuracy >= 95 % and tree features within 5 % for every
    tree with contrast in the phase, organ volumes within 5 %."""
    for r in chain_on_phantoms:
        visible = _VISIBLE[r["phase"][1]]
        assert all(r["naming"][k] >= 0.95 for k in visible), r["naming"]
        errors = {k: e for k, e in r["errors"].items() if k[1] == "tree"
                  or k[1].split(":")[1].split("_")[0] in visible}
        assert all(abs(e) <= 0.05 for e in errors.values()), errors


def test_run_on_a_scan_without_the_liver(tmp_path, shared_data, capsys):
    """The thoracic CT angiogram (TotalSegmentator example) does not reach the liver: the
    chain stops with a one-line QC failure naming liver coverage, never a crash or a
    liver measured somewhere else, and still recognizes the arterial phase."""
    cta = (shared_data / "totalsegmentator_examples" / "aorta_report" / "test_result" /
           "models" / "ct_cropped.nii.gz")
    err = _one_line_error(capsys, ["run", str(cta), "-o", str(tmp_path / "cta")])
    assert "quality control" in err and "liver" in err, err
    qc = json.loads((tmp_path / "cta" / "qc.json").read_text())
    assert any(c["name"] == "liver_coverage" and c["status"] == "fail" for c in qc["checks"])
    assert not (tmp_path / "cta" / "vessels.nii.gz").exists()
    # the abdominal atlas cannot place the aorta here: the classical CTA tracker finds it,
    # and its attenuation (375 HU) makes the scan arterial
    phase = json.loads((tmp_path / "cta" / "phase.json").read_text())
    assert phase["phase"] == "arterial" and phase["probabilities"]["arterial"] > 0.9, phase
    assert any("classical CTA tracker" in e for e in phase["evidence"])


def test_portal_trunk_with_a_noise_cavity_keeps_its_segment():
    """Seed 533 (arterial, 96x160x160): noise left a 13-voxel pocket of background enclosed
    in the portal trunk's lumen. Thinned, the pocket became a closed surface and the trunk
    from the inlet to the main division had no segment; the division was then read at the
    root (the left portal vein taken for the trunk) and portal naming fell to 0.11. With
    the trees' enclosed pockets filled the trunk is traced and named: naming 1.00."""
    from vasomics.chain.run import characterize
    from vasomics.phantoms.truth import naming_scores

    ct, truth = liver_ct_phantom((96, 160, 160), phase="arterial", seed=533,
                                 z_extent_mm=240.0)
    res = characterize(ct, force=True)
    scores = naming_scores(res.portal, truth.portal, 1.5 * max(ct.spacing))
    assert scores["accuracy"] >= 0.95, scores["confusion"]


def test_portal_graph_rooted_at_the_traced_trunks_end_without_loops_of_one_lumen():
    """Phantom 622 with the hepatic artery (portal venous, 160 x 320 x 320, the demo's grid).
    The portal trunk is followed 25 mm beyond the inlet face on the region's border, so the
    face's centroid lies inside the trunk: the graph's root, the end nearest it, was a
    1.55 mm branch 17 mm from the hilum (the inlet face is 21 mm from it), kept there
    however short. Rooted at the traced trunk's far end (``roots["portal_trunk_end"]``) the
    root segment is the trunk (5.4 mm), 45 mm from the hilum. Segments returning to their
    own junction within twice the two radii of its other segments (strands around holes of
    one lumen, 1 in the portal graph and 2 in the hepatic one before) are cut."""
    from vasomics.chain.run import characterize

    ct, _ = liver_ct_phantom((160, 320, 320), phase="portal_venous", seed=622,
                             z_extent_mm=240.0, hepatic_artery=True)
    res = characterize(ct, force=True)
    g, roots = res.portal, res.vessels.roots
    hilum = np.asarray(roots["portal_hilum"])
    root = int(np.argmin(np.linalg.norm(g.node_position - roots["portal_trunk_end"], axis=1)))
    assert g.node_kind[root] == "root"
    trunk = int(np.flatnonzero((g.segment_start == root) | (g.segment_end == root))[0])
    assert np.median(g.segment_radius(trunk)) >= 4.0
    assert (np.linalg.norm(g.node_position[root] - hilum)
            > np.linalg.norm(np.asarray(roots["portal"]) - hilum) + 10.0)
    for tree in (res.portal, res.hepatic):
        assert not np.any(tree.segment_start == tree.segment_end)


def test_hepatic_vein_calibre_read_along_the_trunk():
    """Seed 519 (portal venous) through the chain: the right hepatic vein's first segment is
    a few mm of narrowed ostium beside the IVC's mask (median radius 1.7 mm, its trunk 2-3
    mm), so with calibres read on first segments the middle vein (1.5 mm) fell below half
    the widest (the left, 3.2 mm) and was named left with it (naming 0.78). Read along each
    vein's trunk to its first major division: all three veins major, naming 1.00 (seeds
    500-523: mean 0.970 -> 0.988 over 13 traced, and 0.988 / 0.989 at min_caliber 0.4 /
    0.6, where first-segment calibres gave 0.988 / 0.865)."""
    from vasomics.chain.run import characterize
    from vasomics.phantoms.truth import naming_scores

    ct, truth = liver_ct_phantom((96, 160, 160), phase="portal_venous", seed=519,
                                 z_extent_mm=240.0)
    res = characterize(ct, force=True)
    scores = naming_scores(res.hepatic, truth.hepatic, 1.5 * max(ct.spacing))
    assert scores["accuracy"] >= 0.95, scores["confusion"]
    assert {"right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein"} <= set(
        res.hepatic.segment_label)


def test_hepatic_naming_with_a_narrowed_ostium_and_a_thin_read_trunk():
    """Phantom 608 at 0.9 mm (delayed, noisy lumen): all three hepatic veins traced as one
    tree through a 9 mm stem of radius 1.3 mm (the right vein's ostium, narrowed beside the
    IVC's mask) to a hub 4 mm outside the IVC's wall, where the right vein (4.4 mm) and the
    common middle / left trunk (read 1.1 mm on its eroded lumen, though it drains 63 % of
    the tree) meet. Measured from the stem's own radius the hub was a division (2.5 x 1.3
    mm < 4 mm) and the thin-read trunk no major vein: everything was named right (608:
    naming 0.33). The stem's scale is now the widest calibre it divides into, and a vein
    draining at least ``min_share`` of the tree is major whatever its calibre: right,
    middle and left (608: 0.98)."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.vessel_graph import VesselGraph

    hub, fork = (0.0, 13.0, 0.0), (10.0, 38.0, 5.0)
    tubes = [_tube((0.0, 3.0, 0.0), hub, 1.3),  # stem into the IVC (axis x = y = 0, r 9)
             _tube(hub, (-70.0, 20.0, 25.0), 4.4),  # right hepatic vein
             _tube(hub, fork, 1.1),  # middle / left common trunk
             _tube(fork, (-10.0, 90.0, 30.0), 1.5),  # middle
             _tube(fork, (70.0, 60.0, 25.0), 1.5)]  # left
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                   merge_tol_mm=1e-6)
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=9.0)
    assert list(named.segment_label) == ["right_hepatic_vein", "right_hepatic_vein",
                                         "left_hepatic_vein", "middle_hepatic_vein",
                                         "left_hepatic_vein"], named.segment_label


def test_hepatic_naming_middle_vein_trunk_reaching_the_left_vein():
    """Phantom 611 at 0.9 mm (delayed): the middle hepatic vein traced from its ostium as a
    54 mm trunk on the IVC's right that divides into its own branch and the left vein's
    (reached through a contact deeper in the liver; the left vein's ostium not traced). With
    the right vein the only other major vein, the trunk was named as a common middle / left
    trunk, left: 611 hepatic naming 0.84. A trunk whose centerline runs on the IVC's right
    (LPS x below the IVC axis) is the middle vein's: 0.90. A common trunk on the IVC's left
    stays the left vein's (test above)."""
    from vasomics.chain.naming import name_hepatic_veins
    from vasomics.vessel_graph import VesselGraph

    hub, fork = (-6.0, 12.0, 0.0), (-25.0, 55.0, 5.0)
    tubes = [_tube((0.0, 3.0, 0.0), hub, 4.0),  # stem into the IVC (axis x = y = 0, r 9)
             _tube(hub, (-70.0, 20.0, 25.0), 4.4),  # right hepatic vein
             _tube(hub, fork, 3.5),  # middle hepatic vein's trunk
             _tube(fork, (-45.0, 95.0, 20.0), 2.5),  # its own branch
             _tube(fork, (60.0, 60.0, 25.0), 3.0)]  # the left vein, through a contact
    g = VesselGraph.from_polylines([t[0] for t in tubes], [t[1] for t in tubes],
                                   merge_tol_mm=1e-6)
    named = name_hepatic_veins(g, (0.0, 0.0, -20.0), ivc_radius_mm=9.0)
    assert list(named.segment_label[2:]) == ["middle_hepatic_vein", "middle_hepatic_vein",
                                             "left_hepatic_vein"], named.segment_label


#: A portal tree's trunk and right side up to the right posterior vein (LPS mm, +x left,
#: +y posterior, +z superior): ``(name, start, end, radius)`` per straight tube.
_PORTAL_HUB, _PORTAL_POSTERIOR = (0.0, 0.0, 0.0), (-55.0, 20.0, 0.0)
_PORTAL_TRUNK_AND_RIGHT = [
    ("main_portal_vein", (0.0, 0.0, -40.0), _PORTAL_HUB, 6.0),
    ("right_portal_vein", _PORTAL_HUB, (-30.0, 0.0, 5.0), 5.0),
    ("right_anterior_portal_vein", (-30.0, 0.0, 5.0), (-50.0, -20.0, 10.0), 4.0),
    ("portal_S5", (-50.0, -20.0, 10.0), (-60.0, -30.0, -20.0), 3.0),
    ("portal_S8", (-50.0, -20.0, 10.0), (-55.0, -25.0, 40.0), 3.0),
    ("right_posterior_portal_vein", (-30.0, 0.0, 5.0), _PORTAL_POSTERIOR, 4.0)]


def _named_tubes_graph(tubes):
    """The graph of ``(name, start, end, radius)`` tubes joined where their ends meet."""
    from vasomics.vessel_graph import VesselGraph

    made = [_tube(a, b, r) for _, a, b, r in tubes]
    return VesselGraph.from_polylines([t[0] for t in made], [t[1] for t in made],
                                      merge_tol_mm=1e-6)


def test_portal_naming_segmental_branches_leaving_one_lumen():
    """Phantoms 619 and 631 at 0.9 mm through the chain: two segmental branches leave the
    dividing vein from one lumen, which the thinning draws as a 2-3 mm stem. 619: S3 and
    S4 at the left portal vein, whose division then held the stem (named S4, S3 with it)
    and S2 (divided once more into S2 / S3): naming 0.886. 631: S6 and S7 at the right
    posterior vein, whose division held a small S6 branch and the stem (the superior one,
    S7, the main S6 branch with it): 0.918. A branch whose own division lies within
    ``branch_stem_factor`` (1.0) radii of the dividing vein from it is part of the
    division: both 1.000, 500-523 and 600-635 otherwise unchanged from the chain's and the
    generator's masks. Here (LPS mm, +x left, +y posterior, +z superior) the stems are
    2.8 mm (left portal vein radius 4.5 mm) and 2.4 mm (right posterior 4.0 mm) long. The
    left portal vein's division in two is also read right without the merge, by its two
    readings (``test_portal_naming_left_portal_vein_dividing_in_two``)."""
    from vasomics.chain.naming import name_portal_tree

    hub, post = _PORTAL_HUB, _PORTAL_POSTERIOR
    left, stem, post_stem = (25.0, -10.0, 5.0), (27.0, -12.0, 5.0), (-57.0, 21.0, -1.0)
    tubes = _PORTAL_TRUNK_AND_RIGHT + [
             ("portal_S6", post, (-70.0, 25.0, -30.0), 2.5),  # a small S6 branch
             ("right_posterior_portal_vein", post, post_stem, 4.0),  # the stem
             ("portal_S6", post_stem, (-80.0, 30.0, -35.0), 3.0),
             ("portal_S7", post_stem, (-80.0, 35.0, 30.0), 3.0),
             ("left_portal_vein", hub, left, 4.5),
             ("left_portal_vein", left, stem, 4.0),  # the stem
             ("portal_S4", stem, (5.0, -45.0, 0.0), 3.0),
             ("portal_S3", stem, (50.0, -40.0, -15.0), 3.0),
             ("portal_S2", left, (55.0, 10.0, 25.0), 3.0)]
    g = _named_tubes_graph(tubes)
    assert g.n_segments == len(tubes)
    truth = [t[0] for t in tubes]
    assert list(name_portal_tree(g, (0.0, 0.0, -40.0)).segment_label) == truth
    unmerged = list(name_portal_tree(g, (0.0, 0.0, -40.0),
                                     branch_stem_factor=None).segment_label)
    assert unmerged[8] == "portal_S7", unmerged  # the superior stem took S6's name
    assert unmerged[10:] == truth[10:], unmerged  # the left side: two readings (test below)


@pytest.mark.parametrize("shared", ["S3 and S4", "S2 and S3"])
def test_portal_naming_left_portal_vein_dividing_in_two(shared):
    """Phantom 604 through the chain (160x320x320, two of three noise draws): the left
    portal vein's three segmental branches were drawn as two, S3 leaving S4's branch 7-12 mm
    from the division, beyond ``branch_stem_factor`` radii. Read as S2 and S3 sharing a
    stem, S4 took S3 and the left portal vein ran on into S2 (naming 0.88 / 0.84). Of the
    two readings the one whose segments lie most clearly apart is kept, whichever pair
    shares the stem, and the stem stays ``left_portal_vein``. Here (LPS mm, +x left, +y
    posterior, +z superior) the stem is 9.6 mm long, the left portal vein's radius 4.5 mm."""
    from vasomics.chain.naming import name_portal_tree

    left = (25.0, -10.0, 5.0)
    ends = {"portal_S2": (55.0, 10.0, 25.0), "portal_S3": (50.0, -40.0, -15.0),
            "portal_S4": (5.0, -45.0, 0.0)}
    stem = (30.0, -18.0, 3.0) if shared == "S3 and S4" else (34.0, -12.0, 3.0)
    pair = {"portal_" + s for s in shared.split(" and ")}
    tubes = _PORTAL_TRUNK_AND_RIGHT + [
        ("right_posterior_portal_vein", _PORTAL_POSTERIOR, (-80.0, 30.0, 0.0), 3.5),
        ("left_portal_vein", _PORTAL_HUB, left, 4.5),
        ("left_portal_vein", left, stem, 4.0)]
    tubes += [(n, stem if n in pair else left, e, 3.0) for n, e in ends.items()]
    g = _named_tubes_graph(tubes)
    assert g.n_segments == len(tubes)
    names = list(name_portal_tree(g, (0.0, 0.0, -40.0)).segment_label)
    assert names == [t[0] for t in tubes], names


def test_portal_naming_with_a_left_portal_vein_that_lost_branches():
    """Phantom 543 through the chain: the hepatic tree took S2 and S4 at a contact, so the
    left portal vein (with S3 only) carried 0.148 of the volume at the main division, under
    ``min_share`` (0.15); the division was read at the right portal vein's, every name
    below shifted (naming 0.24). A child of at least ``left_share`` (0.10) heading 10 mm or
    more to the patient's left while the largest heads as far right marks the main
    division: 0.94. Here (LPS mm, +x left) the left portal vein with S3 carries 0.13 of the
    volume."""
    from vasomics.chain.naming import name_portal_tree

    hub, post, left = _PORTAL_HUB, _PORTAL_POSTERIOR, (20.0, -10.0, 5.0)
    tubes = _PORTAL_TRUNK_AND_RIGHT + [
             ("portal_S6", post, (-70.0, 25.0, -30.0), 3.0),
             ("portal_S7", post, (-75.0, 30.0, 30.0), 3.0),
             ("left_portal_vein", hub, left, 3.0),
             ("left_portal_vein", left, (45.0, -30.0, -10.0), 2.5)]  # S3 runs on
    g = _named_tubes_graph(tubes)
    volume = [np.pi * r ** 2 * np.linalg.norm(np.subtract(b, a)) for _, a, b, r in tubes]
    share = sum(volume[8:]) / sum(volume[1:])
    assert 0.10 < share < 0.15, share
    names = list(name_portal_tree(g, (0.0, 0.0, -40.0)).segment_label)
    assert names[:8] == [t[0] for t in tubes[:8]]
    assert set(names[8:]) == {"left_portal_vein"}
    old = list(name_portal_tree(g, (0.0, 0.0, -40.0), left_share=1.0).segment_label)
    assert old[1] == "main_portal_vein", old  # the division read at the right portal vein's


def test_run_on_a_ct_with_nan_slices(tmp_path, shared_data, capsys):
    """NaN slices (a corrupt or masked export): one line naming the file and the NaN count,
    exit 2; with --force the NaN voxels are read as air and the chain runs to the end."""
    ct = read_image(shared_data / "totalsegmentator_examples" / "example_ct_sm.nii.gz")
    a = ct.array.astype(np.float32)
    a[10:12] = np.nan
    path = write_image(ct.with_array(a), tmp_path / "nan_ct.nii.gz")
    err = _one_line_error(capsys, ["run", str(path), "-o", str(tmp_path / "o")])
    assert "nan_ct.nii.gz" in err and "24644 NaN" in err, err
    assert main(["run", str(path), "-o", str(tmp_path / "f"), "--force"]) == 0
    assert (tmp_path / "f" / "summary.html").is_file()
