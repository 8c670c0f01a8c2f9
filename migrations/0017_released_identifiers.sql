-- The patient's identifiers as released (issue 14): what the hospital's messages say about the
-- patient, taken with the release.
--
-- A message is rendered from the stored result version when it is sent, which can be much later
-- than the release (a destination down, a parked message resent after a fix). Its patient
-- identifiers must be the ones the clinician released under, not whatever the patient's record
-- says by then: a release (the first, or a correction's) copies the patient's MRN, date of birth,
-- name and initials (each NULL where the record holds none; name and initials only where the
-- site keeps them) into this table in the release's own transaction, and the HL7 v2 and FHIR
-- messages, and the served FHIR view, read them from here. A correction's release takes them
-- again. Rows are never changed or deleted.
--
-- Existing databases: a version released before this migration gets the patient's identifiers
-- as they stand now (the best that can be known; nothing edits a patient's MRN, name or initials,
-- and a date of birth is only ever added where none was recorded).
CREATE TABLE released_identifiers (
    result_id INTEGER PRIMARY KEY REFERENCES results (id),
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    mrn TEXT NOT NULL CHECK (length(trim(mrn)) > 0),
    birth_date TEXT
        CHECK (birth_date IS NULL OR (length(birth_date) = 10 AND date(birth_date) = birth_date)),
    name TEXT CHECK (name IS NULL OR length(trim(name)) > 0),
    initials TEXT CHECK (initials IS NULL OR length(trim(initials)) > 0),
    taken_at TEXT NOT NULL
);
CREATE TRIGGER released_identifiers_kept BEFORE DELETE ON released_identifiers
BEGIN SELECT RAISE(ABORT, 'DELETE refused: the identifiers a result was released under are kept'); END;
CREATE TRIGGER released_identifiers_fixed BEFORE UPDATE ON released_identifiers
BEGIN SELECT RAISE(ABORT, 'UPDATE refused: the identifiers a result was released under are fixed'); END;

INSERT INTO released_identifiers (result_id, patient_id, mrn, birth_date, name, initials, taken_at)
SELECT r.id, p.id, p.mrn, p.birth_date, p.name, p.initials,
       (SELECT MAX(sig.signed_at) FROM result_signatures sig
        WHERE sig.result_id = r.id AND sig.meaning = 'release')
FROM results r
JOIN runs ON runs.id = r.run_id
JOIN samples s ON s.id = runs.sample_id
JOIN patients p ON p.id = s.patient_id
WHERE EXISTS (SELECT 1 FROM result_signatures sig
              WHERE sig.result_id = r.id AND sig.meaning = 'release');
