"""``deskpulse import-survey``: NPS/CES/CSAT survey responses from a CSV file into the store.

The import itself is the pipeline's (:func:`sync.survey.import_survey`); this module parses and prints.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sync.cli.context import get_ctx
from sync.survey import import_survey


def register(app: typer.Typer) -> None:
    """Add ``deskpulse import-survey`` to the CLI."""

    @app.command("import-survey")
    def import_survey_command(
        ctx: typer.Context,
        file: Path = typer.Argument(..., help="CSV with email|external_id, score, date[, comment, ticket_id]"),
        kind: str = typer.Option(..., "--kind", help="nps | ces | csat"),
        source: str = typer.Option("survey", "--source", help="source name stored on the ratings"),
        encoding: str = typer.Option("utf-8-sig", "--encoding",
                                     help="file encoding (Excel's CSV export is usually cp1252)"),
    ) -> None:
        """Import NPS/CES/CSAT survey responses from a CSV file."""
        app = get_ctx(ctx)
        store = app.store()
        try:
            report = import_survey(store, file, kind, source, encoding=encoding)
        finally:
            store.close()
        for line, reason in report.errors:
            app.err_console.print(f"line {line}: {reason}", markup=False, highlight=False)
        if report.skipped > len(report.errors):
            app.err_console.print(f"... and {report.skipped - len(report.errors):,} more bad rows", markup=False,
                                  highlight=False)
        app.console.print(f"{report.imported} of {report.rows} {kind} responses imported from {file} "
                          f"({report.matched} matched to people); {report.skipped} skipped",
                          markup=False, highlight=False)
