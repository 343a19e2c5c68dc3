"""Benchmark scripts (run them as scripts; tests import their data readers)."""
