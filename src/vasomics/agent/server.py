"""``vasomics mcp``: the vasomics MCP server (stdio or streamable HTTP).

Tools (narrow and typed; files only inside the allowed root; no code or SQL from the
caller is ever run): ``characterize_ct`` (the whole CT chain), ``run_qc``,
``recognize_phase``, ``segment_vessels``,
``extract_features``, ``query_cohort`` (named, parameterized, read-only queries),
``explain_prediction``, ``search_knowledge_base``. Resources: ``vasomics://catalogue``
(feature definitions, units, references) and ``vasomics://knowledge-base``.

Long tool calls send progress notifications after each stage. Arguments are validated
against their JSON schema (bounded strings and numbers); over HTTP, request bodies above
``max_body_bytes`` are rejected (413) and the server binds to 127.0.0.1 by default.
"""

import json
import logging
from pathlib import Path
from typing import Annotated, Literal

import anyio
import click
from pydantic import Field

from vasomics.agent import tools
from vasomics.chain.phase import PHASES
from vasomics.chain.run import STAGES
from vasomics.errors import InputError, VasomicsError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
PathArg = Annotated[str, Field(min_length=1, max_length=1024,
                               description="File path, absolute or relative to the allowed root")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def build_server(root: str | Path, *, db: str | Path | None = None):
    """The MCP server for files under ``root`` and the cohort database ``db`` (optional)."""
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    if not Path(root).is_dir():
        raise InputError("allowed root is not a folder", root)
    if db is not None and not Path(db).is_file():
        raise InputError("cohort database not found", db)
    root = Path(root).resolve(strict=True)
    db = None if db is None else Path(db).resolve(strict=True)
    server = MCPServer("vasomics", instructions=(
        "Vessel biomarkers from vascular images. Files must lie under "
        f"{root}. Feature definitions: resource vasomics://catalogue; clinical evidence: "
        "tool search_knowledge_base or resource vasomics://knowledge-base."))

    async def stages(ctx: Context, steps):
        """Run blocking ``(message, function)`` steps in a worker thread, reporting
        progress after each; the last step's value is returned. User-fixable problems
        become tool errors."""
        value = None
        for i, (message, fn) in enumerate(steps):
            await ctx.report_progress(i, len(steps), message)
            try:
                value = await anyio.to_thread.run_sync(fn, value)
            except VasomicsError as exc:
                raise ToolError(str(exc)) from None
        await ctx.report_progress(len(steps), len(steps), "done")
        return value

    def image_step(path):
        return ("reading the image", lambda _: tools.read_image_in(root, path))

    @server.tool()
    async def run_qc(path: PathArg, ctx: Context) -> dict:
        """Quality control of a CT volume: header and intensity checks with pass/warn/fail
        verdicts and reasons."""
        return await stages(ctx, [image_step(path), ("checking", tools.qc_of)])

    @server.tool()
    async def recognize_phase(path: PathArg, ctx: Context) -> dict:
        """Contrast phase of an abdominal CT (non-contrast, arterial, portal venous,
        delayed) with calibrated probabilities; localizes the organs first (slow)."""
        return await stages(ctx, [image_step(path), ("localizing organs and recognizing "
                                                     "the phase", tools.phase_of)])

    @server.tool()
    async def characterize_ct(path: PathArg, outdir: PathArg, ctx: Context,
                              phase: Literal["auto", *PHASES] = "auto",  # type: ignore[valid-type]
                              force: bool = False) -> dict:
        """Run the whole CT vessel chain on an abdominal CT (file or DICOM folder): QC,
        contrast phase, organ localization, portal and hepatic venous trees, anatomical
        names, liver vasomics features and a one-page HTML summary, written into `outdir`
        (a new or empty folder inside the allowed root). A scan that fails QC stops with
        the reason unless `force`. Takes about a minute on a full-size CT."""
        n = len(STAGES)

        def report(stage: str) -> None:  # called from the worker thread
            anyio.from_thread.run(ctx.report_progress, STAGES.index(stage), n, stage)

        try:
            value = await anyio.to_thread.run_sync(lambda: tools.characterize_ct(
                root, path, outdir, phase=phase, force=force, progress=report))
        except VasomicsError as exc:
            raise ToolError(str(exc)) from None
        await ctx.report_progress(n, n, "done")
        return value

    @server.tool()
    async def segment_vessels(path: PathArg, output: PathArg, ctx: Context,
                              preset: Name = "cta") -> dict:
        """Segment the vessels of an image with a preset (see vasomics segment) and write
        the mask to a new file `output` inside the allowed root."""
        return await stages(ctx, [image_step(path), (
            "segmenting", lambda img: tools.segment_to(root, img, output, preset))])

    @server.tool()
    async def extract_features(
            mask: PathArg, ctx: Context,
            scopes: Annotated[list[Literal["tree", "vessel", "segment", "bifurcation"]],
                              Field(min_length=1, max_length=4)] = ["tree"],  # noqa: B006
    ) -> list[dict]:
        """Vessel features of a binary vessel mask: centerline graph then the catalogue
        features (ids, values, units) at the requested scopes."""
        box = {}

        def graph(mask_image):
            box["mask"] = mask_image
            return tools.graph_of(mask_image)

        return await stages(ctx, [image_step(mask), ("centerline graph", graph), (
            "features", lambda g: tools.features_of(g, box["mask"], list(scopes)))])

    @server.tool()
    def query_cohort(query: Literal[tuple(tools.QUERIES)],  # type: ignore[valid-type]
                     scan_id: Name | None = None, feature_id: Name | None = None,
                     centre: Name | None = None, modality: Name | None = None,
                     status: Name | None = None,
                     limit: Annotated[int, Field(ge=1, le=1000)] = 100) -> list[dict]:
        """Read-only queries of the cohort database: list_scans (filter by centre,
        modality, status), scan_features, scan_qc (by scan_id), feature_summary (a
        feature per centre and modality), qc_failures."""
        try:
            return tools.query_cohort(db, query, {
                "scan_id": scan_id, "feature_id": feature_id, "centre": centre,
                "modality": modality, "status": status, "limit": limit})
        except VasomicsError as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    async def explain_prediction(model: PathArg, table: PathArg,
                                 row: Annotated[int, Field(ge=0)], ctx: Context,
                                 top: Annotated[int, Field(ge=1, le=50)] = 10) -> dict:
        """Prediction of a saved vasomics model for one row of a feature table (CSV or
        Parquet) and the SHAP contributions of its features."""
        return await stages(ctx, [("explaining", lambda _: tools.explain(
            root, model, table, row, top=top))])

    @server.tool()
    def search_knowledge_base(query: Annotated[str, Field(min_length=1, max_length=500)],
                              k: Annotated[int, Field(ge=1, le=20)] = 5,
                              mode: Literal["auto", "semantic", "keyword"] = "auto",
                              feature_id: Name | None = None) -> list[dict]:
        """Clinical and physiological evidence behind vasomics features, with citations
        (semantic search, keyword fallback); `feature_id` keeps only entries about that
        catalogue feature."""
        from vasomics.agent.knowledge import search

        try:
            return search(query, k, mode, feature_id)
        except VasomicsError as exc:
            raise ToolError(str(exc)) from None

    @server.resource("vasomics://catalogue", mime_type="application/json")
    def catalogue() -> str:
        """The feature catalogue: ids, names, categories, units, definitions, references."""
        from vasomics.features.catalogue import load_catalogue

        return json.dumps(load_catalogue().model_dump())

    @server.resource("vasomics://knowledge-base", mime_type="application/json")
    def knowledge_base() -> str:
        """The curated knowledge base (evidence summaries with citations)."""
        from vasomics.agent.knowledge import load_knowledge_base

        return json.dumps([e.model_dump() for e in load_knowledge_base()])

    return server


def http_app(server, max_body_bytes: int = MAX_BODY_BYTES, host: str = "127.0.0.1"):
    """The streamable HTTP (Starlette) app of ``server`` at ``/mcp``; the SDK's
    DNS-rebinding protection accepts only ``host`` in the Host header."""
    return server.streamable_http_app(max_request_body_size=max_body_bytes, host=host)


@click.command("mcp")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Allowed root: tools read and write files only under it.")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Cohort database for query_cohort (opened read-only).")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio",
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP address.")
@click.option("--port", default=8766, show_default=True, type=int, help="HTTP port.")
def mcp_command(root: Path, db: Path | None, transport: str, host: str, port: int) -> None:
    """Serve vasomics tools and the knowledge base to LLM agents over MCP."""
    server = build_server(root, db=db)
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: the MCP server has no authentication; "
                   f"anyone who can reach it can run its tools", err=True)
    click.echo(f"vasomics MCP server: http://{host}:{port}/mcp", err=True)
    uvicorn.run(http_app(server, host=host), host=host, port=port, log_level="warning")
