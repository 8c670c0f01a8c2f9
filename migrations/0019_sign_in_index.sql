-- The administration page lists users a page at a time, each with their last sign-in, which the
-- audit trail keeps (`session.sign_in` entries, `entity_id` the user's id). Without an index that
-- lookup read the whole audit trail, which every view of patient data lengthens. A partial index
-- holds only the sign-in entries, by user and entry, so each user's newest sign-in is one seek.
CREATE INDEX audit_log_sign_in ON audit_log (entity_id, id)
    WHERE action = 'session.sign_in' AND entity = 'user';
