"""The ``vasomics`` command line: one command group per area, loaded lazily.

Errors the user can fix (:class:`~vasomics.errors.VasomicsError`) print one line on stderr
and exit non-zero; ``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from vasomics.errors import VasomicsError

#: Sub-commands: name -> "module:attribute" of a click command or group. Each area adds
#: its own line; modules are imported only when their command runs.
COMMANDS: dict[str, str] = {
    "features": "vasomics.features.cli:features_command", "demo": "vasomics.demo:demo_command",
    "cohort": "vasomics.cohort.cli:cohort",
    "model": "vasomics.model.cli:model",
    "us": "vasomics.ultrasound.cli:us",
    "io": "vasomics.io.cli:io_group",
    "run": "vasomics.chain.run:run_command",
    "segment": "vasomics.chain.segment.cli:segment_command", "segmenter": "vasomics.chain.segment.cli:segmenter",
    "report": "vasomics.report.cli:report", "serve": "vasomics.web.app:serve_command", "mcp": "vasomics.agent.server:mcp_command",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str):
        if name in COMMANDS:
            module_name, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
@click.version_option(package_name="vasomics")
def cli(debug: bool, verbose: bool) -> None:
    """vasomics: standardized, validated vessel biomarkers from vascular images."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def progress_bar(length: int, label: str, quiet: bool = False, **options):
    """A click progress bar on stderr, drawn on a terminal only: a log or pipe gets no bar
    lines (an error stays one line), and ``quiet`` hides it everywhere. ``options`` go to
    :func:`click.progressbar`."""
    return click.progressbar(length=length, label=label, file=sys.stderr,
                             hidden=quiet or not sys.stderr.isatty(), **options)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user-fixable errors into one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="vasomics", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vasomics: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        if debug:
            raise
        click.echo(f"vasomics: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except VasomicsError as exc:
        if debug:
            raise
        click.echo(f"vasomics: error: {exc}", err=True)
        return exc.exit_code
    except MemoryError:
        if debug:
            raise
        click.echo("vasomics: error: out of memory (try a smaller region or a coarser grid)",
                   err=True)
        return 1
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if debug:
            raise
        click.echo(f"vasomics: internal error: {type(exc).__name__}: {exc} "
                   f"(run with --debug for the traceback)", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
