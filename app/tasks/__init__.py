"""Thin Celery tasks taking ids: load the row, call evaluation/ and services/, nothing else."""
