"""Embedded CPU-scale demo pipelines called by `src/demo.py`."""
