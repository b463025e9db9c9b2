"""The cohort database schema and its migrations.

``MIGRATIONS[i]`` holds the SQL statements that bring a database from schema version ``i``
to ``i + 1``; :data:`SCHEMA_VERSION` is the newest version. A migration never drops data;
it runs inside one transaction together with the row that records it in
``schema_version``, so an interrupted migration leaves the previous version intact.

Tables (all keyed by the manifest's ``scan_id``; no image header value is stored):

* ``subjects``: one row per manifest subject id;
* ``scans``: manifest metadata (subject, centre, modality, pipeline, date, path) and the
  state of the last run (status, input and parameter hashes, file size and mtime);
* ``sessions``: one row per ``vasomics cohort run`` invocation;
* ``runs``: one row per attempt to process a scan (software version, parameter and input
  hashes, start/end in UTC, status, error message, provenance JSON);
* ``qc``, ``segments``, ``features`` (long: scope, feature_id, value, unit): the results
  of the last successful run of each scan;
* ``labels``: clinical labels from the manifest (numeric ``value`` or ``text``).
"""

from __future__ import annotations

SCHEMA_VERSION = 1

#: Tables users may query and export (in a sensible order).
TABLES = ("subjects", "scans", "sessions", "runs", "qc", "segments", "features", "labels",
          "schema_version")

_V1 = [
    """CREATE TABLE subjects (
        subject_id VARCHAR PRIMARY KEY,
        first_seen_utc TIMESTAMP NOT NULL)""",
    """CREATE TABLE scans (
        scan_id VARCHAR PRIMARY KEY,
        subject_id VARCHAR NOT NULL,
        centre VARCHAR NOT NULL,
        modality VARCHAR NOT NULL,
        pipeline VARCHAR NOT NULL,
        acquisition_date DATE,
        path VARCHAR NOT NULL,
        status VARCHAR NOT NULL DEFAULT 'pending',
        input_hash VARCHAR,
        params_hash VARCHAR,
        params_json VARCHAR,
        file_size BIGINT,
        file_mtime_ns BIGINT,
        last_run_id VARCHAR,
        updated_utc TIMESTAMP)""",
    """CREATE TABLE sessions (
        session_id VARCHAR PRIMARY KEY,
        started_utc TIMESTAMP NOT NULL,
        ended_utc TIMESTAMP,
        status VARCHAR NOT NULL,
        manifest VARCHAR,
        executor VARCHAR,
        software_version VARCHAR,
        n_total INTEGER,
        n_done INTEGER,
        n_skipped INTEGER,
        n_failed INTEGER)""",
    """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        session_id VARCHAR,
        scan_id VARCHAR NOT NULL,
        pipeline VARCHAR NOT NULL,
        software_version VARCHAR NOT NULL,
        params_hash VARCHAR NOT NULL,
        input_hash VARCHAR,
        started_utc TIMESTAMP NOT NULL,
        ended_utc TIMESTAMP NOT NULL,
        seconds DOUBLE NOT NULL,
        status VARCHAR NOT NULL,
        error_message VARCHAR,
        error_detail VARCHAR,
        host VARCHAR,
        provenance VARCHAR)""",
    """CREATE TABLE qc (
        scan_id VARCHAR NOT NULL,
        "check" VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        value DOUBLE,
        unit VARCHAR,
        reason VARCHAR,
        PRIMARY KEY (scan_id, "check"))""",
    """CREATE TABLE segments (
        scan_id VARCHAR NOT NULL,
        segment_id INTEGER NOT NULL,
        start_node INTEGER, end_node INTEGER, label VARCHAR, generation INTEGER,
        strahler INTEGER, n_points INTEGER, length_mm DOUBLE, chord_mm DOUBLE,
        mean_radius_mm DOUBLE, min_radius_mm DOUBLE, max_radius_mm DOUBLE,
        start_x_mm DOUBLE, start_y_mm DOUBLE, start_z_mm DOUBLE,
        end_x_mm DOUBLE, end_y_mm DOUBLE, end_z_mm DOUBLE,
        PRIMARY KEY (scan_id, segment_id))""",
    """CREATE TABLE features (
        scan_id VARCHAR NOT NULL,
        scope VARCHAR NOT NULL,
        feature_id VARCHAR NOT NULL,
        value DOUBLE,
        unit VARCHAR,
        PRIMARY KEY (scan_id, scope, feature_id))""",
    """CREATE TABLE labels (
        scan_id VARCHAR NOT NULL,
        subject_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        value DOUBLE,
        text VARCHAR,
        PRIMARY KEY (scan_id, name))""",
    "CREATE INDEX runs_scan ON runs (scan_id)",
    "CREATE INDEX scans_subject ON scans (subject_id)",
    "CREATE INDEX labels_name ON labels (name)",
]

#: ``MIGRATIONS[i]``: statements from version ``i`` to ``i + 1``.
MIGRATIONS: list[list[str]] = [_V1]
assert len(MIGRATIONS) == SCHEMA_VERSION
