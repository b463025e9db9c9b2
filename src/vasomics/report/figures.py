"""Figures for the HTML reports, as self-contained strings (no network, no JavaScript).

* :func:`mip_pngs`: maximum-intensity projections of an image along its three array axes
  with vessel centerlines drawn over them (base64 PNG);
* :func:`histogram_svg`: a small inline SVG histogram with a marker (a scan in its cohort);
* :func:`boxplot_svg`: box plots of one feature per group (cohort report);
* :func:`bar_svg`: horizontal bars (phase probabilities, missingness).

Coordinates: images are NumPy order ``(z, y, x)``; centerline points are physical LPS mm
and mapped to voxel indices with :meth:`~vasomics.image.Image.physical_to_index`.
"""

from __future__ import annotations

import base64
import colorsys
import html
import io

import numpy as np

from vasomics.image import Image
from vasomics.vessel_graph import VesselGraph

#: Projections: (title, array axis projected away).
VIEWS = (("axial", 0), ("coronal", 1), ("sagittal", 2))


def label_colours(labels) -> dict[str, tuple[int, int, int]]:
    """A distinct RGB colour per vessel name (golden-ratio hues, stable for sorted names)."""
    names = sorted({str(v) for v in labels})
    out = {}
    for i, name in enumerate(names):
        h = (0.07 + i * 0.618034) % 1.0
        r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.95)
        out[name] = (int(r * 255), int(g * 255), int(b * 255))
    return out


def segment_names(graph: VesselGraph, prefix: str = "") -> np.ndarray:
    """Name of each segment: its label, or ``prefix`` + "unnamed" where there is none."""
    if graph.segment_label is None:
        return np.array([f"{prefix}unnamed"] * graph.n_segments, dtype=object)
    return np.array([str(v) if v not in (None, "") else f"{prefix}unnamed"
                     for v in graph.segment_label], dtype=object)


def _window(a: np.ndarray) -> np.ndarray:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros(a.shape, np.uint8)
    lo, hi = np.percentile(finite, [1.0, 99.7])
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((a - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def _slice_axis_superior(image: Image) -> bool:
    """Whether increasing array axis 0 (ITK index k) points superior (+z in LPS)."""
    return float(np.asarray(image.direction)[2, 2]) > 0


def mip_pngs(image: Image, graphs: dict[str, VesselGraph], colours: dict[str, tuple],
             size_px: int = 384) -> list[tuple[str, str]]:
    """``[(view title, base64 PNG)]`` for the axial, coronal and sagittal maximum-intensity
    projections of a 3D ``image`` (2D images: one view), with every segment of ``graphs``
    drawn in the colour of its name. Pixels are scaled to physical aspect ratio; coronal and
    sagittal views show superior up."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    a = np.asarray(image.array, np.float32)
    if image.n_channels != 1:
        a = a.mean(axis=-1)
    views = VIEWS if a.ndim == 3 else (("image", None),)
    idx_by_graph = {k: image.physical_to_index(g.points) for k, g in graphs.items()
                    if g.n_segments and g.points.shape[1] == a.ndim}
    out = []
    for title, axis in views:
        mip = a if axis is None else a.max(axis=axis)
        keep = [d for d in range(a.ndim) if d != axis]
        sp = [image.spacing[d] for d in keep]
        h, w = mip.shape
        scale = size_px / max(h * sp[0], w * sp[1])
        size = (max(1, round(w * sp[1] * scale)), max(1, round(h * sp[0] * scale)))
        # rows along the slice axis: show superior up (radiological display)
        flip = a.ndim == 3 and keep[0] == 0 and _slice_axis_superior(image)
        grey = _window(mip)[::-1] if flip else _window(mip)
        pil = PILImage.fromarray(np.ascontiguousarray(grey)).convert("RGB").resize(size)
        draw = ImageDraw.Draw(pil)
        for key, graph in graphs.items():
            if key not in idx_by_graph:
                continue
            idx = idx_by_graph[key]
            names = segment_names(graph, f"{key}:")
            for s in range(graph.n_segments):
                lo, hi = graph.point_offsets[s], graph.point_offsets[s + 1]
                if hi - lo < 2:
                    continue
                p = idx[lo:hi]
                row = (h - 1 - p[:, keep[0]]) if flip else p[:, keep[0]]
                xy = np.column_stack([(p[:, keep[1]] + 0.5) * sp[1] * scale,
                                      (row + 0.5) * sp[0] * scale])
                draw.line([tuple(map(float, q)) for q in xy],
                          fill=colours.get(names[s], (255, 255, 0)), width=2)
        buf = io.BytesIO()
        pil.save(buf, format="PNG", optimize=True)
        out.append((title, base64.b64encode(buf.getvalue()).decode()))
    return out


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def histogram_svg(values: np.ndarray, marker: float | None, width: int = 160,
                  height: int = 34, bins: int = 20) -> str:
    """Inline SVG histogram of the finite ``values`` with a red line at ``marker``."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    lo, hi = float(v.min()), float(v.max())
    if marker is not None and np.isfinite(marker):
        lo, hi = min(lo, marker), max(hi, marker)
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    bw = width / bins
    top = counts.max() or 1
    bars = "".join(f"<rect x='{i * bw:.1f}' y='{height - c / top * (height - 2):.1f}' "
                   f"width='{bw - 0.5:.1f}' height='{c / top * (height - 2):.1f}'/>"
                   for i, c in enumerate(counts) if c)
    mark = ""
    if marker is not None and np.isfinite(marker):
        x = (marker - lo) / (hi - lo) * width
        mark = f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{height}' class='mark'/>"
    return (f"<svg class='hist' width='{width}' height='{height}' role='img'>"
            f"<title>cohort n={v.size}, range {_fmt(lo)} to {_fmt(hi)}</title>{bars}{mark}</svg>")


def boxplot_svg(groups: dict[str, np.ndarray], unit: str, width: int = 420) -> str:
    """Horizontal box plots (quartiles, whiskers at the 5th/95th percentiles, median line)
    of one feature per group, with the group's n."""
    rows = {k: np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for k, v in groups.items()}
    rows = {k: v for k, v in rows.items() if v.size}
    if not rows:
        return "<p class='missing'>no values</p>"
    allv = np.concatenate(list(rows.values()))
    lo, hi = float(allv.min()), float(allv.max())
    if hi <= lo:
        hi = lo + 1.0
    label_w, plot_w, row_h = 150, width - 160, 18

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    parts = []
    for i, (name, v) in enumerate(rows.items()):
        y = i * row_h + 4
        p5, q1, med, q3, p95 = np.percentile(v, [5, 25, 50, 75, 95])
        parts.append(
            f"<text x='0' y='{y + 11}'>{html.escape(name)} (n={v.size})</text>"
            f"<line x1='{x(p5):.1f}' x2='{x(p95):.1f}' y1='{y + 7}' y2='{y + 7}'/>"
            f"<rect x='{x(q1):.1f}' y='{y}' width='{max(x(q3) - x(q1), 1):.1f}' height='14'/>"
            f"<line class='med' x1='{x(med):.1f}' x2='{x(med):.1f}' y1='{y}' y2='{y + 14}'/>")
    h = len(rows) * row_h + 22
    parts.append(f"<text x='{label_w}' y='{h - 4}'>{_fmt(lo)}</text>"
                 f"<text x='{width - 10}' y='{h - 4}' text-anchor='end'>{_fmt(hi)} "
                 f"{html.escape(unit)}</text>")
    return f"<svg class='box' width='{width}' height='{h}'>{''.join(parts)}</svg>"


def bar_svg(items: dict[str, float], width: int = 320, maximum: float = 1.0,
            fmt: str = "{:.2f}") -> str:
    """Horizontal bars for ``items`` (name -> value in [0, ``maximum``])."""
    row_h, label_w = 18, 130
    parts = []
    for i, (name, value) in enumerate(items.items()):
        v = 0.0 if value is None or not np.isfinite(value) else float(value)
        w = max(0.0, min(v / maximum, 1.0)) * (width - label_w - 50)
        y = i * row_h
        parts.append(f"<text x='0' y='{y + 13}'>{html.escape(name)}</text>"
                     f"<rect x='{label_w}' y='{y + 3}' width='{w:.1f}' height='12'/>"
                     f"<text x='{label_w + w + 4:.1f}' y='{y + 13}'>{fmt.format(v)}</text>")
    return (f"<svg class='bars' width='{width}' height='{len(items) * row_h + 4}'>"
            f"{''.join(parts)}</svg>")
