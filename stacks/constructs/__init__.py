"""Reusable constructs, one per module."""
