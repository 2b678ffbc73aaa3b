"""The report's three documents written to a directory (the CLI's output)."""

from __future__ import annotations

from pathlib import Path

from ami_governance.models.findings import Report
from ami_governance.outputs.render import render_csv, render_html, render_json


def write_reports(report: Report, directory: Path) -> dict[str, Path]:
    """Writes report.json, report.csv and report.html into `directory` (made if missing, files replaced);
    returns format -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = {"json": render_json(report), "csv": render_csv(report), "html": render_html(report)}
    paths: dict[str, Path] = {}
    for fmt, text in documents.items():
        path = directory / f"report.{fmt}"
        # newline="": the CSV already has RFC 4180's CRLF line ends, which text mode would rewrite on Windows.
        path.write_text(text, encoding="utf-8", newline="")
        paths[fmt] = path
    return paths
