-- Revoked token ids (docs/revocation.md). Writers take an EXCLUSIVE lock on the table in the
-- inserting transaction, so seq order is commit order and "WHERE seq > last_seen" never skips
-- a row that commits late. Readers are not blocked.
CREATE TABLE revocations (
    seq        bigserial PRIMARY KEY,
    token_id   uuid NOT NULL UNIQUE,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    reason     text
);
