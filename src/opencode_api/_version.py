"""The package version (single source for setup.cfg and /health)."""

__version__ = "0.1.0"
