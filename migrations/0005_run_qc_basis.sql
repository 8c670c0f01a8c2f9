-- The QC a run's result relied on (issue 11, point 1): whenever the QC gate is judged for a run
-- (at its start under `[qc] policy = "require_passing"`, and at its release), the control
-- values it relied on are stored here as they were judged then: level, material, lot, time and
-- verdict. A report names them from here and never recomputes them later (a control value
-- recorded afterwards, or a target changed since, does not change what a result relied on).
-- Rows are never changed or removed.

CREATE TABLE run_qc_basis (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (id),
    judged_for    TEXT    NOT NULL CHECK (judged_for IN ('start', 'release')),
    judged_at     TEXT    NOT NULL,
    qc_result_id  INTEGER NOT NULL REFERENCES qc_results (id),
    control_level TEXT    NOT NULL CHECK (control_level IN ('negative', 'positive')),
    material      TEXT    NOT NULL,
    qc_lot        TEXT    NOT NULL,
    measured_at   TEXT    NOT NULL,
    verdict       TEXT    NOT NULL CHECK (verdict IN ('pass', 'warning', 'reject'))
);
CREATE INDEX run_qc_basis_run ON run_qc_basis (run_id, judged_at);

CREATE TRIGGER run_qc_basis_no_update BEFORE UPDATE ON run_qc_basis
BEGIN SELECT RAISE(ABORT, 'the QC a result relied on is kept as judged: UPDATE refused'); END;
CREATE TRIGGER run_qc_basis_no_delete BEFORE DELETE ON run_qc_basis
BEGIN SELECT RAISE(ABORT, 'the QC a result relied on is kept as judged: DELETE refused'); END;
