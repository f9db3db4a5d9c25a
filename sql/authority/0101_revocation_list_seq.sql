-- GET /v1/revocations is public. Numbered with the feed's seq, its token revocations skipped the
-- numbers the feed's session and membership events took, so anyone could count logouts and
-- membership changes (docs/revocation.md, "The public list"). Token revocations get their own
-- numbering: list_seq, 1, 2, 3, ... in commit order without gaps. It is assigned by the trigger below
-- as max + 1, under the EXCLUSIVE lock every writer of this table takes (a rolled-back or
-- ON CONFLICT-skipped row leaves no gap, and a row-level BEFORE trigger sees the rows its own
-- statement inserted before it).
ALTER TABLE revocations ADD COLUMN list_seq bigint UNIQUE;
UPDATE revocations r SET list_seq = numbered.n
    FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM revocations WHERE kind = 'token') AS numbered
    WHERE r.seq = numbered.seq;
ALTER TABLE revocations ADD CONSTRAINT revocations_list_seq_tokens_only
    CHECK ((kind = 'token') = (list_seq IS NOT NULL));

CREATE FUNCTION revocations_number_for_list() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'token' THEN
        -- The table by the trigger's own schema: writers run with any search_path.
        EXECUTE format('SELECT coalesce(max(list_seq), 0) + 1 FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME)
            INTO NEW.list_seq;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER revocations_list_seq BEFORE INSERT ON revocations
    FOR EACH ROW EXECUTE FUNCTION revocations_number_for_list();
