"""Training on Spark (``churnops train --engine spark``): the same artifact as a local run.

The contract, validation, encoding and fitting run on the workers; the driver gets one
label and one out-of-fold probability per row and finishes with the local trainer's own
calibration, threshold, metrics and explanations. Registration is the local one
(:func:`churnops.stages.train_and_register` with ``engine="spark"``): the same MLflow run,
tags, metrics, artifact files and aliases, so the API, batch scoring and monitoring load
the version unchanged. See ``docs/spark-training.md``.
"""

from churnops.training.spark.run import train_spark

__all__ = ["train_spark"]
