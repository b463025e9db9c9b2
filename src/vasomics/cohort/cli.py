"""``vasomics cohort``: run a manifest into a cohort database and query it.

The progress display lives here (the library only reports counts through a callback).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from vasomics.errors import InputError

_DB = click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path),
                   default=Path("cohort.duckdb"), show_default=True,
                   help="Cohort database (DuckDB file).")


@click.group("cohort")
def cohort() -> None:
    """Run the chain over a cohort (a manifest) into a DuckDB database, and query it."""


@cohort.command("run")
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@_DB
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: one per CPU).")
@click.option("--dask", "dask_address", metavar="ADDRESS", default=None,
              help="Run on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--force", is_flag=True, help="Recompute every scan, even unchanged ones.")
@click.option("--rehash", is_flag=True,
              help="Hash every input, even when its size and modification time are unchanged.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Resolve relative scan paths against DIR and refuse paths outside it.")
@click.option("--params", "params_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Parameter file (YAML) applied to every scan.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=0.0,
              help="Seconds to wait for another runner on the same database to finish.")
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
@click.option("--dry-run", is_flag=True,
              help="Validate the manifest and say which scans would run; change nothing.")
def run_cmd(manifest: Path, db: Path, workers: int | None, dask_address: str | None,
            force: bool, rehash: bool, root: Path | None, params_file: Path | None,
            wait_s: float, no_progress: bool, dry_run: bool) -> None:
    """Process every scan of MANIFEST that needs work; store results in --db.

    Exits with status 1 when some scans failed (they are recorded with their reason)."""
    from vasomics.cohort.executors import DaskExecutor, LocalExecutor
    from vasomics.cohort.manifest import load_manifest
    from vasomics.cohort.runner import run_cohort
    from vasomics.params import read_yaml_mapping

    if dask_address and workers:
        raise click.UsageError("--workers applies to local runs; a Dask cluster sets its own")
    cohort_params = read_yaml_mapping(params_file) if params_file else None
    loaded = load_manifest(manifest, root=root, params=cohort_params)
    if dry_run:
        from vasomics.cohort.runner import plan_cohort

        todo, unchanged = plan_cohort(loaded, db, force=force, rehash=rehash)
        click.echo(f"{manifest}: {len(loaded)} valid scans: {len(todo)} to run, "
                   f"{len(unchanged)} unchanged (dry run: nothing was run or written)")
        for scan_id in todo:
            click.echo(f"  run {scan_id}")
        return
    executor = DaskExecutor(dask_address) if dask_address else LocalExecutor(workers)
    try:
        with _ProgressBar(enabled=not no_progress) as bar:
            summary = run_cohort(loaded, db, executor=executor, force=force, rehash=rehash,
                                 wait_s=wait_s, progress=bar.update)
    finally:
        if isinstance(executor, DaskExecutor):
            executor.close()
    click.echo(f"{db}: {summary.total} scans: {summary.done} done, {summary.skipped} "
               f"unchanged, {summary.failed} failed in {summary.seconds:.1f} s "
               f"({summary.executor})")
    for scan_id, reason in summary.failures:
        click.echo(f"  failed {scan_id}: {reason}", err=True)
    if summary.failed:
        sys.exit(1)


@cohort.command("status")
@_DB
def status_cmd(db: Path) -> None:
    """Counts by status, centre and modality; recent runs; failed scans with reasons. While
    a run holds the database, shows its progress instead."""
    from vasomics.cohort.store import CohortStore, StoreBusyError, progress_path

    try:
        store = CohortStore.open(db, read_only=True)
    except StoreBusyError:
        info = _read_progress(progress_path(db))
        if info is None:
            raise
        elapsed = time.time() - info["started_unix"]
        click.echo(f"{db}: run in progress (pid {info['pid']}, {info['executor']}): "
                   f"{info['done']} done, {info['skipped']} unchanged, {info['failed']} "
                   f"failed of {info['total']} after {elapsed:.0f} s")
        return
    with store:
        s = store.status_summary()
    from rich.console import Console

    console = Console()
    counts = ", ".join(f"{n} {k}" for k, n in s["by_status"].items()) or "no scans"
    # plain echo: the summary line must not be re-wrapped by rich at the terminal width
    click.echo(f"{db}: schema {s['schema_version']}; scans: {counts}; "
               f"{s['n_features']} feature values")
    _print_frame(console, s["by_centre"], "scans by centre and modality")
    _print_frame(console, s["sessions"], "latest runs")
    if len(s["failed"]):
        _print_frame(console, s["failed"], "failed scans")


@cohort.command("query")
@click.argument("sql")
@_DB
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the result to a .parquet, .csv or .json file instead.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="How to print the result.")
def query_cmd(sql: str, db: Path, output: Path | None, fmt: str) -> None:
    """Run SQL on the database, opened read-only (tables: subjects, scans, sessions, runs,
    qc, segments, features, labels, schema_version)."""
    from vasomics.cohort.store import CohortStore

    with CohortStore.open(db, read_only=True) as store:
        frame = store.query(sql)
    if output is not None:
        _write_frame(frame, output)
        click.echo(f"{output}: {len(frame)} rows")
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso"))
    else:
        from rich.console import Console

        _print_frame(Console(), frame, None)


@cohort.command("export")
@click.argument("table")
@_DB
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .parquet, .csv or .tsv.")
def export_cmd(table: str, db: Path, output: Path) -> None:
    """Export one TABLE of the database (e.g. features) to Parquet or CSV."""
    from vasomics.cohort.store import CohortStore

    with CohortStore.open(db, read_only=True) as store:
        store.export(table, output)
    click.echo(str(output))


@cohort.command("matrix")
@_DB
@click.option("--features", "features", multiple=True,
              help="Feature ids (comma-separated or repeated; * and ? wildcards). "
                   "Default: every feature of the scope.")
@click.option("--scope", default="tree", show_default=True, help="Feature scope.")
@click.option("--no-labels", is_flag=True, help="Leave out the clinical label columns.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .parquet or .csv.")
def matrix_cmd(db: Path, features: tuple[str, ...], scope: str, no_labels: bool,
               output: Path) -> None:
    """Write the wide feature matrix: one row per successfully processed scan."""
    from vasomics.cohort.store import CohortStore

    wanted = [f.strip() for item in features for f in item.split(",") if f.strip()]
    with CohortStore.open(db, read_only=True) as store:
        frame = store.matrix(wanted or None, scope=scope, labels=not no_labels)
    _write_frame(frame, output)
    click.echo(f"{output}: {len(frame)} scans x {frame.shape[1]} columns")


# ----------------------------------------------------------------------------- helpers
def _write_frame(frame, output: Path) -> None:
    from vasomics.io.atomic import atomic_file

    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".csv", ".json"):
        raise InputError("output must end in .parquet, .csv or .json", output)
    with atomic_file(output) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            frame.to_csv(tmp, index=False, float_format="%.10g")
        else:
            frame.to_json(tmp, orient="records", date_format="iso")


def _print_frame(console, frame, title: str | None, max_rows: int = 50) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.head(max_rows).itertuples(index=False):
        table.add_row(*("" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)
                        for v in row))
    console.print(table)
    if len(frame) > max_rows:
        console.print(f"... {len(frame) - max_rows} more rows (use -o FILE or --format csv)")


def _read_progress(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class _ProgressBar:
    """A rich progress bar on stderr: scans run so far with done / unchanged / failed counts
    and the ETA of the scans that need work."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.progress = None
        self.task = None

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("cohort"), BarColumn(), MofNCompleteColumn(),
                TextColumn("done {task.fields[done]} · unchanged {task.fields[skipped]} · "
                           "failed {task.fields[failed]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self.progress.start()
        return self

    def update(self, counts: dict[str, int]) -> None:
        if self.progress is None:
            return
        todo = counts["total"] - counts["skipped"]
        if self.task is None:
            self.task = self.progress.add_task("cohort", total=todo, done=0, skipped=0,
                                               failed=0)
        self.progress.update(self.task, total=todo, completed=counts["done"] + counts["failed"],
                             done=counts["done"], skipped=counts["skipped"],
                             failed=counts["failed"])

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()
