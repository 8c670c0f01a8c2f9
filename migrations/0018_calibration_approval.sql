-- A calibration is pending until a lab admin approves it (issue 11): its state, and who decided,
-- when and why. States:
--   pending     stored (imported, or made by the simulated appliance) and awaiting a lab admin's
--               decision; it quantifies nothing.
--   approved    a lab admin approved it (password re-entered, reason given): the one calibration
--               of its lot and echo time that quantifies patient results (`active` = 1).
--   superseded  it was approved, then a later approval for the same lot and echo time replaced it;
--               kept for the runs it counted, never used again.
--   rejected    a lab admin refused it, with a reason; never used.
-- Only pending moves (to approved or rejected); approved moves only to superseded. `active` stays
-- the one-per-lot-and-TE flag its partial unique index guards, written with `state` in the same
-- statement (active = 1 exactly when state = 'approved'). The rule that only an approved
-- calibration quantifies a patient result is `operations::calibrations::quantifies_patient_results`.

ALTER TABLE calibrations ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'approved', 'superseded', 'rejected'));
ALTER TABLE calibrations ADD COLUMN decided_at TEXT;
ALTER TABLE calibrations ADD COLUMN decided_by INTEGER REFERENCES users (id);
ALTER TABLE calibrations ADD COLUMN decision_reason TEXT;

-- Rows from before: an active one was activated (the approval of its time); an inactive one that
-- was ever activated has been replaced; the rest were never approved.
UPDATE calibrations SET state = 'approved' WHERE active = 1;
UPDATE calibrations SET state = 'superseded'
WHERE active = 0
  AND CAST(id AS TEXT) IN (SELECT entity_id FROM audit_log
                           WHERE action = 'calibration.activate' AND entity = 'calibration');

-- The run start's and the set-up checklist's question: is there an approved one for this lot.
CREATE INDEX calibrations_state ON calibrations (reagent_lot, state);
