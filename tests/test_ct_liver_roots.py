"""Root selection of the liver's venous trees (vasomics.chain.liver_roots) on liver CT
phantoms whose liver mask misses the hilum, as atlas-localized livers do."""

import edt
import numpy as np
import pytest

from vasomics.chain.liver_roots import LiverRootParams, top_contacts
from vasomics.chain.liver_vessels import segment_liver_vessels
from vasomics.chain.phase import measure_regions
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom, truth_organs


def _axis(truth, name):
    t = truth.portal if "portal" in name else truth.hepatic
    return np.concatenate([t.segment_points(s) for s in np.nonzero(t.segment_label == name)[0]])


@pytest.mark.parametrize("seed, phase", [(501, "arterial"), (502, "portal_venous")])
def test_portal_root_on_the_trunk_when_the_liver_misses_the_hilum(seed, phase):
    """The truth liver with everything within 30 mm of the main portal vein's division cut
    away, and a confluence landmark 40 mm above the truth confluence (the atlas's error on
    these phantoms): the portal root voxel and the trunk's inlet lie on the main portal
    vein's axis (measured: 1.9 / 0.4 mm for 501, 0.6 / 0.2 mm for 502; the vessel stage of
    7d0710e, thickest vessel inside the liver, gave 30.7 / 20.0 mm for 501: a right portal
    branch). The hepatic root (portal venous phase) is a point on the IVC's axis at the
    dome, above the liver's median height."""
    ct, truth = liver_ct_phantom((96, 160, 160), phase=phase, seed=seed, z_extent_mm=240.0)
    organs = truth_organs(truth)
    main = _axis(truth, "main_portal_vein")
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in ct.shape], indexing="ij"), -1)
    near = np.linalg.norm(ct.index_to_physical(grid.reshape(-1, 3)) - main[-1],
                          axis=1).reshape(ct.shape) <= 30.0
    organs["liver"] = organs["liver"] & ~near
    hu = measure_regions(ct, organs, 2.0)
    ves = segment_liver_vessels(ct, organs, hu, truth.noise_sd_hu, main[0] + [0, 0, 40.0])
    for key in ("portal_hilum", "portal"):
        err = np.min(np.linalg.norm(main - ves.roots[key], axis=1))
        assert err <= 5.0, (key, err)
    if phase == "portal_venous":
        ivc = truth.labels.array == LABELS["ivc"]
        depth = edt.edt(ivc, anisotropy=ct.spacing)  # mm inside the IVC
        idx = tuple(np.round(ct.physical_to_index(np.asarray([ves.roots["hepatic"]]))[0])
                    .astype(int))
        assert depth[idx] >= 4.0, depth[idx]  # inside, near the axis
        liver_z = ct.index_to_physical(np.argwhere(truth.mask("liver"))[::50])[:, 2]
        assert ves.roots["hepatic"][2] > np.median(liver_z)


def test_hepatic_roots_are_the_highest_ivc_contacts():
    """Contacts on slices within hepatic_band_mm below the highest one are kept, lower ones
    (the portal trunk in front of the IVC) dropped."""
    contacts = np.zeros((10, 4, 4), bool)
    contacts[[1, 5, 8, 9], 2, 2] = True
    z = np.arange(10) * 5.0  # mm, slice 9 highest
    kept = top_contacts(contacts, z, LiverRootParams(hepatic_band_mm=15.0))
    assert np.nonzero(kept.any(axis=(1, 2)))[0].tolist() == [8, 9]
    assert not top_contacts(np.zeros_like(contacts), z, LiverRootParams()).any()


def _hepatic_scene(seed: int):
    """A portal venous phantom at 96 x 160 x 160 (240 mm of z): the image, its truth, the
    truth organs, the hepatic veins' label and each voxel's distance (mm) to the IVC label."""
    ct, truth = liver_ct_phantom((96, 160, 160), phase="portal_venous", seed=seed,
                                 z_extent_mm=240.0)
    organs = truth_organs(truth)
    veins = truth.labels.array == LABELS["hepatic"]
    to_ivc = edt.edt(~organs["ivc"], anisotropy=ct.spacing)  # mm
    return ct, truth, organs, veins, to_ivc


def test_hepatic_vein_trunk_in_the_ivc_mask_stays_hepatic():
    """An IVC mask that also takes the hepatic veins' trunks within 6 mm of the IVC (as the
    localized IVC of phantom 510 took its left vein's trunk): the part of those trunks
    farther than 3 mm from the IVC's wall, inside the liver, is traced as hepatic vein, not
    cut out with the IVC (which left the vein a hollow rim traced as thin loops; measured
    36 of 45 voxels, 0 before; naming of 510's hepatic veins through the chain 0.68 ->
    1.00)."""
    ct, truth, organs, veins, to_ivc = _hepatic_scene(510)
    ivc = organs["ivc"]
    trunks = veins & (to_ivc <= 6.0)
    organs["ivc"] = ivc | trunks
    ves = segment_liver_vessels(ct, organs, measure_regions(ct, organs, 2.0),
                                truth.noise_sd_hu)
    far = trunks & (to_ivc > 3.0) & organs["liver"]
    assert far.sum() >= 30
    assert np.count_nonzero(ves.hepatic & far) >= 0.7 * far.sum()


def test_hepatic_roots_found_where_the_liver_stops_short_of_the_ivc():
    """The chain's searched liver can stop well short of the IVC at the dome, and its
    measured extent a few mm short (phantom 603 at 160 x 320 x 320, one noise draw of three,
    on the left hepatic vein's ostium slices: 14-26 mm and 4-8 mm). The hepatic roots'
    slices ended where the searched liver last came within 3.5 mm of the IVC, below the
    ostia, and the portal tree took the veins through a contact (603 through the chain:
    hepatic length -0.67). They are now found against the extent too, and run on above
    while the IVC lies within the hilum margin of the liver. This scene: the search region
    25 mm and the extent 6 mm short of the IVC from the ostia up (measured: hepatic tree
    0.30 of the veins' voxels, portal 0.40 before; 0.62 / 0.29 without the extent; 0.90 /
    0.01)."""
    ct, truth, organs, veins, to_ivc = _hepatic_scene(604)
    ostia = np.nonzero((veins & (to_ivc <= 3.0)).any(axis=(1, 2)))[0]
    upper = (np.arange(veins.shape[0]) >= ostia.min() - 2)[:, None, None]
    searched = organs["liver"] & ~((to_ivc <= 25.0) & upper)
    extent = organs["liver"] & ~((to_ivc <= 6.0) & upper)
    cut = {**organs, "liver": searched}
    ves = segment_liver_vessels(ct, cut, measure_regions(ct, cut), truth.noise_sd_hu,
                                liver_extent=extent)
    assert ves.status == "ok"
    assert ves.hepatic[veins].mean() >= 0.85
    assert ves.portal[veins].mean() <= 0.05


def test_masks_off_the_image_grid_are_refused():
    """An organ mask or liver extent of another shape than the image is a one-line input
    error naming the mask, not an index error deep in the stage."""
    from vasomics.errors import InputError

    ct, truth = liver_ct_phantom((40, 64, 64), phase="portal_venous", seed=3)
    organs = truth_organs(truth)
    hu = measure_regions(ct, organs)
    with pytest.raises(InputError, match="'liver_extent' has shape"):
        segment_liver_vessels(ct, organs, hu, truth.noise_sd_hu,
                              liver_extent=organs["liver"][1:])
    with pytest.raises(InputError, match="'ivc' has shape"):
        segment_liver_vessels(ct, {**organs, "ivc": organs["ivc"][:, 1:]}, hu,
                              truth.noise_sd_hu)
