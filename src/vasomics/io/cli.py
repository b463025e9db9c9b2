"""``vasomics io``: inspect and convert images and vessel graphs.

* ``vasomics io info PATH`` prints shape, type, spacing, origin, direction, orientation and the
  (allow-listed) metadata of an image, DICOM folder or graph/centerline file.
* ``vasomics io convert IN OUT`` converts between image formats, or between graph formats
  (``.vtp``, ``.json`` in; ``.vtp``, ``.json``, ``.graphml`` out), writing atomically.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from vasomics.errors import FormatError
from vasomics.io.graphs import GRAPH_SUFFIXES, read_graph

GRAPH_OUT = (".vtp", ".json", ".graphml")


def orientation_code(direction: np.ndarray) -> str:
    """Letters naming where each ITK axis (x, y, z) points, from the direction matrix (LPS):
    identity → ``"LPS"``; the NIfTI/3D Slicer convention. ITK's older ``SpatialOrientation``
    names give the opposite letters (identity is ITK's ``RAI``). Oblique axes get the
    closest letter."""
    plus, minus = "LPS", "RAI"
    letters = []
    for column in np.asarray(direction).T:
        i = int(np.argmax(np.abs(column)))
        letters.append(plus[i] if column[i] > 0 else minus[i])
    return "".join(letters)


@click.group("io")
def io_group() -> None:
    """Inspect and convert images and vessel graphs."""


_FRAME = click.option("--frame", type=click.Choice(["LPS", "RAS"]), default=None,
                      help="Frame of a centerline file's points (default: its SPACE tag, "
                      "else LPS; VMTK writes RAS). Graphs are written in LPS.")


@io_group.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@_FRAME
def info_command(path: Path, frame: str | None) -> None:
    """Print the geometry and safe metadata of an image, DICOM folder or graph file."""
    if path.suffix.lower() in GRAPH_SUFFIXES:
        graph = read_graph(path, frame=frame)
        names, counts = np.unique(graph.node_kind.astype(str), return_counts=True)
        kinds = ", ".join(f"{int(c)} {n}" for n, c in zip(names, counts, strict=True))
        click.echo(f"{path}: vessel graph, {graph.ndim}D, {graph.n_nodes} nodes ({kinds}), "
                   f"{graph.n_segments} segments, {len(graph.points)} points, total length "
                   f"{graph.segment_lengths().sum():.1f} mm")
        return
    from vasomics.io.images import read_image

    image = read_image(path)
    a = image.array
    click.echo(f"{path}")
    click.echo(f"  shape (numpy order)  {a.shape}  dtype {a.dtype}  channels {image.n_channels}")
    click.echo(f"  spacing (mm, numpy)  {tuple(round(s, 6) for s in image.spacing)}")
    click.echo(f"  origin (LPS mm)      {tuple(round(o, 4) for o in image.origin)}")
    click.echo(f"  direction            {np.round(image.direction, 5).tolist()}")
    if image.ndim == 3:
        click.echo(f"  axes x, y, z point   {orientation_code(image.direction)}")
    finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
    if finite.size:
        click.echo(f"  value range          {finite.min()} to {finite.max()}")
    for key, value in sorted(image.metadata.items()):
        click.echo(f"  {key:20s} {value}")


@io_group.command("convert")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@_FRAME
def convert_command(source: Path, target: Path, frame: str | None) -> None:
    """Convert SOURCE to TARGET (format from the extensions)."""
    if source.suffix.lower() in GRAPH_SUFFIXES or target.suffix.lower() in GRAPH_OUT:
        if source.suffix.lower() not in GRAPH_SUFFIXES or target.suffix.lower() not in GRAPH_OUT:
            raise FormatError(f"graphs convert from {'/'.join(GRAPH_SUFFIXES)} to "
                              f"{'/'.join(GRAPH_OUT)}", target)
        from vasomics.io import graphs

        graph = read_graph(source, frame=frame)
        writer = {".vtp": graphs.write_graph_vtp, ".json": graphs.write_graph_json,
                  ".graphml": graphs.write_graph_graphml}[target.suffix.lower()]
        writer(graph, target)
    else:
        from vasomics.io.images import read_image, write_image

        write_image(read_image(source), target)
    click.echo(f"wrote {target}")

