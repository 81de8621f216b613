"""Deployment infrastructure loaded by a Dagster instance, not by the pipeline: the cluster profile's run
launcher (`celery_launcher.py`, configured in `deploy/cluster/dagster.yaml`)."""
