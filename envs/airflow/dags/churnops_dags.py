"""churnops's four DAGs (data quality, training, scoring, monitoring) for Airflow 3.

Put this file in Airflow's dags folder (or point ``AIRFLOW__CORE__DAGS_FOLDER`` here). The
DAGs read ``CHURNOPS_PIPELINE_SOURCE`` and keep their state in ``CHURNOPS_HOME`` (or
``churnops.yaml`` in the worker's directory); see docs/airflow.md. For another table, add
``build_dags("other.parquet", home="/srv/churnops-other", prefix="churnops_other")``.
"""

from churnops.orchestration.airflow import build_dags

globals().update(build_dags())
