"""Offline IAM checks: authorization reference and granted-vs-used."""
