-- The store's own data: enrolled orgs, the store tokens it minted, vaults, secrets and versions.
-- Runs with search_path set to the store schema (see docs/storage.md); keys live in wrapped_keys (0001).

-- An org enrolled at the store. ids are the authority's org ids (positive, below 2^63);
-- the root key signs the org's store tokens.
CREATE TABLE orgs (
    id           bigint PRIMARY KEY CHECK (id >= 0),
    slug         text NOT NULL,
    root_key_id  bigint NOT NULL REFERENCES wrapped_keys (id),
    enrolled_at  timestamptz NOT NULL DEFAULT now()
);

-- Every store token minted (enrolment roots and minted tokens), so each can be revoked alone.
-- Offline attenuations keep their parent's id, so revoking an id covers them too.
CREATE TABLE tokens (
    id          uuid PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    kind        text NOT NULL CHECK (kind IN ('root', 'minted')),
    mask        text NOT NULL,
    vaults      jsonb,
    secrets     jsonb,
    parent      uuid REFERENCES tokens (id),
    actor       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

CREATE INDEX tokens_parent ON tokens (parent) WHERE parent IS NOT NULL;
CREATE INDEX tokens_org ON tokens (org_id, created_at);

CREATE TABLE vaults (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

-- current_version mirrors the version whose stage is 'current' (NULL before the first
-- non-pending write); last_version numbers versions, so a destroyed number is never reused.
CREATE TABLE secrets (
    id               bigserial PRIMARY KEY,
    vault_id         bigint NOT NULL REFERENCES vaults (id),
    name             text NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$' AND length(name) <= 256),
    current_version  integer,
    last_version     integer NOT NULL DEFAULT 0,
    max_versions     integer NOT NULL DEFAULT 10 CHECK (max_versions BETWEEN 1 AND 1000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vault_id, name)
);

-- state: active (readable), deleted (soft; undelete restores), destroyed (ciphertext and
-- data key gone for good). stage: at most one current, one pending, one previous per secret.
CREATE TABLE secret_versions (
    secret_id         bigint NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version           integer NOT NULL CHECK (version > 0),
    state             text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted', 'destroyed')),
    stage             text CHECK (stage IN ('current', 'pending', 'previous')),
    ciphertext        bytea,
    data_key_id       bigint REFERENCES wrapped_keys (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by_token  uuid,
    PRIMARY KEY (secret_id, version),
    CHECK ((state = 'destroyed') = (ciphertext IS NULL)),
    CHECK ((state = 'destroyed') = (data_key_id IS NULL))
);

CREATE UNIQUE INDEX secret_versions_one_per_stage ON secret_versions (secret_id, stage) WHERE stage IS NOT NULL;
