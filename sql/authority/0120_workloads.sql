-- Workload identity (docs/workload-identity.md): an org's trusted OIDC issuers, its workload
-- bindings (which verified JWTs may discharge the org caveat, with which mask and scope), and
-- the replay bound: how many discharges each JWT has obtained, remembered until it expires,
-- in the database so every authority node counts the same uses.
CREATE TABLE workload_issuers (
    id          uuid PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    issuer      text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 512),
    -- Where the keys come from: a JWKS URL (found by OIDC discovery when not given), or
    -- static public keys (a JWKS document) for issuers the authority cannot reach.
    jwks_url    text CHECK (jwks_url IS NULL OR length(jwks_url) <= 1024),
    static_jwks jsonb,
    algorithms  text[] NOT NULL CHECK (
        cardinality(algorithms) > 0 AND algorithms <@ ARRAY['RS256', 'ES256', 'EdDSA']::text[]
    ),
    created_by  bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, issuer)
);

CREATE TABLE workload_bindings (
    id          uuid PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    issuer_id   uuid NOT NULL REFERENCES workload_issuers (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    audience    text NOT NULL CHECK (length(audience) BETWEEN 1 AND 512),
    claims      jsonb NOT NULL,
    mask        integer NOT NULL CHECK (mask > 0),
    vaults      text[],
    secrets     text[],
    ttl         integer NOT NULL CHECK (ttl > 0),
    created_by  bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE INDEX workload_bindings_issuer ON workload_bindings (issuer_id);

CREATE TABLE workload_jwt_uses (
    digest      bytea PRIMARY KEY CHECK (length(digest) = 32),
    uses        integer NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE INDEX workload_jwt_uses_expiry ON workload_jwt_uses (expires_at);
