"""Fixtures shared across test modules: the test upstream and a running local engine.

Filled in with the local engine (see docs/ARCHITECTURE.md, "Shared test fixtures").
"""
