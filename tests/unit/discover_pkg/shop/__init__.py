"""A package for autodiscover tests."""
