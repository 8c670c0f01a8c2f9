-- The hub's sync queue (issue 15; appliance::store::hub_sync): every record this appliance gives
-- its hub, in one order, each with its sequence number (1, 2, 3, … without gaps). A row names
-- its record (a calibration, a QC value, a measurement, a release signature) by row id, or holds
-- a heartbeat's content; the records themselves never change, so a message built again for a
-- resend is the same as the first. `acked_at` is when the hub acknowledged it. Rows are never
-- deleted: the highest row id queued of each kind is that kind's cursor.

CREATE TABLE hub_sync (
    sequence  INTEGER PRIMARY KEY CHECK (sequence >= 1),
    kind      TEXT    NOT NULL CHECK (kind IN ('calibration', 'qc_result', 'measurement',
                                                'released_result', 'heartbeat')),
    record_id INTEGER,
    body_json TEXT,
    queued_at TEXT    NOT NULL,
    acked_at  TEXT,
    CHECK ((kind = 'heartbeat') = (record_id IS NULL)),
    CHECK ((kind = 'heartbeat') = (body_json IS NOT NULL))
);
CREATE UNIQUE INDEX hub_sync_record ON hub_sync (kind, record_id) WHERE record_id IS NOT NULL;

CREATE TRIGGER hub_sync_no_delete BEFORE DELETE ON hub_sync
BEGIN SELECT RAISE(ABORT, 'the hub sync queue keeps every message: DELETE refused'); END;
CREATE TRIGGER hub_sync_keeps_content BEFORE UPDATE OF sequence, kind, record_id, body_json, queued_at ON hub_sync
BEGIN SELECT RAISE(ABORT, 'a queued message does not change: only its acknowledgement is recorded'); END;
