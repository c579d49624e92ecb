"""Benchmarks and synthetic data for ``lcr``.

``bench.synthetic`` writes synthetic datasets in the store format of
:mod:`lcr.datasets.store`; ``bench.bench_*`` modules time parts of the pipeline on them and
record their figures in ``bench/BENCHMARKS.md`` through :mod:`bench.report`.
"""
