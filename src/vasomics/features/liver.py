"""Liver vasomics: features of the portal and hepatic venous trees in their organ context
(the portal hypertension use case), computed by the CT chain (:mod:`vasomics.chain.run`).

Scopes: ``tree`` (the scan), ``vessel:portal_venous_tree`` and ``vessel:hepatic_venous_tree``
(one venous tree each), ``vessel:hepatic_arterial_tree`` (the hepatic artery, traced in the
arterial phase only: NaN in the others), ``vessel:<anatomical name>`` (named vessels).
Volumes in mL are voxel counts × voxel volume / 1000; lengths from the named centerline
graphs (LPS mm). A tree's length and volume (and the fractions, densities and ratio drawn
from them) count the part of the tree within the liver and its hilum: the measured liver
(the mask of ``VX.A.T.LIVER_VOL``) dilated by ``hilum_margin_mm`` (:func:`hilum_scope`), the
region the liver's trees are traced in. The graphs themselves run farther (the portal trunk
toward the confluence, the artery from the coeliac trunk), for naming.

* ``VX.A.T.LIVER_VOL``, ``VX.A.T.SPLEEN_VOL`` (mL); ``VX.P.T.LIVER_SPLEEN_RATIO`` (1).
* per tree: ``VX.A.V.TREE_LEN`` (total centerline length, mm), ``VX.A.V.TREE_VOL`` (lumen
  voxel volume, mL), ``VX.A.V.VESSEL_VOLUME_FRACTION`` (lumen volume / liver volume, fraction 1),
  ``VX.A.V.LENGTH_DENSITY`` (length / liver volume, mm/mm³ = mm⁻²), ``VX.P.V.DISTAL_RICHNESS``
  (terminal branches per litre of liver), ``VX.M.V.MURRAY_DEV`` (median over bifurcations of
  Σ r_d³ / r_p³ − 1, segment median radii), ``VX.C.V.LUMEN_HU`` (median lumen HU),
  ``VX.C.V.CNR`` ((lumen − liver parenchyma HU) / noise SD);
* ``VX.A.V.HILAR_STRAIGHTNESS`` (main portal vein: chord / centerline length of its stem,
  from its upstream end to the first division, 1 = straight);
* ``VX.A.V.NAMED_DIAMETER`` per named vessel (2 × length-weighted median radius over its
  stem, :func:`named_stem`, or its trunk, :func:`named_trunk`, mm);
* ``VX.X.T.PORTAL_HEPATIC_VOL_RATIO`` (portal / hepatic lumen volume);
  ``VX.C.T.PV_AORTA_RATIO`` (median HU of the main portal vein's lumen core,
  :func:`portal_vein_hu`, or of a trusted localized portal vein's core, over that of the
  localized aorta's core, :func:`core_hu`)."""

from __future__ import annotations

import numpy as np

from vasomics.features.centerline import resample
from vasomics.features.maskbased import length_inside
from vasomics.features.table import FeatureTable
from vasomics.image import Image
from vasomics.vessel_graph import VesselGraph

TREES = {"portal": "vessel:portal_venous_tree", "hepatic": "vessel:hepatic_venous_tree",
         "artery": "vessel:hepatic_arterial_tree"}

#: Catalogue ids computed here. They need the organ context of the CT chain (catalogue
#: requirement ``organs``), which a single-graph extraction does not have, so
#: :func:`compute` adds nothing there; :func:`liver_features` computes them.
PROVIDES = ("VX.A.T.LIVER_VOL", "VX.A.T.SPLEEN_VOL", "VX.P.T.LIVER_SPLEEN_RATIO",
            "VX.A.V.TREE_LEN", "VX.A.V.TREE_VOL", "VX.A.V.VESSEL_VOLUME_FRACTION",
            "VX.A.V.LENGTH_DENSITY", "VX.P.V.DISTAL_RICHNESS", "VX.M.V.MURRAY_DEV",
            "VX.C.V.LUMEN_HU", "VX.C.V.CNR", "VX.A.V.HILAR_STRAIGHTNESS",
            "VX.A.V.NAMED_DIAMETER", "VX.X.T.PORTAL_HEPATIC_VOL_RATIO", "VX.C.T.PV_AORTA_RATIO")


def compute(ctx) -> dict:
    """Extractor hook (:data:`vasomics.features.extract.MODULES`): nothing without organs."""
    return {}


def murray_deviation(graph: VesselGraph) -> float:
    """Median over bifurcation nodes of Σ r_d³ / r_p³ − 1 (segment median radii; the parent is
    the widest segment at the node). 0 for a Murray-optimal tree; NaN without bifurcations."""
    ends = np.concatenate([graph.segment_start, graph.segment_end])
    segs = np.concatenate([np.arange(graph.n_segments)] * 2)
    r = np.array([np.median(graph.segment_radius(s)) for s in range(graph.n_segments)])
    dev = []
    for node in np.nonzero(graph.node_degree() >= 3)[0]:
        rs = np.sort(r[segs[ends == node]])[::-1]
        dev.append(float(np.sum(rs[1:] ** 3) / rs[0] ** 3 - 1.0))
    return float(np.median(dev)) if dev else float("nan")


def terminal_count(graph: VesselGraph) -> int:
    """Endpoints other than the root."""
    return int(np.sum(graph.node_kind == "endpoint"))


def hilar_straightness(graph: VesselGraph) -> float:
    """Chord over centerline length of the main portal vein's stem (:func:`named_stem`: from
    its upstream end to its division, or to its farthest end when it does not divide), NaN
    when the tree has no such vessel or its graph no ``root`` node to read it from."""
    stem = named_stem(graph, "main_portal_vein", to_end=True)
    if not stem:
        return float("nan")
    pts = np.concatenate([graph.segment_points(s)[:: 1 if forward else -1]
                          for s, forward in stem])
    length = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
    return float(np.linalg.norm(pts[-1] - pts[0]) / length) if length > 0 else float("nan")


def portal_vein_hu(image: Image, portal_mask: np.ndarray, graph: VesselGraph | None
                   ) -> float:
    """Median HU of the main portal vein's lumen core: the voxels of ``portal_mask`` within
    half the local radius (at least the coarsest voxel) of the centerline of its stem
    (:func:`named_stem`, from its upstream end to its division), or of all the segments
    named ``main_portal_vein`` when the graph has no root to read a stem from. The core
    keeps the partial volume of the lumen's edge out. NaN when ``graph`` names no main
    portal vein or no mask voxel lies in its core."""
    if graph is None:
        return float("nan")
    stem = named_stem(graph, "main_portal_vein", to_end=True)
    segs = ([s for s, _ in stem] if stem
            else np.flatnonzero(graph.segment_label == "main_portal_vein").tolist())
    if not segs:
        return float("nan")
    spacing = np.asarray(image.spacing, float)
    axis = np.concatenate([image.physical_to_index(graph.segment_points(s)) for s in segs])
    reach = np.maximum(0.5 * np.concatenate([graph.segment_radius(s) for s in segs]),
                       float(spacing.max()))  # mm
    pad = np.ceil(reach.max() / spacing).astype(int)
    lo = np.maximum(np.floor(axis.min(0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(axis.max(0)).astype(int) + pad + 1, portal_mask.shape)
    if np.any(hi <= lo):
        return float("nan")
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    vox = np.argwhere(portal_mask[box]) + lo
    if len(vox) == 0:
        return float("nan")
    from scipy.spatial import cKDTree

    d, j = cKDTree(axis * spacing).query(vox * spacing)
    core = vox[d <= reach[j]]
    return float(np.median(image.array[tuple(core.T)])) if len(core) else float("nan")


def core_hu(image: Image, mask: np.ndarray) -> float:
    """Median HU of a lumen mask's core: its voxels at least half its greatest depth (the
    distance to its edge, mm) from the edge, which keeps the partial volume of the edge and
    a wall or neighbour the mask took in out of the reading. NaN for an empty mask."""
    import edt
    from scipy import ndimage

    if not mask.any():
        return float("nan")
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    sub = mask[box]
    depth = edt.edt(np.pad(sub, 1), anisotropy=image.spacing)[(slice(1, -1),) * sub.ndim]
    return float(np.median(image.array[box][depth >= 0.5 * depth.max()]))


def _paths_from_root(graph: VesselGraph):
    """Shortest arc-length paths from the graph's ``root`` node(s) (Dijkstra): each reached
    node's distance (mm), the ``(node, segment)`` it is reached through, and the
    ``(segment, other node)`` pairs at every node."""
    import heapq
    from collections import defaultdict

    lengths = graph.segment_lengths()
    incident: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, (a, b) in enumerate(zip(graph.segment_start.tolist(), graph.segment_end.tolist(),
                                   strict=True)):
        incident[a].append((s, b))
        incident[b].append((s, a))
    dist = {int(r): 0.0 for r in np.flatnonzero(graph.node_kind == "root")}
    via: dict[int, tuple[int, int]] = {}
    heap = [(0.0, n) for n in dist]
    while heap:
        d, n = heapq.heappop(heap)
        if d > dist[n]:
            continue
        for s, m in incident[n]:
            if d + lengths[s] < dist.get(m, np.inf):
                dist[m], via[m] = d + lengths[s], (n, s)
                heapq.heappush(heap, (dist[m], m))
    return dist, via, incident


def named_stem(graph: VesselGraph, name: str, *, to_end: bool = False,
               paths=None) -> list[tuple[int, bool]] | None:
    """The stem of the vessel named ``name``: its segments on the graph's shortest path from
    the root to the node, among those where a differently named vessel leaves it, farthest
    along that path (the main portal vein's division; with ``to_end``, when none leaves it,
    its farthest node), as ``(segment, forward)`` in order from its upstream end
    (``forward``: the segment's points run downstream). Side segments carrying its name
    (strands along a thick lumen, corner branches that thinning leaves where it bends, an
    artery's remnants beside it) are not on it. None without a root, without such a node,
    or when the name is absent. ``paths``: :func:`_paths_from_root` of the graph, reused."""
    dist, via, incident = paths or _paths_from_root(graph)
    own = graph.segment_label == name
    nodes = {int(n) for s in np.flatnonzero(own)
             for n in (graph.segment_start[s], graph.segment_end[s])} & dist.keys()
    if not nodes:
        return None
    entry = min(nodes, key=dist.__getitem__)
    ends = [n for n in nodes if n != entry
            and any(graph.segment_label[s] not in (name, "") for s, _ in incident[n])]
    if not ends and to_end:
        ends = [n for n in nodes if n != entry]
    if not ends:
        return None
    node, stem = max(ends, key=dist.__getitem__), []
    while node != entry and node in via:
        prev, s = via[node]
        if own[s]:
            stem.append((s, int(graph.segment_start[s]) == prev))
        node = prev
    return stem[::-1] or None


#: A trunk ends where two or more branches each carry at least this share of the volume
#: downstream (:func:`named_trunk`; the hepatic veins' calibre in their naming walks the
#: same trunk, :func:`vasomics.chain.naming.tree.trunk`).
TRUNK_MIN_SHARE = 0.15


def named_trunk(graph: VesselGraph, name: str, paths=None) -> list[int] | None:
    """The trunk of the vessel named ``name`` that no differently named vessel leaves (a
    hepatic vein, a segmental portal branch): from its upstream end down its largest branch
    (by tubular volume downstream) to its first major division, where two or more branches
    each carry at least :data:`TRUNK_MIN_SHARE` of it (the end of its last segment when it
    has none), walked over the vessel's own segments. Its upstream end is the node nearest
    the graph's root(s) of the vessel's piece that carries the most volume (a gap can cut a
    vessel into pieces, each entered from the root's side, and a piece can touch another
    vessel). Segment indices in order from upstream; None when the name is absent or no
    root reaches it. ``paths``: :func:`_paths_from_root` of the graph, reused."""
    from vasomics.chain.naming.tree import rooted_tree, trunk

    dist, via, _ = paths or _paths_from_root(graph)
    own = graph.segment_label == name
    nodes = {int(n) for s in np.flatnonzero(own)
             for n in (graph.segment_start[s], graph.segment_end[s])} & dist.keys()
    entries = [n for n in nodes if n not in via or not own[via[n][1]]]
    best = None
    for n in entries:
        tree = rooted_tree(graph, n, own)
        for first in tree.first:
            if best is None or tree.weight[first] > best[0].weight[best[1]]:
                best = (tree, first)
    return None if best is None else trunk(best[0], best[1], TRUNK_MIN_SHARE)[0]


def named_diameters(graph: VesselGraph) -> dict[str, float]:
    """2 × length-weighted median radius (mm) per anatomical name, over the vessel's stem
    (:func:`named_stem`) or, when it has none or it carries less tubular volume (π × median
    radius² × length, summed over its segments) than the vessel's largest segment (a stem
    to a contact with another vessel, or entered from a thin tip that was taken for a root,
    such as a hepatic vein's side branch ending at the IVC's wall), its trunk
    (:func:`named_trunk`), or, when that carries less either (a trunk entered from a
    peripheral end, where the vessel's mouth is a hub of short pieces without a free end),
    that largest segment alone: each centerline point weighted by the arc length to the
    next point of its own segment. Read over all its segments, a vessel's diameter fell
    with every thin branch the scan resolved (hepatic veins 35-45 % low on the
    repeatability phantoms)."""
    out = {}
    paths = _paths_from_root(graph)
    lengths = graph.segment_lengths()
    volume = np.array([float(np.median(graph.segment_radius(s))) ** 2 * lengths[s]
                       for s in range(graph.n_segments)])  # tubular volume / π, mm³
    for name in sorted(set(graph.segment_label.tolist()) - {""}):
        own = np.flatnonzero(graph.segment_label == name)
        largest = int(own[np.argmax(volume[own])])
        segs = [s for s, _ in named_stem(graph, name, paths=paths) or []]
        if volume[segs].sum() < volume[largest]:
            segs = named_trunk(graph, name, paths) or []
        if volume[segs].sum() < volume[largest]:
            segs = [largest]
        r = np.concatenate([graph.segment_radius(s) for s in segs])
        w = np.concatenate([np.r_[np.linalg.norm(np.diff(graph.segment_points(s), axis=0),
                                                 axis=1), 0.0] for s in segs]) + 1e-9
        order = np.argsort(r)
        cum = np.cumsum(w[order])
        out[name] = float(2 * r[order][np.searchsorted(cum, 0.5 * cum[-1])])
    return out


def _per(amount: float, size: float) -> float:
    """``amount / size``, NaN for an empty or unmeasured liver (``size`` 0 or NaN)."""
    return amount / size if size > 0 else float("nan")


#: Resampling step (mm) of a tree's centerline when its length inside the scope is counted.
SCOPE_STEP_MM = 0.25


def hilum_scope(liver: np.ndarray, spacing, margin_mm: float, around: np.ndarray) -> np.ndarray:
    """The liver and its hilum: the ``liver`` mask and the voxels within ``margin_mm`` (mm,
    Euclidean, anisotropic ``spacing``) of it. Outside the liver it is evaluated on the
    bounding box of ``around``'s voxels outside the liver (the trees' trunk and ostia) grown
    by two voxels, ``False`` beyond it; the distance map is computed on that box padded by
    the margin, so it is exact there."""
    import edt

    out = liver.copy()
    outside = around & ~liver
    if not outside.any() or not liver.any():
        return out
    shape = np.asarray(liver.shape)
    nz = np.nonzero(outside)
    lo = np.maximum([int(ix.min()) - 2 for ix in nz], 0)
    hi = np.minimum([int(ix.max()) + 3 for ix in nz], shape)
    pad = np.ceil(margin_mm / np.asarray(spacing, float)).astype(int) + 1
    clo, chi = np.maximum(lo - pad, 0), np.minimum(hi + pad, shape)
    crop = tuple(slice(a, b) for a, b in zip(clo, chi, strict=True))
    near = edt.edt(~liver[crop], anisotropy=tuple(spacing), parallel=2) <= margin_mm
    inner = tuple(slice(a - c, b - c) for a, b, c in zip(lo, hi, clo, strict=True))
    out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] |= near[inner]
    return out


def liver_features(image: Image, organs: dict[str, np.ndarray], portal_mask: np.ndarray,
                   hepatic_mask: np.ndarray, portal: VesselGraph | None,
                   hepatic: VesselGraph | None, noise_sd_hu: float, *,
                   artery_mask: np.ndarray | None = None,
                   artery: VesselGraph | None = None,
                   hilum_margin_mm: float = 12.0) -> FeatureTable:
    """All liver vasomics features of one scan (see the module docstring). With
    ``artery_mask`` (empty when the artery was not traced or not applicable: NaN rows), the
    per-tree features of the hepatic arterial tree ``artery`` too. ``hilum_margin_mm``: the
    scope of the trees' length and volume, the liver dilated by this margin (the chain passes
    its vessel stage's ``hilum_margin_mm``); without a liver mask they are NaN.
    ``organs["portal_vein"]`` (optional): a localized portal vein the caller trusts, whose
    core (:func:`core_hu`) stands for the portal blood when ``portal`` names no main portal
    vein."""
    vox_ml = image.voxel_volume / 1000.0
    a = image.array
    rec = []
    liver = organs.get("liver")
    liver_ml = float(np.count_nonzero(liver)) * vox_ml if liver is not None else float("nan")
    spleen_ml = float(np.count_nonzero(organs.get("spleen", np.zeros(1, bool)))) * vox_ml
    rec += [("tree", "VX.A.T.LIVER_VOL", liver_ml, "mL"),
            ("tree", "VX.A.T.SPLEEN_VOL", spleen_ml, "mL"),
            ("tree", "VX.P.T.LIVER_SPLEEN_RATIO",
             liver_ml / spleen_ml if spleen_ml > 0 else float("nan"), "1")]
    lumen_masks = portal_mask | hepatic_mask
    if artery_mask is not None:
        lumen_masks = lumen_masks | artery_mask
    liver_hu = float(np.median(a[liver & ~lumen_masks])) \
        if liver is not None and liver.any() else float("nan")
    vols = {}
    trees = [("portal", portal_mask, portal), ("hepatic", hepatic_mask, hepatic)]
    if artery_mask is not None:
        trees.append(("artery", artery_mask, artery))
    scope = (hilum_scope(liver, image.spacing, hilum_margin_mm, lumen_masks)
             if liver_ml > 0 else None)  # no liver, no scope: the trees are not measured
    for key, mask, graph in trees:
        # a tree that was not found (not traced, its root missing, or a mask too small for
        # a centerline graph) is not measured: every feature NaN, never 0 and never a
        # volume without a length, so a failed tracing cannot pass for a vanished tree
        traced = graph is not None and bool(mask.any())
        nan = float("nan")
        scoped = traced and scope is not None
        vol = float(np.count_nonzero(mask & scope)) * vox_ml if scoped else nan
        vols[key] = vol
        length = (length_inside(resample(graph, SCOPE_STEP_MM), image, scope) if scoped
                  else nan)
        terminals = terminal_count(graph) if traced else nan
        lumen = float(np.median(a[mask])) if traced else nan
        tree = TREES[key]
        rec += [
            (tree, "VX.A.V.TREE_LEN", length, "mm"),
            (tree, "VX.A.V.TREE_VOL", vol, "mL"),
            (tree, "VX.A.V.VESSEL_VOLUME_FRACTION", _per(vol, liver_ml), "1"),
            (tree, "VX.A.V.LENGTH_DENSITY", _per(length, 1000 * liver_ml), "mm^-2"),
            (tree, "VX.P.V.DISTAL_RICHNESS", _per(terminals, liver_ml / 1000), "1/L"),
            (tree, "VX.M.V.MURRAY_DEV", murray_deviation(graph) if traced else nan, "1"),
            (tree, "VX.C.V.LUMEN_HU", lumen, "HU"),
            (tree, "VX.C.V.CNR", (lumen - liver_hu) / noise_sd_hu if noise_sd_hu else
             float("nan"), "1"),
        ]
    if portal is not None:
        rec.append(("vessel:main_portal_vein", "VX.A.V.HILAR_STRAIGHTNESS",
                    hilar_straightness(portal), "1"))
    for graph in (portal, hepatic, artery):
        if graph is not None:
            rec += [(f"vessel:{n}", "VX.A.V.NAMED_DIAMETER", d, "mm")
                    for n, d in named_diameters(graph).items()]
    rec.append(("tree", "VX.X.T.PORTAL_HEPATIC_VOL_RATIO",
                vols["portal"] / vols["hepatic"] if vols["hepatic"] > 0 else float("nan"), "1"))
    ao = organs.get("aorta")
    ratio = float("nan")
    if ao is not None and ao.any():
        aorta_hu = core_hu(image, ao)
        if aorta_hu > 0:  # at or below 0 HU the mask holds no blood (fat, air, water)
            portal_hu = portal_vein_hu(image, portal_mask, portal)
            pv = organs.get("portal_vein")
            if not np.isfinite(portal_hu) and pv is not None:
                portal_hu = core_hu(image, pv)
            ratio = portal_hu / aorta_hu
    rec.append(("tree", "VX.C.T.PV_AORTA_RATIO", ratio, "1"))
    return FeatureTable.from_records(rec)
