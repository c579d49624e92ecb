"""The paper's published numbers, shipped as package data.

``results.csv`` holds Tables 2-13 (one row per table row: ``table, kind, dataset, subset,
model_or_setting`` and the metrics P@1, P@3, P@5, nDCG@3, nDCG@5; empty where the paper has no
number) and ``dataset_stats.csv`` holds Table 1. :mod:`lcr.tables` reads them.
"""
