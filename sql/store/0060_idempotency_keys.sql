-- Idempotency-Key of writes (issue 20): the first outcome of each key, recorded in the write's own
-- transaction, so a retried write is answered with it instead of being stored twice.
-- scope is the caller's store token id: two callers cannot collide or read each other's outcomes.
-- request_hash is an HMAC of the request (never the value itself), so a key reused for another
-- request is refused. Rows past expires_at are ignored and deleted in small batches by later writes.
CREATE TABLE idempotency_keys (
    org_id        bigint NOT NULL,
    scope         text NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    reply         jsonb,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, scope, key)
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
