"""Serving a trained model: the in-process predictor (:mod:`lcr.serve.predictor`), the MLflow
pyfunc model and its logging (:mod:`lcr.serve.pyfunc`, logged from :mod:`lcr.serve.pyfunc_code`;
Spark scoring through it) and scoring a whole file (:mod:`lcr.serve.batch_scoring`). It reuses
the models and the labels, never the training loop.
"""
