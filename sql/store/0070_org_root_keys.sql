-- Every root key an org's store tokens were signed with (docs/keys.md). orgs.root_key_id is the one that
-- mints; the others verify until retired (wrapped_keys.retired_at). A trigger records each key an org is
-- given, so enrolment and rotation cannot forget to.
CREATE TABLE org_root_keys (
    key_id  bigint PRIMARY KEY REFERENCES wrapped_keys (id),
    org_id  bigint NOT NULL REFERENCES orgs (id)
);
INSERT INTO org_root_keys (key_id, org_id) SELECT root_key_id, id FROM orgs;

CREATE FUNCTION record_org_root_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO store.org_root_keys (key_id, org_id) VALUES (NEW.root_key_id, NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER orgs_record_root_key AFTER INSERT OR UPDATE OF root_key_id ON orgs
    FOR EACH ROW EXECUTE FUNCTION record_org_root_key();

-- Which root key signed each store token (before this migration, every org had exactly one).
ALTER TABLE tokens ADD COLUMN root_key_id bigint REFERENCES wrapped_keys (id);
UPDATE tokens AS t SET root_key_id = o.root_key_id FROM orgs AS o WHERE o.id = t.org_id;
CREATE INDEX tokens_root_key ON tokens (root_key_id);
