"""The models-from-code file MLflow logs with every churnops model (see ``pyfunc.py``).

MLflow copies this file into the model and runs it at load time instead of unpickling a
Python object: it only names the pyfunc class that lives in the installed package.
"""

from mlflow.models import set_model

from churnops.registry.pyfunc import ChurnModel

set_model(ChurnModel())
