-- Audit log (docs/audit.md): append-only, hash-chained events.
-- hash = SHA-256(prev_hash || canonical bytes of the row); the first prev_hash is 32 zero bytes.
-- The application computes seq and the hashes under the head row's lock, so seq order is commit order.

CREATE TABLE audit_events (
    seq         bigint PRIMARY KEY CHECK (seq > 0),
    at          timestamptz NOT NULL,
    service     text NOT NULL,
    action      text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
    org         bigint,
    vault       text,
    secret      text,
    version     bigint,
    token_id    text,
    lineage     text[] NOT NULL DEFAULT '{}',
    actor       text,
    client_addr text,
    request_id  text,
    detail      jsonb NOT NULL DEFAULT '{}',
    prev_hash   bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (length(hash) = 32)
);

-- The end of the chain: writers lock this row (FOR UPDATE) to serialize appends across
-- processes, and it lets the verifier notice that the newest events were deleted.
CREATE TABLE audit_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL CHECK (seq >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, decode(repeat('00', 32), 'hex'));

-- Queries always page by seq; these serve the filters of query_events.
CREATE INDEX audit_events_org_seq ON audit_events (org, seq);
CREATE INDEX audit_events_org_secret_seq ON audit_events (org, secret, seq);
CREATE INDEX audit_events_org_action_seq ON audit_events (org, action, seq);
CREATE INDEX audit_events_not_ok_seq ON audit_events (org, seq) WHERE outcome <> 'ok';
CREATE INDEX audit_events_actor_seq ON audit_events (actor, seq);
CREATE INDEX audit_events_token_seq ON audit_events (token_id, seq);
CREATE INDEX audit_events_lineage ON audit_events USING gin (lineage);
CREATE INDEX audit_events_at ON audit_events (at);

-- Append-only, even for the table's owner (privileges do not bind owners).
-- Triggers do not fire under session_replication_role = replica, which only a superuser
-- may set: that is the deliberate escape hatch (repairs, and tests that tamper on purpose).
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- The head only moves forward and is never removed.
CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.seq < OLD.seq THEN
        RAISE EXCEPTION 'audit_head only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only();
