"""A notebook-friendly real-time dashboard toolkit."""

__version__ = "0.1.0"
