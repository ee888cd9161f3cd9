"""xqg: cross-lingual query generation (xQG) for dense retrieval, as a reproducible study."""

__version__ = "0.1.0"
