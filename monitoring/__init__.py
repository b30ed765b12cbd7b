"""The monitoring files shipped with the package: alerting rules and a Grafana dashboard for the ``ops_*``
metrics (``importlib.resources.files("ops.monitoring")``)."""
