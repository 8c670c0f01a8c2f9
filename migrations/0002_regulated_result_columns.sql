-- The values a regulated rule reads become columns of `results`, so no rule reads the report's
-- JSON by key: the release gate reads `qc_hold`; trends, lists and exports read the category,
-- the call, the indication and its cut-off, and whether the interval spans the cut-off.
-- (Category and call were columns from the start; the release state is `runs.state` with the
-- signatures in `result_signatures`.)
--
-- Existing databases are backfilled from each version's stored report. A report without a
-- `qc_hold` value is held (1): the safe reading of a record that does not say.

ALTER TABLE results ADD COLUMN indication TEXT;
ALTER TABLE results ADD COLUMN cutoff_per_7_5ml REAL CHECK (cutoff_per_7_5ml > 0);
ALTER TABLE results ADD COLUMN interval_spans_cutoff INTEGER CHECK (interval_spans_cutoff IN (0, 1));
ALTER TABLE results ADD COLUMN qc_hold INTEGER NOT NULL DEFAULT 1 CHECK (qc_hold IN (0, 1));

-- Result versions refuse UPDATE; the backfill is the one exception, inside this migration.
DROP TRIGGER results_no_update;

UPDATE results SET
    indication = json_extract(report_json, '$.indication'),
    cutoff_per_7_5ml = json_extract(report_json, '$.cutoff_per_7_5ml'),
    interval_spans_cutoff = json_extract(report_json, '$.call_interval_spans_cutoff'),
    qc_hold = COALESCE(json_extract(report_json, '$.qc_hold'), 1);

CREATE TRIGGER results_no_update BEFORE UPDATE ON results
BEGIN SELECT RAISE(ABORT, 'results are versioned: UPDATE refused, add a version with a reason'); END;
