"""`kubenas dashboard`: a live web view of experiments, local runs or the cluster's.

`source.DataSource` is what the pages read; `local_source.LocalSource` reads `kubenas run`
work directories and `cluster_source.ClusterSource` the Kubernetes API and the DBManager;
`app.create_app` serves one of them; `server.serve` runs it.
"""
