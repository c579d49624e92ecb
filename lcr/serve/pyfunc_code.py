"""The file MLflow runs to build the served model ("models from code", logged by
:func:`lcr.serve.pyfunc.log_model`): the logged model holds this file, the ``lcr`` package and the
model folder, and no pickled Python object."""

import mlflow

from lcr.serve.pyfunc import LabelCoRankPyfunc

mlflow.models.set_model(LabelCoRankPyfunc())
