-- One hash chain per writer (docs/audit.md, "Chains"): writers append to their own chain and lock only
-- its row, so N processes append without waiting for each other. The single chain so far becomes
-- chain 0; its rows keep their hashes (format 1) and still verify.

-- A chain's head (its last chain_seq and hash) and who may append to it: a writer holds a chain
-- while its lease runs, renews it with every append, and loses it to another writer once expired.
CREATE TABLE audit_chains (
    chain       bigint PRIMARY KEY CHECK (chain >= 0),
    seq         bigint NOT NULL CHECK (seq >= 0),
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    writer      text,
    lease_until timestamptz
);
CREATE SEQUENCE audit_chain_ids START 1 OWNED BY audit_chains.chain;
ALTER TABLE audit_chains ALTER chain SET DEFAULT nextval('audit_chain_ids');
INSERT INTO audit_chains (chain, seq, hash) SELECT 0, seq, hash FROM audit_head;
DROP TABLE audit_head;
DROP FUNCTION audit_head_forward_only();

-- A head only moves forward, never to another chain, and is never removed.
CREATE FUNCTION audit_chains_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.seq < OLD.seq OR NEW.chain <> OLD.chain THEN
        RAISE EXCEPTION 'audit_chains heads only move forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_chains_forward BEFORE UPDATE OR DELETE ON audit_chains
    FOR EACH ROW EXECUTE FUNCTION audit_chains_forward_only();
CREATE TRIGGER audit_chains_no_truncate BEFORE TRUNCATE ON audit_chains
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chains_forward_only();

-- Each event's place in its chain. Existing rows are chain 0 at chain_seq = seq, format 1: the one
-- UPDATE this append-only table ever gets, with its trigger off inside this migration only.
ALTER TABLE audit_events
    ADD COLUMN chain bigint NOT NULL DEFAULT 0,
    ADD COLUMN chain_seq bigint,
    ADD COLUMN format smallint NOT NULL DEFAULT 1 CHECK (format IN (1, 2));
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete;
UPDATE audit_events SET chain_seq = seq;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete;
ALTER TABLE audit_events
    ALTER chain DROP DEFAULT,
    ALTER format DROP DEFAULT,
    ALTER chain_seq SET NOT NULL,
    ADD CONSTRAINT audit_events_chain_seq_positive CHECK (chain_seq > 0),
    ADD CONSTRAINT audit_events_chain_position UNIQUE (chain, chain_seq);

-- seq stays the log's one order for paging, now numbered by the database at insert (no lock):
-- within a chain it grows with chain_seq, since a chain's appends commit one after another.
CREATE SEQUENCE audit_event_seq OWNED BY audit_events.seq;
SELECT setval('audit_event_seq', coalesce(max(seq), 0) + 1, false) FROM audit_events;
ALTER TABLE audit_events ALTER seq SET DEFAULT nextval('audit_event_seq');

-- Checkpoints tie the chains together: every few seconds one writer records every chain's head
-- (body: canonical JSON {"heads": [[chain, seq, hash hex], ...], "id": n, "v": 1}),
-- hash-chained like the events: hash = SHA-256(prev_hash || body). A chain whose tail was deleted
-- and its head rewound, or that was deleted whole, still shows in the checkpoints after it.
CREATE TABLE audit_checkpoints (
    id        bigint PRIMARY KEY CHECK (id > 0),
    body      text NOT NULL,
    prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash      bytea NOT NULL CHECK (length(hash) = 32),
    at        timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_checkpoints_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_change();
