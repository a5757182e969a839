"""Command-line client of the Secret Race Strolling platform."""

__version__ = "0.1.0"
