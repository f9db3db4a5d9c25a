-- Invitations: an owner invites an email; the invitee accepts (or the invitation expires).
-- Membership needs the invitee's consent, and inviting says nothing about whether the
-- email has an account. Only the SHA-256 of the invitation code is stored.
CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email        text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    role         text NOT NULL CHECK (role IN ('owner', 'operator', 'reader', 'auditor')),
    invited_by   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_digest  bytea NOT NULL UNIQUE CHECK (length(code_digest) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    accepted_by  bigint REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX invitations_pending_email ON invitations (email) WHERE accepted_at IS NULL;
CREATE INDEX invitations_org ON invitations (org_id, created_at);
