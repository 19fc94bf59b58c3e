"""The package version, in a module of its own so the pure core can name it without importing
the package's public surface (and, through it, itself)."""

__version__ = "0.1.0"
