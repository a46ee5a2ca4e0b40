-- MLflow's tracking store gets its own database beside churnops' operational one.
CREATE DATABASE mlflow OWNER churnops;
