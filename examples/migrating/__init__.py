"""Runnable side-by-side examples for docs/migrating.md, one per seed library."""
