"""Shared library of the order saga: settings, database, events, step runtime, local runtime."""
