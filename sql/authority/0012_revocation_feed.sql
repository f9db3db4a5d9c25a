-- The revocation feed (docs/revocation.md): besides token ids, the authority's revocations
-- record login sessions that were revoked and membership cut-offs (a member removed, or a
-- role lowered), all in the one seq order that GET /v1/revocations/feed serves. Writers of
-- every kind take the same EXCLUSIVE table lock, so seq order stays commit order.
ALTER TABLE revocations
    ALTER COLUMN token_id DROP NOT NULL,
    ADD COLUMN kind text NOT NULL DEFAULT 'token'
        CHECK (kind IN ('token', 'session', 'member_removed', 'role_downgraded')),
    ADD COLUMN org_id bigint,
    ADD COLUMN user_id bigint,
    ADD COLUMN session_id bigint,
    ADD CONSTRAINT revocations_kind_fields CHECK (
        (kind = 'token' AND token_id IS NOT NULL)
        OR (kind = 'session' AND token_id IS NULL AND session_id IS NOT NULL AND user_id IS NOT NULL)
        OR (kind IN ('member_removed', 'role_downgraded')
            AND token_id IS NULL AND org_id IS NOT NULL AND user_id IS NOT NULL)
    );
