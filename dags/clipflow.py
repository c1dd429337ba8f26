"""Airflow DAG file: point Airflow's dags_folder here (see docs/runners.md, "Airflow")."""
from pipeline.runners.airflow import dag_from_environment

DAG = dag_from_environment()
