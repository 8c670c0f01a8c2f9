-- Corrective actions recorded against a rejected QC result (issue 11 point 8): what was done
-- about a control value the Westgard rules rejected, who recorded it and when. Only a rejected
-- value takes one (`Store::add_corrective_action` checks `qc_results.status` in its transaction;
-- the rule's home is `Operations::record_corrective_action`). Records: never updated or deleted
-- (a wrong entry is followed by a corrected one).

CREATE TABLE qc_corrective_actions (
    id           INTEGER PRIMARY KEY,
    qc_result_id INTEGER NOT NULL REFERENCES qc_results (id),
    action       TEXT    NOT NULL CHECK (length(trim(action)) > 0),
    recorded_at  TEXT    NOT NULL,
    recorded_by  INTEGER REFERENCES users (id)
);
CREATE INDEX qc_corrective_actions_result ON qc_corrective_actions (qc_result_id, id);

CREATE TRIGGER qc_corrective_actions_no_update BEFORE UPDATE ON qc_corrective_actions
BEGIN SELECT RAISE(ABORT, 'corrective actions are records: UPDATE refused'); END;
CREATE TRIGGER qc_corrective_actions_no_delete BEFORE DELETE ON qc_corrective_actions
BEGIN SELECT RAISE(ABORT, 'corrective actions are records: DELETE refused'); END;
