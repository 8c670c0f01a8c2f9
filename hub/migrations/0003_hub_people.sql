-- The hub's own people (issue 15): lab admins, lab managers and clinicians who sign in to the
-- hub's pages, and their browser sessions. They are not the appliances' users: each appliance
-- keeps its own. Users are never deleted (the audit trail names them); a disabled user cannot
-- sign in. Only an argon2id hash of a password and the SHA-256 of a session's secret are kept.
-- (0003: 0002 is the read side's indexes.)

CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       TEXT        NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9._-]{0,63}$'),
    display_name   TEXT        NOT NULL CHECK (length(trim(display_name)) BETWEEN 1 AND 100),
    role           TEXT        NOT NULL CHECK (role IN ('lab_admin', 'lab_manager', 'clinician')),
    password_hash  TEXT        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at     TIMESTAMPTZ NOT NULL,
    disabled_at    TIMESTAMPTZ
);

CREATE TABLE sessions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret_hash  TEXT        NOT NULL UNIQUE,              -- SHA-256 of the cookie's secret, hex
    user_id      BIGINT      NOT NULL REFERENCES users (id),
    started_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL CHECK (expires_at > started_at),
    ended_at     TIMESTAMPTZ
);
CREATE INDEX sessions_open_of_user ON sessions (user_id) WHERE ended_at IS NULL;

CREATE TRIGGER users_never_deleted BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
