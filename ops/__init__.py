"""ops: migrations and operations toolkit for a Panoramax-style picture database and storage."""

__version__ = "0.1.0"
