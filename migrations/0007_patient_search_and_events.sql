-- The clinician's lists and trend (issue 11 point 6):
--
-- * patients_birth_date: the patient list searches by date of birth (the second identifier) as
--   well as by MRN prefix; pages are ordered by MRN (keyset paging, one indexed query a page).
-- * runs_state_id: the worklist of results awaiting release pages through one state by run id.
-- * patient_events: treatment or event markers a clinician adds to a patient's trend (what, on
--   which day, who recorded it and when). Records: never updated or deleted (a wrong marker is
--   left and a corrected one added, as every record here).

CREATE INDEX patients_birth_date ON patients (birth_date, mrn);
CREATE INDEX runs_state_id ON runs (state, id);

CREATE TABLE patient_events (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER NOT NULL REFERENCES patients (id),
    occurred_on TEXT    NOT NULL CHECK (length(occurred_on) = 10 AND date(occurred_on) = occurred_on),
    label       TEXT    NOT NULL CHECK (length(trim(label)) BETWEEN 1 AND 200),
    recorded_at TEXT    NOT NULL,
    recorded_by INTEGER REFERENCES users (id)
);
CREATE INDEX patient_events_patient ON patient_events (patient_id, occurred_on);
CREATE TRIGGER patient_events_no_update BEFORE UPDATE ON patient_events
BEGIN SELECT RAISE(ABORT, 'a patient event marker is a record: never changed'); END;
CREATE TRIGGER patient_events_no_delete BEFORE DELETE ON patient_events
BEGIN SELECT RAISE(ABORT, 'a patient event marker is a record: never deleted'); END;
