-- Positive patient identification and the specimen (issue 11):
--
-- * patients: the second identifier `birth_date` (calendar date, YYYY-MM-DD), a name or initials
--   only where the site's configuration asks for them (minimum necessary: NULL otherwise), and
--   the patient's indication (it sets the cut-off; a change is audited with its reason, in the
--   audit trail, by `Store::change_patient_indication`).
-- * samples: the specimen's accession number (unique; what the lab's label or barcode says) and,
--   when a run was ordered for an indication other than the patient's, the reason given for that
--   explicit override.
-- * qc_materials: the control level (`negative`, `positive`) of a control material; phantoms
--   have none.
-- * qc_results: the reagent lot a control value was measured with (the QC gate asks for passing
--   QC today for the run's reagent lot at both control levels).
--
-- Existing databases are backfilled: a patient's indication is that of their newest sample
-- that has one; a sample recorded before accession numbers gets `LEGACY-<sample id>` (marking it
-- as not from a label); a birth date, a control level and a QC value's reagent lot cannot be
-- known and stay NULL (not recorded: the next run of such a patient records the birth date; a
-- control material without a level counts for no level until a lab admin sets it; an old QC
-- value counts for no reagent lot).

ALTER TABLE patients ADD COLUMN birth_date TEXT
    CHECK (birth_date IS NULL OR (length(birth_date) = 10 AND date(birth_date) = birth_date));
ALTER TABLE patients ADD COLUMN name TEXT CHECK (name IS NULL OR length(trim(name)) > 0);
ALTER TABLE patients ADD COLUMN initials TEXT CHECK (initials IS NULL OR length(trim(initials)) > 0);
ALTER TABLE patients ADD COLUMN indication TEXT;

UPDATE patients SET indication = (
    SELECT s.indication FROM samples s
    WHERE s.patient_id = patients.id AND s.indication IS NOT NULL
    ORDER BY s.drawn_at DESC, s.id DESC LIMIT 1
);

ALTER TABLE samples ADD COLUMN accession TEXT;
ALTER TABLE samples ADD COLUMN indication_override_reason TEXT
    CHECK (indication_override_reason IS NULL OR length(trim(indication_override_reason)) > 0);
UPDATE samples SET accession = 'LEGACY-' || id;
CREATE UNIQUE INDEX samples_accession ON samples (accession);
-- ALTER TABLE cannot add a NOT NULL column without a default: new rows are held to it here.
CREATE TRIGGER samples_accession_required BEFORE INSERT ON samples
WHEN NEW.accession IS NULL OR length(trim(NEW.accession)) = 0
BEGIN SELECT RAISE(ABORT, 'a sample needs its accession number'); END;
CREATE TRIGGER samples_accession_kept BEFORE UPDATE OF accession ON samples
BEGIN SELECT RAISE(ABORT, 'a sample''s accession number is never changed'); END;

ALTER TABLE qc_materials ADD COLUMN control_level TEXT
    CHECK (control_level IS NULL OR control_level IN ('negative', 'positive'));
CREATE TRIGGER qc_materials_level_only_for_controls BEFORE INSERT ON qc_materials
WHEN NEW.control_level IS NOT NULL AND NEW.kind <> 'control'
BEGIN SELECT RAISE(ABORT, 'only a control material has a control level'); END;

ALTER TABLE qc_results ADD COLUMN reagent_lot TEXT;
CREATE INDEX qc_results_reagent_lot ON qc_results (reagent_lot, measured_at);
