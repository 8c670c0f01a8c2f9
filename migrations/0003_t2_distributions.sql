-- The T2 distribution of each measurement's echo train (regularised NNLS), computed once by the
-- engine when the train is measured, instead of on every view of the run's report.
--
-- A table of its own beside `measurements` (which refuse UPDATE): a measurement stored before
-- this migration has no row here, and gets one the first time its run is viewed (computed from
-- its stored raw train by the operations layer and inserted, never recomputed afterwards).
-- `distribution_json` is the store's `T2Distribution` (the bins and amplitudes, or why the
-- inversion failed), decoded once in the store. Rows are derived records: never updated or
-- deleted.

CREATE TABLE t2_distributions (
    measurement_id INTEGER PRIMARY KEY REFERENCES measurements (id),
    distribution_json TEXT NOT NULL,
    computed_at TEXT NOT NULL
);

CREATE TRIGGER t2_distributions_no_update BEFORE UPDATE ON t2_distributions
BEGIN SELECT RAISE(ABORT, 't2 distributions are derived records: UPDATE refused'); END;
CREATE TRIGGER t2_distributions_no_delete BEFORE DELETE ON t2_distributions
BEGIN SELECT RAISE(ABORT, 't2 distributions are derived records: DELETE refused'); END;
