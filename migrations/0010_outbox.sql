-- The durable outbox (issue 14): the messages a release sends to the hospital's systems.
--
-- A release of a result version (the first, or a correction's) writes one row per configured
-- destination in the same transaction as the signature, so a released result is never without
-- its messages and an unreleased one never has any. The message itself is rendered from the
-- stored, never-changed result version when it is sent; its control id is derived from the row id
-- (`FC` and eight digits: stable across every retry, unique per message).
--
-- attempts counts every delivery attempt; unanswered those without an answer since the message was
-- written or last resent (the retry bound and back-off count these, so a resend gets its full
-- retries).
-- state: `pending` (to be sent, not before next_attempt_ms, Unix milliseconds), `delivered` (the
-- destination acknowledged it: final), `parked` (the destination rejected it, or it was not
-- acknowledged after the bounded retries: parked_reason says why; a lab admin's resend makes it
-- pending again, audited). Rows are never deleted. Every attempt's outcome is in the audit trail.
CREATE TABLE outbox_messages (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL CHECK (length(trim(destination)) > 0),
    format TEXT NOT NULL CHECK (format IN ('hl7v2', 'fhir')),
    result_id INTEGER NOT NULL REFERENCES results (id),
    run_id INTEGER NOT NULL REFERENCES runs (id),
    patient_id INTEGER NOT NULL REFERENCES patients (id),
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'parked')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    unanswered INTEGER NOT NULL DEFAULT 0 CHECK (unanswered >= 0),
    next_attempt_ms INTEGER NOT NULL,
    last_outcome TEXT,
    parked_reason TEXT CHECK ((state = 'parked') = (parked_reason IS NOT NULL)),
    created_at TEXT NOT NULL,
    delivered_at TEXT CHECK ((state = 'delivered') = (delivered_at IS NOT NULL)),
    UNIQUE (destination, result_id)
);
CREATE INDEX outbox_messages_queue ON outbox_messages (destination, state, id);
CREATE INDEX outbox_messages_patient ON outbox_messages (destination, patient_id, id);
CREATE TRIGGER outbox_messages_kept BEFORE DELETE ON outbox_messages
BEGIN SELECT RAISE(ABORT, 'DELETE refused: outbox messages are kept'); END;
CREATE TRIGGER outbox_messages_delivered_final BEFORE UPDATE ON outbox_messages
WHEN OLD.state = 'delivered'
BEGIN SELECT RAISE(ABORT, 'UPDATE refused: a delivered message is final'); END;
CREATE TRIGGER outbox_messages_same_message BEFORE UPDATE OF destination, format, result_id, run_id,
    patient_id, created_at ON outbox_messages
BEGIN SELECT RAISE(ABORT, 'UPDATE refused: a message''s content is fixed'); END;
