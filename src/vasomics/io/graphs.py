"""Vessel graphs and centerlines on disk: VTP (VMTK / 3D Slicer), GraphML and JSON.

VTP layout written by :func:`write_graph_vtp` (read back exactly by :func:`read_graph_vtp`):

* one polyline cell per segment, its points ordered from the start node to the end node;
* point array ``Radius`` (mm), the name VMTK's ``vmtkcenterlines`` output is read by in
  VMTK scripts and 3D Slicer's VMTK extension;
* cell arrays ``SegmentId``, ``StartNode``, ``EndNode``, ``Generation``, ``Strahler``
  (``-1`` = not assigned) and ``Label`` (string);
* field data ``NodePosition`` (N×3), ``NodeKind`` (strings) and ``Dimension`` (2 or 3; 2D
  graphs are stored with z = 0), and ``SPACE`` = ``"LPS"``, the tag 3D Slicer writes and
  reads to know a model file's frame.

Coordinates are written as they are in the graph: physical LPS mm, so in 3D Slicer the
centerlines overlay the image loaded from the same case. Files written by VMTK scripts
(``vmtkcenterlines`` and friends) hold RAS coordinates (x and y negated), measured on
``vmtk_aorta_mra``: read them with ``frame="RAS"``. Files carrying Slicer's ``SPACE`` tag are
converted automatically.

JSON (:func:`write_graph_json`, :func:`read_graph_json`), schema :data:`JSON_SCHEMA_VERSION`::

    {"format": "vasomics.vessel_graph", "version": 1, "ndim": 3,
     "units": {"position": "mm", "radius": "mm"}, "frame": "LPS",
     "nodes": [{"id": 0, "position": [x, y, z], "kind": "endpoint"}, ...],
     "segments": [{"id": 0, "start": 0, "end": 1, "label": "", "generation": -1,
                   "strahler": -1, "points": [[x, y, z], ...], "radius": [r, ...]}, ...],
     "metadata": {...}}

GraphML (:func:`write_graph_graphml`) is an export for network analysis tools: nodes carry
``x``, ``y``, ``z`` (mm) and ``kind``; edges ``segment``, ``length_mm``,
``mean_radius_mm``, ``label``, ``generation``, ``strahler`` and ``points`` (JSON text of the
centerline points).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vasomics.errors import FormatError, InputError
from vasomics.io.atomic import atomic_file
from vasomics.io.vtk_xml import VTKPolyData, read_vtp, write_vtk_xml
from vasomics.vessel_graph import VesselGraph

log = logging.getLogger(__name__)

JSON_FORMAT = "vasomics.vessel_graph"
JSON_SCHEMA_VERSION = 1
#: Point arrays taken as the radius, in order of preference (VMTK writes
#: ``MaximumInscribedSphereRadius``; TubeTK and vasomics ``Radius``).
RADIUS_NAMES = ("Radius", "MaximumInscribedSphereRadius", "radius", "Radii", "radii")
#: Frames a centerline file may be stored in. ``"LPS"``: ITK physical (vasomics, ITK,
#: TubeTK via :mod:`vasomics.io.tubetk`); ``"RAS"``: x and y negated (VMTK's centerline
#: files, e.g. ``vmtk_aorta_mra/aorta-centerline.vtp``, and 3D Slicer's RAS-tagged files).
FRAMES = ("LPS", "RAS")


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """Negate x and y: RAS ↔ LPS (the map is its own inverse). Works for 2D points too."""
    points = np.asarray(points, dtype=float).copy()
    points[..., :2] *= -1.0
    return points


@dataclass
class Centerlines:
    """Polylines read from a VTP file, in LPS mm (converted from the file's frame by
    :func:`read_vtp_centerlines`; TubeTK files are index × spacing until mapped with
    :mod:`vasomics.io.tubetk`).

    ``polylines[i]`` is ``(n_i, 3)``; ``radii[i]`` ``(n_i,)`` in mm or ``None`` when the file
    has no radius array; ``radius_name`` is the array used. ``cell_data`` holds the file's
    cell arrays for the kept polylines (one value per polyline).
    """

    polylines: list[np.ndarray]
    radii: list[np.ndarray] | None
    radius_name: str | None = None
    cell_data: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def points(self) -> np.ndarray:
        """All points, ``(P, 3)``."""
        return np.concatenate(self.polylines) if self.polylines else np.zeros((0, 3))

    @property
    def point_radius(self) -> np.ndarray:
        """All radii, ``(P,)`` (NaN when unknown)."""
        if self.radii is None:
            return np.full(len(self.points), np.nan)
        return np.concatenate(self.radii) if self.radii else np.zeros(0)

    def transformed(self, func) -> Centerlines:
        """The same centerlines with points mapped through ``func((P, 3)) -> (P, 3)``."""
        mapped = func(self.points)
        splits = np.cumsum([len(p) for p in self.polylines])[:-1]
        return Centerlines(list(np.split(mapped, splits)), self.radii, self.radius_name,
                           dict(self.cell_data))

    def joined(self, extra_mm: float = 0.0) -> Centerlines:
        """Join tubes that end inside another tube, as TubeTK stores vessel trees (each
        child tube starts inside its parent's lumen but not on its centerline).

        Rule: for each polyline, take the end whose nearest point on *another* polyline is
        closest relative to that point's radius; when that distance is at most the radius
        plus ``extra_mm``, the child gets that parent point added as its new end point and
        the parent is split there. Polylines attach by at most one end (a tube has one
        parent) and closest-first, skipping any join that would close a cycle, so joined
        tubes form trees. Radii are required. Cell data are not carried over (the polylines
        change).
        """
        if self.radii is None:
            raise InputError("joining tubes needs radii")
        from scipy.spatial import cKDTree

        lines = [np.asarray(p, float) for p in self.polylines]
        radii = [np.asarray(r, float) for r in self.radii]
        owner = np.repeat(np.arange(len(lines)), [len(p) for p in lines])
        local = np.concatenate([np.arange(len(p)) for p in lines])
        points, radius = np.concatenate(lines), np.concatenate(radii)
        tree = cKDTree(points)
        reach = float(radius.max()) + extra_mm
        candidates = []  # (score, child, end 0/-1, global parent point)
        for i, line in enumerate(lines):
            best = None
            for end in (0, -1):
                near = np.asarray(tree.query_ball_point(line[end], reach), dtype=np.int64)
                near = near[owner[near] != i]
                if near.size == 0:
                    continue
                dist = np.linalg.norm(points[near] - line[end], axis=1)
                inside = dist <= radius[near] + extra_mm
                if not inside.any():
                    continue
                k = np.flatnonzero(inside)[np.argmin(dist[inside])]
                j = int(near[k])
                score = dist[k] / max(radius[j], 1e-9)
                if best is None or score < best[0]:
                    best = (score, i, end, j)
            if best is not None:
                candidates.append(best)
        # accept the closest attachments first, never one that would close a cycle
        parent_of = list(range(len(lines)))

        def root(k: int) -> int:
            while parent_of[k] != k:
                parent_of[k] = parent_of[parent_of[k]]
                k = parent_of[k]
            return k

        splits: dict[int, set[int]] = {}
        attach: dict[int, tuple[int, int]] = {}  # child -> (end index 0/-1, global point)
        for _, i, end, j in sorted(candidates):
            a, b = root(i), root(int(owner[j]))
            if a == b:
                continue
            parent_of[a] = b
            attach[i] = (end, j)
            splits.setdefault(int(owner[j]), set()).add(int(local[j]))
        new_lines, new_radii = [], []
        for i, (line, rad) in enumerate(zip(lines, radii, strict=True)):
            if i in attach and np.linalg.norm(points[attach[i][1]] - line[attach[i][0]]) > 0:
                end, j = attach[i]
                if end == 0:
                    line, rad = np.vstack([points[j], line]), np.concatenate([[radius[j]], rad])
                else:
                    line, rad = np.vstack([line, points[j]]), np.concatenate([rad, [radius[j]]])
            shift = len(line) - len(lines[i]) if i in attach and attach[i][0] == 0 else 0
            cuts = sorted(c + shift for c in splits.get(i, ()))
            cuts = [c for c in cuts if 0 < c < len(line) - 1]
            bounds = [0, *cuts, len(line) - 1]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                if b > a:
                    new_lines.append(line[a:b + 1])
                    new_radii.append(rad[a:b + 1])
        return Centerlines(new_lines, new_radii, self.radius_name)

    def merged_paths(self, reach: float = 0.5, min_reach_mm: float = 0.1) -> Centerlines:
        """Merge path centerlines into a tree: VMTK's ``vmtkcenterlines`` writes one polyline
        from the inlet to each outlet, so every path repeats the trunk the others run along,
        and read as a graph the shared vessels counted once per path.

        Rule: polylines are taken in order; a point of a later one is *shared* when it lies
        within ``reach`` × the radius (at least ``min_reach_mm``) of the nearest point of
        those kept so far. The run of shared points at its start (or end) is dropped, and
        what is left starts (ends) at the kept point nearest to its first unshared point,
        where that kept polyline is split: a bifurcation. A polyline shared all along is a
        duplicate and dropped; one sharing neither end is kept whole. Radii are required;
        cell data are not carried over (the polylines change)."""
        if self.radii is None:
            raise InputError("merging path centerlines needs radii")
        if not self.polylines:
            return self
        from scipy.spatial import cKDTree

        kept = [np.asarray(self.polylines[0], float)]
        kept_r = [np.asarray(self.radii[0], float)]
        splits: dict[int, set[int]] = {}
        for line, rad in zip(self.polylines[1:], self.radii[1:], strict=True):
            line, rad = np.asarray(line, float), np.asarray(rad, float)
            owner = np.repeat(np.arange(len(kept)), [len(k) for k in kept])
            local = np.concatenate([np.arange(len(k)) for k in kept])
            points, radius = np.concatenate(kept), np.concatenate(kept_r)
            dist, near = cKDTree(points).query(line)
            shared = dist <= np.maximum(reach * radius[near], min_reach_mm)
            if shared.all():
                continue
            if not shared[0] and shared[-1]:  # a path stored outlet to inlet
                line, rad, shared, near = line[::-1], rad[::-1], shared[::-1], near[::-1]
            start = int(np.argmin(shared)) if shared[0] else 0
            if start:
                j = int(near[start])
                line = np.vstack([points[j], line[start:]])
                rad = np.concatenate([[radius[j]], rad[start:]])
                splits.setdefault(int(owner[j]), set()).add(int(local[j]))
            kept.append(line)
            kept_r.append(rad)
        lines, radii = [], []
        for i, (line, rad) in enumerate(zip(kept, kept_r, strict=True)):
            cuts = sorted(c for c in splits.get(i, ()) if 0 < c < len(line) - 1)
            bounds = [0, *cuts, len(line) - 1]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                lines.append(line[a:b + 1])
                radii.append(rad[a:b + 1])
        return Centerlines(*_join_chains(lines, radii), self.radius_name)

    def to_graph(self, merge_tol_mm: float = 1e-3, default_radius: float | None = None,
                 metadata: dict | None = None) -> VesselGraph:
        """A :class:`VesselGraph` with one segment per polyline; polyline ends closer than
        ``merge_tol_mm`` share a node (see :meth:`VesselGraph.from_polylines`). Files
        without a radius array need ``default_radius`` (mm)."""
        radii = self.radii
        if radii is None:
            if default_radius is None:
                raise InputError(f"centerlines have no radius array (looked for "
                                 f"{', '.join(RADIUS_NAMES)}); pass default_radius")
            radii = [np.full(len(p), float(default_radius)) for p in self.polylines]
        return VesselGraph.from_polylines(self.polylines, radii, merge_tol_mm=merge_tol_mm,
                                          metadata=metadata)


def _join_chains(lines: list, radii: list) -> tuple[list, list]:
    """Join polylines end to end where exactly two ends meet (VMTK's branch-split files cut a
    vessel into tracts at the bifurcation zone's borders): one polyline per vessel between
    branchings or ends. Closed chains (loops) are left as they are."""
    lines, radii = list(lines), list(radii)
    while True:
        ends: dict[tuple, list[tuple[int, int]]] = {}
        for i, line in enumerate(lines):
            for e in (0, -1):
                ends.setdefault(tuple(np.round(line[e], 6)), []).append((i, e))
        pair = next((v for v in ends.values() if len(v) == 2 and v[0][0] != v[1][0]), None)
        if pair is None:
            return lines, radii
        (i, ei), (j, ej) = pair
        a, ra = (lines[i], radii[i]) if ei == -1 else (lines[i][::-1], radii[i][::-1])
        b, rb = (lines[j], radii[j]) if ej == 0 else (lines[j][::-1], radii[j][::-1])
        joined, joined_r = np.vstack([a, b[1:]]), np.concatenate([ra, rb[1:]])
        lines = [x for k, x in enumerate(lines) if k not in (i, j)] + [joined]
        radii = [x for k, x in enumerate(radii) if k not in (i, j)] + [joined_r]


def read_vtp_centerlines(path: str | Path, radius_array: str | None = None,
                         frame: str | None = None) -> Centerlines:
    """Read the polylines of a VTP file (VMTK, TubeTK, 3D Slicer, vasomics) with their radii.

    ``radius_array`` names the point array holding radii in mm; by default the first of
    :data:`RADIUS_NAMES` present. ``frame`` is the frame the file's points are in
    (:data:`FRAMES`); by default the file's ``SPACE`` field (3D Slicer, vasomics), else
    LPS. Points are returned in LPS mm, so ``"RAS"`` files (VMTK centerlines) are converted
    with :func:`ras_to_lps`. Polylines of fewer than two points are dropped (logged). See
    :mod:`vasomics.io.tubetk` for TubeTK's index × spacing frame.
    """
    poly = read_vtp(path)
    if frame is None and "SPACE" not in poly.field_data and \
            "MaximumInscribedSphereRadius" in poly.point_data:
        log.warning("%s: VMTK centerlines without a SPACE tag are read as LPS; VMTK scripts "
                    "usually write RAS (pass frame='RAS' if they do not overlay the image)",
                    path)
    frame = _resolve_frame(poly, frame, path)
    if frame == "RAS":
        poly.points = ras_to_lps(poly.points)
    lines = poly.lines
    if not lines:
        raise InputError("VTP file holds no polyline cells", path)
    names = [radius_array] if radius_array else [n for n in RADIUS_NAMES if n in poly.point_data]
    if radius_array and radius_array not in poly.point_data:
        raise InputError(f"no point array {radius_array!r} (found: "
                         f"{', '.join(poly.point_data) or 'none'})", path)
    radius = poly.point_data[names[0]].astype(float) if names else None
    if radius is not None and radius.ndim != 1:
        raise InputError(f"radius array {names[0]!r} has several components", path)
    if radius is not None and not np.all(np.isfinite(radius)):
        raise InputError(f"radius array {names[0]!r} holds NaN or infinite values", path)
    keep = [i for i, c in enumerate(lines) if len(c) >= 2]
    if len(keep) < len(lines):
        log.warning("%s: %d polylines with fewer than 2 points dropped", path,
                    len(lines) - len(keep))
    n_before = sum(len(poly.cells.get(k, [])) for k in ("Verts",))
    cell_data = {k: v[n_before:n_before + len(lines)][keep] for k, v in poly.cell_data.items()}
    return Centerlines(
        polylines=[poly.points[lines[i]] for i in keep],
        radii=None if radius is None else [radius[lines[i]] for i in keep],
        radius_name=names[0] if names else None,
        cell_data=cell_data,
    )


def _resolve_frame(poly: VTKPolyData, frame: str | None, path) -> str:
    """The frame to read ``poly`` in: ``frame`` if given, else the file's SPACE tag, else
    LPS. A given frame that contradicts the tag wins, with a warning."""
    if frame is not None and frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    tag = poly.field_data.get("SPACE")
    tagged = str(tag[0]).strip().upper() if tag is not None and len(tag) else None
    if tagged is not None and tagged not in FRAMES:
        log.warning("%s: unknown SPACE tag %r ignored", path, tagged)
        tagged = None
    if frame is None:
        return tagged or "LPS"
    if tagged is not None and tagged != frame:
        log.warning("%s: file says SPACE=%s but frame=%s was requested; using %s", path,
                    tagged, frame, frame)
    return frame


# ------------------------------------------------------------------------------------ VTP
def write_graph_vtp(graph: VesselGraph, path: str | Path) -> Path:
    """Write ``graph`` as VTP (layout in the module docstring), atomically."""
    points = graph.points
    nodes = graph.node_position
    if graph.ndim == 2:
        points = np.column_stack([points, np.zeros(len(points))])
        nodes = np.column_stack([nodes, np.zeros(len(nodes))])
    lines = [np.arange(graph.point_offsets[i], graph.point_offsets[i + 1])
             for i in range(graph.n_segments)]
    poly = VTKPolyData(
        points=points,
        cells={"Lines": lines},
        point_data={"Radius": graph.radius.astype(np.float64)},
        cell_data={
            "SegmentId": np.arange(graph.n_segments, dtype=np.int64),
            "StartNode": graph.segment_start, "EndNode": graph.segment_end,
            "Generation": graph.segment_generation, "Strahler": graph.segment_strahler,
            "Label": graph.segment_label.astype(str),
        },
        field_data={"NodePosition": nodes.astype(np.float64),
                    "NodeKind": graph.node_kind.astype(str),
                    "Dimension": np.array([graph.ndim], dtype=np.int64),
                    "SPACE": np.array(["LPS"], dtype=object)},
    )
    return write_vtk_xml(path, poly)


def _is_graph_vtp(poly: VTKPolyData) -> bool:
    """Whether a VTP holds a vasomics graph (:func:`write_graph_vtp`), not bare centerlines."""
    return ({"NodePosition", "NodeKind"} <= set(poly.field_data)
            and {"StartNode", "EndNode"} <= set(poly.cell_data))


def read_graph_vtp(path: str | Path, merge_tol_mm: float = 1e-3) -> VesselGraph:
    """Read a vessel graph from VTP. Files written by :func:`write_graph_vtp` are rebuilt
    exactly (nodes, kinds, labels, generations, Strahler orders); other centerline files
    (VMTK, TubeTK, Slicer) go through :meth:`Centerlines.to_graph` with ``merge_tol_mm``."""
    poly = read_vtp(path)
    fd, cd = poly.field_data, poly.cell_data
    if not _is_graph_vtp(poly):
        return read_vtp_centerlines(path).to_graph(merge_tol_mm)
    if "Radius" not in poly.point_data:
        raise InputError("vasomics graph VTP lacks the Radius point array", path)
    ndim = int(fd.get("Dimension", [3])[0])
    if _resolve_frame(poly, None, path) == "RAS":  # e.g. re-saved by Slicer in RAS
        poly.points = ras_to_lps(poly.points)
        fd["NodePosition"] = ras_to_lps(np.asarray(fd["NodePosition"], float).reshape(-1, 3))
    lines = poly.lines
    order = np.concatenate(lines) if lines else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in lines])])
    nodes = np.asarray(fd["NodePosition"], float).reshape(-1, 3)
    try:
        return VesselGraph(
            node_position=nodes[:, :ndim], node_kind=np.asarray(fd["NodeKind"], object),
            segment_start=cd["StartNode"], segment_end=cd["EndNode"], point_offsets=offsets,
            points=poly.points[order][:, :ndim], radius=poly.point_data["Radius"][order],
            segment_label=cd.get("Label"), segment_generation=cd.get("Generation"),
            segment_strahler=cd.get("Strahler"),
        )
    except InputError as exc:
        raise InputError(exc.message, path) from None


# ----------------------------------------------------------------------------------- JSON
def graph_to_dict(graph: VesselGraph) -> dict:
    """The JSON document (schema in the module docstring) as a Python dict."""
    return {
        "format": JSON_FORMAT,
        "version": JSON_SCHEMA_VERSION,
        "ndim": graph.ndim,
        "units": {"position": "mm", "radius": "mm"},
        "frame": "LPS",
        "nodes": [{"id": i, "position": graph.node_position[i].tolist(),
                   "kind": str(graph.node_kind[i])} for i in range(graph.n_nodes)],
        "segments": [{"id": i, "start": int(graph.segment_start[i]),
                      "end": int(graph.segment_end[i]), "label": str(graph.segment_label[i]),
                      "generation": int(graph.segment_generation[i]),
                      "strahler": int(graph.segment_strahler[i]),
                      "points": graph.segment_points(i).tolist(),
                      "radius": graph.segment_radius(i).tolist()}
                     for i in range(graph.n_segments)],
        "metadata": _jsonable(graph.metadata),
    }


def graph_from_dict(doc: dict, path=None) -> VesselGraph:
    """Inverse of :func:`graph_to_dict`; checks format and version."""
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise FormatError(f"not a {JSON_FORMAT} JSON document", path)
    version = doc.get("version")
    if not isinstance(version, int) or version > JSON_SCHEMA_VERSION or version < 1:
        raise FormatError(f"unsupported {JSON_FORMAT} version {version!r} (this vasomics "
                          f"reads versions 1 to {JSON_SCHEMA_VERSION})", path)
    try:
        ndim = int(doc["ndim"])
        nodes = sorted(doc["nodes"], key=lambda n: n["id"])
        segs = sorted(doc["segments"], key=lambda s: s["id"])
        if [n["id"] for n in nodes] != list(range(len(nodes))):
            raise InputError("node ids are not 0..N-1", path)
        lengths = [len(s["points"]) for s in segs]
        return VesselGraph(
            node_position=np.array([n["position"] for n in nodes], float).reshape(-1, ndim),
            node_kind=np.array([n["kind"] for n in nodes], dtype=object),
            segment_start=[s["start"] for s in segs], segment_end=[s["end"] for s in segs],
            point_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            points=np.array([p for s in segs for p in s["points"]], float).reshape(-1, ndim),
            radius=np.array([r for s in segs for r in s["radius"]], float),
            segment_label=[s.get("label", "") for s in segs],
            segment_generation=[s.get("generation", -1) for s in segs],
            segment_strahler=[s.get("strahler", -1) for s in segs],
            metadata=doc.get("metadata") or {},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed vessel graph JSON ({type(exc).__name__}: {exc})",
                         path) from None
    except InputError as exc:
        raise InputError(exc.message, path) from None


def write_graph_json(graph: VesselGraph, path: str | Path) -> Path:
    """Write ``graph`` as JSON (schema in the module docstring), atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(graph_to_dict(graph), separators=(",", ":")), "utf-8")
    return path


#: Graph and centerline files :func:`read_graph` reads.
GRAPH_SUFFIXES = (".vtp", ".json")


def read_graph(path: str | Path, frame: str | None = None) -> VesselGraph:
    """A vessel graph from a ``.json`` (:func:`read_graph_json`) or ``.vtp`` file: a vasomics
    graph exactly (:func:`read_graph_vtp`), other centerlines (VMTK, 3D Slicer, TubeTK) in
    ``frame`` (default: the file's ``SPACE`` tag, else LPS; VMTK writes RAS) with path
    centerlines merged into a tree (:meth:`Centerlines.merged_paths`) and tubes that end
    inside another's lumen joined to it (:meth:`Centerlines.joined`, TubeTK's trees);
    polylines without radii cannot be measured and are refused."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_graph_json(path)
    if suffix != ".vtp":
        raise FormatError(f"not a graph file (graphs are read from "
                          f"{', '.join(GRAPH_SUFFIXES)})", path)
    if _is_graph_vtp(read_vtp(path)):
        return read_graph_vtp(path)
    lines = read_vtp_centerlines(path, frame=frame)
    if lines.radii is None:
        raise InputError(f"centerlines have no radius array (looked for "
                         f"{', '.join(RADIUS_NAMES)})", path)
    return lines.merged_paths().joined().to_graph(merge_tol_mm=1e-6)


def read_graph_json(path: str | Path) -> VesselGraph:
    """Read a graph written by :func:`write_graph_json` (any schema version up to the
    current one)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None
    return graph_from_dict(doc, path)


def _jsonable(value):
    """Metadata → JSON types (NumPy scalars and arrays to numbers and lists, others to str)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# -------------------------------------------------------------------------------- GraphML
def write_graph_graphml(graph: VesselGraph, path: str | Path) -> Path:
    """Write ``graph`` as GraphML (attributes in the module docstring), atomically."""
    import networkx as nx

    g = nx.MultiGraph()
    axes = "xyz"[: graph.ndim]
    for i in range(graph.n_nodes):
        attrs = {a: float(v) for a, v in zip(axes, graph.node_position[i], strict=True)}
        g.add_node(i, kind=str(graph.node_kind[i]), **attrs)
    lengths = graph.segment_lengths()
    for i in range(graph.n_segments):
        g.add_edge(int(graph.segment_start[i]), int(graph.segment_end[i]), key=i, segment=i,
                   length_mm=float(lengths[i]),
                   mean_radius_mm=float(np.mean(graph.segment_radius(i))),
                   label=str(graph.segment_label[i]),
                   generation=int(graph.segment_generation[i]),
                   strahler=int(graph.segment_strahler[i]),
                   points=json.dumps(np.round(graph.segment_points(i), 6).tolist()))
    path = Path(path)
    with atomic_file(path) as tmp:
        nx.write_graphml(g, tmp)
    return path
