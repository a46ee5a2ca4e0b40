"""Training on Spark (``churnops train --engine spark``): the same artifact as a local run.

The contract, validation, encoding and fitting run on the workers; the driver gets one
label and one out-of-fold probability per row and finishes with the local trainer's own
calibration, threshold, metrics and explanations. See ``docs/spark-training.md``.
"""

from churnops.training.spark.register import train_and_register_spark
from churnops.training.spark.run import train_spark

__all__ = ["train_and_register_spark", "train_spark"]
