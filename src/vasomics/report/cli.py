"""``vasomics report``: scan and cohort HTML reports, optionally printed to PDF."""

from __future__ import annotations

from pathlib import Path

import click

from vasomics.cli import progress_bar


@click.group("report")
def report() -> None:
    """Self-contained HTML reports (open offline in any browser; PDF with --pdf)."""


@report.command("scan")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="The scan image, for the maximum-intensity projections.")
@click.option("--db", "cohort_db", type=click.Path(path_type=Path), default=None,
              help="Cohort database: show each feature's position in the cohort.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Report file [default: FOLDER/report.html].")
@click.option("--pdf", is_flag=True, help="Also print the report to PDF (needs chromium).")
def scan_cmd(folder: Path, image: Path | None, cohort_db: Path | None, output: Path | None,
             pdf: bool) -> None:
    """Report of one scan from its output FOLDER (of `vasomics run` or `vasomics features`)."""
    from vasomics.report.scan import load_output_folder, write_scan_report

    with progress_bar(3, "scan report") as bar:
        data = load_output_folder(folder, image=image)
        bar.update(1)
        out = write_scan_report(data, output or folder / "report.html", cohort_db=cohort_db)
        bar.update(1)
        if pdf:
            from vasomics.report.pdf import html_to_pdf

            html_to_pdf(out, out.with_suffix(".pdf"))
        bar.update(1)
    click.echo(str(out))
    if pdf:
        click.echo(str(out.with_suffix(".pdf")))


@report.command("cohort")
@click.argument("db", type=click.Path(path_type=Path))
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="Model folder (vasomics model): include its model card.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Report file (.html).")
@click.option("--pdf", is_flag=True, help="Also print the report to PDF (needs chromium).")
def cohort_cmd(db: Path, model: Path | None, output: Path, pdf: bool) -> None:
    """Report of a cohort database: distributions, missingness, QC failures, model card."""
    from vasomics.report.cohort import write_cohort_report

    out = write_cohort_report(db, output, model=model)
    click.echo(str(out))
    if pdf:
        from vasomics.report.pdf import html_to_pdf

        click.echo(str(html_to_pdf(out, out.with_suffix(".pdf"))))
