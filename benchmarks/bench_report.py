"""Scan report of a large tree: file size and time to first meaningful paint in headless
Chromium.

A random 3D branching tree of N segments (default 3,000; 40 points each, radii tapering by
generation) with all catalogue features is rendered to a report; the report is opened in
headless Chromium (software rendering) and we read the browser's first-contentful-paint
and the time at which the 3D view has drawn the whole tree (performance mark
``tree-drawn``), both from navigation start. Targets: <= 10 MB, <= 3 s. Also times the
PDF export.

    python benchmarks/bench_report.py [--segments 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def random_tree(n_segments: int, points: int = 40, seed: int = 0):
    from vasomics.vessel_graph import VesselGraph

    rng = np.random.default_rng(seed)
    polylines, radii = [], []
    ends = [(np.zeros(3), np.array([0.0, 0.0, -1.0]), 8.0, 4.0)]  # start, direction, length, r
    while len(polylines) < n_segments:
        start, direction, length, r = ends.pop(0)
        t = np.linspace(0, 1, points)[:, None]
        wiggle = rng.normal(0, 0.02 * length, 3) * np.sin(np.pi * t)
        pts = start + direction * length * t + wiggle
        polylines.append(pts)
        radii.append(np.full(points, r))
        for sign in (-1, 1):
            axis = rng.normal(size=3)
            axis -= axis.dot(direction) * direction
            axis /= np.linalg.norm(axis)
            new = np.cos(0.6) * direction + sign * np.sin(0.6) * axis
            ends.append((pts[-1], new / np.linalg.norm(new), length * 0.85, r * 0.8))
    return VesselGraph.from_polylines(polylines, radii)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from _browser import launch
    from vasomics.features.extract import extract_features
    from vasomics.report.scan import ScanData, write_scan_report

    graph = random_tree(args.segments)
    t0 = time.perf_counter()
    features = extract_features(graph)
    t_feat = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_scan_report(ScanData("bench", graphs={"tree": graph}, features=features),
                                 Path(tmp) / "report.html")
        t_write = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        paints = []
        with sync_playwright() as p:
            browser = launch(p)
            for _ in range(args.repeats):
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(path.as_uri())
                page.wait_for_function("document.getElementById('tree3d').dataset.drawn && "
                                       "performance.getEntriesByName("
                                       "'first-contentful-paint').length")
                paints.append(page.evaluate("""() => [
                    performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
                    performance.getEntriesByName('tree-drawn')[0].startTime]"""))
                page.close()
            browser.close()
        from vasomics.report.pdf import html_to_pdf

        t0 = time.perf_counter()
        pdf = html_to_pdf(path, Path(tmp) / "report.pdf")
        t_pdf = time.perf_counter() - t0
        pdf_mb = pdf.stat().st_size / 1e6
    fcp = np.array([p[0] for p in paints], float) / 1000
    drawn = np.array([p[1] for p in paints], float) / 1000
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tree: {graph.n_segments} segments, {len(graph.points)} points; "
          f"{len(features)} feature values ({t_feat:.1f} s to extract)")
    print(f"report: {size_mb:.2f} MB (target <= 10 MB), written in {t_write:.2f} s; "
          f"peak RSS {rss:.0f} MB")
    print(f"first contentful paint: median {np.median(fcp):.2f} s; 3D tree drawn: median "
          f"{np.median(drawn):.2f} s, max {drawn.max():.2f} s over {len(drawn)} loads "
          f"(target <= 3 s)")
    print(f"PDF export (browser start included): {t_pdf:.2f} s, {pdf_mb:.2f} MB")


if __name__ == "__main__":
    main()
