-- The hub's schema: the fleet (appliances, one-time enrolment codes), what the appliances sent
-- (ingested messages and the records they carried, exactly as sent), and the hub's own
-- hash-chained audit trail. Forward-only, like the appliance's migrations.
--
-- Records the appliances sent are never changed or deleted: triggers refuse it. An appliance's
-- row changes only when it is revoked (once).

-- The fleet ------------------------------------------------------------------------------------------

CREATE TABLE appliances (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    serial          TEXT        NOT NULL CHECK (length(serial) BETWEEN 1 AND 100),
    enrolled_at     TIMESTAMPTZ NOT NULL,
    enrolled_by     TEXT        NOT NULL,                 -- who issued the enrolment code
    credential_hash TEXT        NOT NULL UNIQUE,          -- SHA-256 of the bearer credential, hex
    revoked_at      TIMESTAMPTZ,
    revoked_by      TEXT,
    revoked_reason  TEXT,
    CHECK ((revoked_at IS NULL AND revoked_by IS NULL AND revoked_reason IS NULL)
        OR (revoked_at IS NOT NULL AND revoked_by IS NOT NULL AND length(trim(revoked_reason)) > 0))
);
-- One enrolled, unrevoked appliance per serial.
CREATE UNIQUE INDEX appliances_serial_active ON appliances (serial) WHERE revoked_at IS NULL;

CREATE TABLE enrolment_codes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_hash       TEXT        NOT NULL UNIQUE,          -- SHA-256 of the code, hex
    appliance_name  TEXT        NOT NULL CHECK (length(appliance_name) BETWEEN 1 AND 100),
    issued_at       TIMESTAMPTZ NOT NULL,
    issued_by       TEXT        NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL CHECK (expires_at > issued_at),
    used_at         TIMESTAMPTZ,
    appliance_id    BIGINT REFERENCES appliances (id),    -- the appliance it enrolled
    CHECK ((used_at IS NULL) = (appliance_id IS NULL))
);

-- What the appliances sent -----------------------------------------------------------------------

CREATE TABLE ingested_messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appliance_id    BIGINT      NOT NULL REFERENCES appliances (id),
    sequence        BIGINT      NOT NULL CHECK (sequence >= 1),
    message_id      TEXT        NOT NULL UNIQUE,
    kind            TEXT        NOT NULL CHECK (kind IN ('released_result', 'measurement',
                                    'qc_result', 'calibration', 'heartbeat')),
    content_sha256  TEXT        NOT NULL,                 -- of the message's canonical content
    received_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (appliance_id, sequence)
);

CREATE TABLE released_results (
    message_id          BIGINT           PRIMARY KEY REFERENCES ingested_messages (id),
    appliance_id        BIGINT           NOT NULL REFERENCES appliances (id),
    run_id              BIGINT           NOT NULL,        -- the appliance's run id
    version             INTEGER          NOT NULL CHECK (version >= 1),
    patient_mrn         TEXT             NOT NULL,
    patient_birth_date  TEXT,
    accession           TEXT,
    drawn_at            TEXT             NOT NULL,        -- RFC 3339, as the appliance stored it
    per_7_5ml           DOUBLE PRECISION NOT NULL,
    per_7_5ml_ci95_low  DOUBLE PRECISION NOT NULL,
    per_7_5ml_ci95_high DOUBLE PRECISION NOT NULL,
    category            TEXT             NOT NULL,
    call                TEXT,
    report_json         TEXT             NOT NULL,
    reason              TEXT,
    created_at          TEXT             NOT NULL,
    UNIQUE (appliance_id, run_id, version)
);
CREATE INDEX released_results_patient ON released_results (patient_mrn, drawn_at);

CREATE TABLE result_signatures (
    message_id      BIGINT  NOT NULL REFERENCES released_results (message_id),
    position        INTEGER NOT NULL CHECK (position >= 1),
    printed_name    TEXT    NOT NULL,
    meaning         TEXT    NOT NULL,
    signed_at       TEXT    NOT NULL,
    PRIMARY KEY (message_id, position)
);

CREATE TABLE measurements (
    message_id       BIGINT  PRIMARY KEY REFERENCES ingested_messages (id),
    appliance_id     BIGINT  NOT NULL REFERENCES appliances (id),
    measurement_id   BIGINT  NOT NULL,                    -- the appliance's measurement id
    run_id           BIGINT  NOT NULL,
    tube_kind        TEXT    NOT NULL,
    tube_label       TEXT    NOT NULL,
    replicate        INTEGER NOT NULL CHECK (replicate >= 1),
    measured_at      TEXT    NOT NULL,
    echo_count       INTEGER NOT NULL CHECK (echo_count >= 1),
    train_codec      TEXT    NOT NULL,
    train            BYTEA   NOT NULL,                    -- compressed as on the appliance
    acquisition_json TEXT    NOT NULL,
    fit_json         TEXT,
    qc_flags_json    TEXT    NOT NULL,
    UNIQUE (appliance_id, measurement_id)
);
CREATE INDEX measurements_run ON measurements (appliance_id, run_id);

CREATE TABLE qc_results (
    message_id      BIGINT           PRIMARY KEY REFERENCES ingested_messages (id),
    appliance_id    BIGINT           NOT NULL REFERENCES appliances (id),
    qc_result_id    BIGINT           NOT NULL,
    material        TEXT             NOT NULL,
    lot             TEXT             NOT NULL,
    value           DOUBLE PRECISION NOT NULL,
    status          TEXT             NOT NULL,
    violations_json TEXT             NOT NULL,
    measurement_id  BIGINT,
    measured_at     TEXT             NOT NULL,
    comment         TEXT,
    UNIQUE (appliance_id, qc_result_id)
);
CREATE INDEX qc_results_material ON qc_results (material, lot, measured_at);

CREATE TABLE calibrations (
    message_id      BIGINT  PRIMARY KEY REFERENCES ingested_messages (id),
    appliance_id    BIGINT  NOT NULL REFERENCES appliances (id),
    calibration_id  BIGINT  NOT NULL,
    reagent_lot     TEXT    NOT NULL,
    te_us           INTEGER NOT NULL CHECK (te_us > 0),
    content_format  TEXT    NOT NULL,
    content         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    UNIQUE (appliance_id, calibration_id)
);

CREATE TABLE heartbeats (
    message_id       BIGINT PRIMARY KEY REFERENCES ingested_messages (id),
    appliance_id     BIGINT NOT NULL REFERENCES appliances (id),
    at               TEXT   NOT NULL,
    software_version TEXT   NOT NULL,
    board_status     TEXT   NOT NULL,
    pending_messages BIGINT NOT NULL CHECK (pending_messages >= 0)
);
CREATE INDEX heartbeats_appliance ON heartbeats (appliance_id, message_id);

-- The hub's audit trail (the chaining rule of hub_protocol::audit_chain) ---------------------------

CREATE TABLE audit_log (
    id          BIGINT PRIMARY KEY CHECK (id >= 1),
    at          TEXT   NOT NULL,
    user_id     BIGINT,
    actor       TEXT   NOT NULL,                          -- 'console', 'appliance:<id>:<serial>', …
    action      TEXT   NOT NULL,
    entity      TEXT   NOT NULL,
    entity_id   TEXT,
    reason      TEXT,
    detail_json TEXT   NOT NULL,
    prev_hash   TEXT   NOT NULL UNIQUE,                   -- a chain cannot fork
    hash        TEXT   NOT NULL UNIQUE
);

-- Records are append-only ------------------------------------------------------------------------

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ingested_messages_append_only BEFORE UPDATE OR DELETE ON ingested_messages
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER released_results_append_only BEFORE UPDATE OR DELETE ON released_results
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER result_signatures_append_only BEFORE UPDATE OR DELETE ON result_signatures
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER measurements_append_only BEFORE UPDATE OR DELETE ON measurements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER qc_results_append_only BEFORE UPDATE OR DELETE ON qc_results
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER calibrations_append_only BEFORE UPDATE OR DELETE ON calibrations
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER heartbeats_append_only BEFORE UPDATE OR DELETE ON heartbeats
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
