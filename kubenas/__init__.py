"""kubenas core: the spec, search spaces, metric format and generated API. Imports nothing of ours."""

__version__ = "0.1.0"
__all__ = ["__version__"]
