"""The report's outputs: JSON (with a versioned JSON Schema), CSV and a self-contained HTML page (render), the SNS
summary and the metrics (summary), and the three files on disk for the CLI (local). Pure except `local`, which
writes files; adapters/report_store.py puts the same three documents in S3."""
