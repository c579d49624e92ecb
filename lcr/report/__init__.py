"""Reporting: the metric maths (:mod:`lcr.report.metrics`), the prediction and gold files
(:mod:`lcr.report.predictions`), scoring a file and the gold-label oracle
(:mod:`lcr.report.evaluation`), the paper's tables beside the measured runs
(:mod:`lcr.report.tables`) and the plots (:mod:`lcr.report.plots`).
"""
