"""Saga functions: one folder each, `main.py` is the functions-framework entry point."""
