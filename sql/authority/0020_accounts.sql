-- The authority's accounts and tokens. Runs with search_path set to schema authority.

-- Emails are stored normalized (trimmed, lower case) by the service.
CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    email          text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Random positive ids below 2**63 (they are uint64 in tokens, bigint here).
CREATE TABLE orgs (
    id          bigint PRIMARY KEY CHECK (id > 0),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'operator', 'reader', 'auditor')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);

CREATE INDEX memberships_user ON memberships (user_id);

-- Only the SHA-256 of a session secret is stored; lookups go through the unique index.
CREATE TABLE sessions (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_digest  bytea NOT NULL UNIQUE CHECK (length(secret_digest) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);

CREATE INDEX sessions_user ON sessions (user_id);

-- Every token the authority issued; id is the token id (UUIDv5 of its nonce).
-- parent: the token a service token was stripped from (or a permission token minted with).
CREATE TABLE tokens (
    id          uuid PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    org_id      bigint NOT NULL REFERENCES orgs (id),
    kind        text NOT NULL CHECK (kind IN ('permission', 'service')),
    parent      uuid REFERENCES tokens (id),
    mask        integer NOT NULL CHECK (mask >= 0),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz,
    CHECK (kind = 'permission' OR parent IS NOT NULL)
);

CREATE INDEX tokens_parent ON tokens (parent) WHERE parent IS NOT NULL;
CREATE INDEX tokens_user ON tokens (user_id, created_at);
