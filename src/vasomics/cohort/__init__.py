"""Cohorts: a manifest of scans in, one DuckDB database of results out.

* :mod:`~vasomics.cohort.manifest`: read and validate a CSV/YAML manifest (every problem at
  once, with row and column);
* :mod:`~vasomics.cohort.pipelines`: the registry of per-scan pipelines (``mask``, ``ct``)
  and the task/result types exchanged with workers;
* :mod:`~vasomics.cohort.store`: the DuckDB store (schema in :mod:`~vasomics.cohort.schema`),
  exports and the wide feature matrix;
* :mod:`~vasomics.cohort.runner` and :mod:`~vasomics.cohort.executors`: the resumable
  coordinator, on local processes or a Dask cluster;
* :mod:`~vasomics.cohort.cli`: ``vasomics cohort run|status|query|export|matrix``.

See ``docs/cohort.md``.
"""
