-- The live view's history of a run (issue 11 point 9): every event the engine published about a
-- run, in order, as the live view received it (`event`: its name, `data`: its JSON), so a view
-- opened late, or reconnecting, replays what it missed. A progress log, not a clinical record
-- (the runs, measurements and results tables are those): never changed or deleted.

CREATE TABLE run_events (
    id     INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    at     TEXT    NOT NULL,
    event  TEXT    NOT NULL CHECK (length(event) BETWEEN 1 AND 40),
    data   TEXT    NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, id);
CREATE TRIGGER run_events_no_update BEFORE UPDATE ON run_events
BEGIN SELECT RAISE(ABORT, 'a run event is history: never changed'); END;
CREATE TRIGGER run_events_no_delete BEFORE DELETE ON run_events
BEGIN SELECT RAISE(ABORT, 'a run event is history: never deleted'); END;
