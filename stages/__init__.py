"""Thin DVC stage entry points (``python -m stages.<stage> ...``), one per stage in dvc.yaml.

Each stage only hands its arguments to the ``lcr`` command line, which maps onto the library.
"""
