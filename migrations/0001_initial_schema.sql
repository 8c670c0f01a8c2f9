-- Ferrocount appliance: the initial schema.
-- Times are RFC 3339 UTC text. A NULL `*_by` user means the appliance itself acted.

-- Users, their sessions and API tokens -------------------------------------------------------------

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    username            TEXT    NOT NULL UNIQUE,
    display_name        TEXT    NOT NULL,                 -- printed name used in signatures
    role                TEXT    NOT NULL CHECK (role IN ('operator', 'clinician', 'lab-admin')),
    password_hash       TEXT    NOT NULL,                 -- argon2id PHC string
    disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at          TEXT    NOT NULL,
    password_changed_at TEXT    NOT NULL
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    token_hash   TEXT    NOT NULL UNIQUE,                 -- SHA-256 of the cookie value, hex
    created_at   TEXT    NOT NULL,
    last_seen_at TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    label        TEXT    NOT NULL,
    token_prefix TEXT    NOT NULL,                        -- first characters, to recognise a token
    token_hash   TEXT    NOT NULL UNIQUE,                 -- SHA-256 of the whole token, hex
    created_at   TEXT    NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Patients and samples ------------------------------------------------------------------------------

CREATE TABLE patients (
    id         INTEGER PRIMARY KEY,
    mrn        TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    created_by INTEGER REFERENCES users (id)
);

CREATE TABLE samples (
    id         INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    drawn_at   TEXT    NOT NULL,
    blood_ml   REAL    NOT NULL CHECK (blood_ml > 0),     -- processed blood volume
    indication TEXT,                                      -- e.g. 'breast'; cut-offs live in configuration
    created_at TEXT    NOT NULL,
    created_by INTEGER REFERENCES users (id)
);
CREATE INDEX samples_patient ON samples (patient_id, drawn_at);

CREATE TABLE sample_tubes (
    id        INTEGER PRIMARY KEY,
    sample_id INTEGER NOT NULL REFERENCES samples (id),
    kind      TEXT    NOT NULL,                           -- 'control', 'quad', or a panel option
    label     TEXT    NOT NULL,                           -- the tube's own identifier (barcode)
    UNIQUE (sample_id, kind),
    UNIQUE (sample_id, label)
);

-- Calibrations ---------------------------------------------------------------------------------------

CREATE TABLE calibrations (
    id             INTEGER PRIMARY KEY,
    reagent_lot    TEXT    NOT NULL,
    te_us          INTEGER NOT NULL CHECK (te_us > 0),
    content_format TEXT    NOT NULL CHECK (content_format IN ('toml', 'json')),
    content        TEXT    NOT NULL,
    note           TEXT,
    active         INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    created_at     TEXT    NOT NULL,
    created_by     INTEGER REFERENCES users (id)
);
-- At most one active calibration per reagent lot and echo time.
CREATE UNIQUE INDEX calibrations_one_active ON calibrations (reagent_lot, te_us) WHERE active = 1;

-- Runs, measurements, results --------------------------------------------------------------------------

CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    sample_id      INTEGER NOT NULL REFERENCES samples (id),
    operator_id    INTEGER REFERENCES users (id),
    state          TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'awaiting_tube',
                       'awaiting_release', 'released', 'failed', 'cancelled', 'interrupted')),
    reagent_lot    TEXT,
    calibration_id INTEGER REFERENCES calibrations (id),
    simulated      INTEGER NOT NULL CHECK (simulated IN (0, 1)),
    failure_cause  TEXT,
    queued_at      TEXT    NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    updated_at     TEXT    NOT NULL
);
CREATE INDEX runs_sample ON runs (sample_id);
CREATE INDEX runs_state ON runs (state);

CREATE TABLE measurements (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs (id),
    tube_id           INTEGER NOT NULL REFERENCES sample_tubes (id),
    replicate         INTEGER NOT NULL CHECK (replicate >= 1),
    measured_at       TEXT    NOT NULL,
    echo_count        INTEGER NOT NULL CHECK (echo_count >= 1),
    train_codec       TEXT    NOT NULL,                   -- see appliance::store::train_codec
    train             BLOB    NOT NULL,
    acquisition_json  TEXT    NOT NULL,
    fit_json          TEXT,                               -- nmr_core::fit::MonoFit or a fit error
    qc_flags_json     TEXT    NOT NULL DEFAULT '[]',
    UNIQUE (run_id, tube_id, replicate)
);

CREATE TABLE results (
    id                  INTEGER PRIMARY KEY,
    run_id              INTEGER NOT NULL REFERENCES runs (id),
    version             INTEGER NOT NULL CHECK (version >= 1),
    per_7_5ml           REAL    NOT NULL,
    per_7_5ml_ci95_low  REAL    NOT NULL,
    per_7_5ml_ci95_high REAL    NOT NULL,
    category            TEXT    NOT NULL CHECK (category IN ('not_detected', 'below_loq', 'quantified')),
    call                TEXT    CHECK (call IN ('favorable', 'unfavorable')),
    report_json         TEXT    NOT NULL,                 -- the whole count report (nmr_core::assay)
    reason              TEXT,
    created_at          TEXT    NOT NULL,
    created_by          INTEGER REFERENCES users (id),
    UNIQUE (run_id, version),
    -- the first version has no reason; every correction must give one
    CHECK ((version = 1 AND reason IS NULL)
        OR (version > 1 AND reason IS NOT NULL AND length(trim(reason)) > 0))
);

CREATE TABLE result_signatures (
    id           INTEGER PRIMARY KEY,
    result_id    INTEGER NOT NULL REFERENCES results (id),
    user_id      INTEGER NOT NULL REFERENCES users (id),
    printed_name TEXT    NOT NULL,
    meaning      TEXT    NOT NULL CHECK (meaning IN ('release', 'review')),
    signed_at    TEXT    NOT NULL
);
CREATE INDEX result_signatures_result ON result_signatures (result_id);

-- Quality control -----------------------------------------------------------------------------------

CREATE TABLE qc_materials (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL CHECK (kind IN ('phantom', 'control')),
    analyte    TEXT    NOT NULL,                          -- what is measured, with its unit: 't2_ms', 'cells'
    created_at TEXT    NOT NULL,
    created_by INTEGER REFERENCES users (id)
);

CREATE TABLE qc_lots (
    id          INTEGER PRIMARY KEY,
    material_id INTEGER NOT NULL REFERENCES qc_materials (id),
    lot         TEXT    NOT NULL,
    expires_on  TEXT    NOT NULL,                         -- calendar date, YYYY-MM-DD
    created_at  TEXT    NOT NULL,
    created_by  INTEGER REFERENCES users (id),
    UNIQUE (material_id, lot)
);

CREATE TABLE qc_targets (
    id          INTEGER PRIMARY KEY,
    lot_id      INTEGER NOT NULL REFERENCES qc_lots (id),
    mean        REAL    NOT NULL,
    sd          REAL    NOT NULL CHECK (sd > 0),
    source      TEXT    NOT NULL CHECK (source IN ('established', 'manufacturer')),
    n_values    INTEGER,                                  -- values the target was established from
    created_at  TEXT    NOT NULL,
    created_by  INTEGER REFERENCES users (id)
);
CREATE INDEX qc_targets_lot ON qc_targets (lot_id);

CREATE TABLE qc_results (
    id             INTEGER PRIMARY KEY,
    lot_id         INTEGER NOT NULL REFERENCES qc_lots (id),
    target_id      INTEGER REFERENCES qc_targets (id),
    value          REAL    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('pass', 'warning', 'reject')),
    violations_json TEXT   NOT NULL DEFAULT '[]',         -- Westgard rules broken
    measurement_id INTEGER REFERENCES measurements (id),
    measured_at    TEXT    NOT NULL,
    operator_id    INTEGER REFERENCES users (id),
    comment        TEXT
);
CREATE INDEX qc_results_lot ON qc_results (lot_id, measured_at);

-- Instrument log -----------------------------------------------------------------------------------

CREATE TABLE instrument_log (
    id          INTEGER PRIMARY KEY,
    logged_at   TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('tune', 'nutation', 'temperature', 'error', 'event')),
    run_id      INTEGER REFERENCES runs (id),
    message     TEXT    NOT NULL,
    freq_hz     REAL,
    pulse_us    REAL,
    temp_c      REAL,
    detail_json TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX instrument_log_kind ON instrument_log (kind, logged_at);

-- Audit trail --------------------------------------------------------------------------------------

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    user_id     INTEGER,                                  -- no foreign key: the trail outlives anything
    actor       TEXT    NOT NULL,                         -- 'user:<id>:<username>' or 'appliance'
    action      TEXT    NOT NULL,                         -- e.g. 'user.add', 'run.state'
    entity      TEXT    NOT NULL,
    entity_id   TEXT,
    reason      TEXT,
    detail_json TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL UNIQUE,                  -- a chain cannot fork
    hash        TEXT    NOT NULL UNIQUE
);

-- Records are append-only ------------------------------------------------------------------------------

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;

CREATE TRIGGER measurements_no_update BEFORE UPDATE ON measurements
BEGIN SELECT RAISE(ABORT, 'measurements are raw records: UPDATE refused'); END;
CREATE TRIGGER measurements_no_delete BEFORE DELETE ON measurements
BEGIN SELECT RAISE(ABORT, 'measurements are raw records: DELETE refused'); END;

CREATE TRIGGER results_no_update BEFORE UPDATE ON results
BEGIN SELECT RAISE(ABORT, 'results are versioned: UPDATE refused, add a version with a reason'); END;
CREATE TRIGGER results_no_delete BEFORE DELETE ON results
BEGIN SELECT RAISE(ABORT, 'results are versioned: DELETE refused'); END;

CREATE TRIGGER result_signatures_no_update BEFORE UPDATE ON result_signatures
BEGIN SELECT RAISE(ABORT, 'signatures are records: UPDATE refused'); END;
CREATE TRIGGER result_signatures_no_delete BEFORE DELETE ON result_signatures
BEGIN SELECT RAISE(ABORT, 'signatures are records: DELETE refused'); END;

CREATE TRIGGER qc_results_no_update BEFORE UPDATE ON qc_results
BEGIN SELECT RAISE(ABORT, 'QC results are records: UPDATE refused'); END;
CREATE TRIGGER qc_results_no_delete BEFORE DELETE ON qc_results
BEGIN SELECT RAISE(ABORT, 'QC results are records: DELETE refused'); END;
