"""editsweep: measure how robustly model-editing methods teach code LLMs an evolved API."""

__version__ = "0.1.0"
