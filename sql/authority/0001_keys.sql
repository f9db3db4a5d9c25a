-- Keys at rest. Runs with search_path set to this file's schema (see docs/storage.md).

-- Key-encryption keys, each wrapped under the master key (which is never stored).
-- state: 'active' wraps new keys (exactly one); 'draining' still opens rows while a
-- rotation re-wraps them; 'retired' is referenced by no row and is no longer loaded.
CREATE TABLE kek_versions (
    version     integer PRIMARY KEY CHECK (version > 0),
    wrapped     bytea NOT NULL,
    state       text NOT NULL CHECK (state IN ('active', 'draining', 'retired')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

CREATE UNIQUE INDEX kek_versions_one_active ON kek_versions ((true)) WHERE state = 'active';

-- Every wrapped key of this schema: data keys of secret versions, token root keys,
-- X25519 private keys. The wrapping binds (schema, purpose, id, kek_version), so a
-- row's bytes copied into another row do not unwrap.
CREATE TABLE wrapped_keys (
    id           bigserial PRIMARY KEY,
    purpose      text NOT NULL CHECK (purpose ~ '^[a-z0-9][a-z0-9:._-]{0,63}$'),
    kek_version  integer NOT NULL REFERENCES kek_versions (version),
    wrapped      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);

-- Rotation scans by KEK version; lookups of current root keys go by purpose.
CREATE INDEX wrapped_keys_kek_version ON wrapped_keys (kek_version);
CREATE INDEX wrapped_keys_purpose ON wrapped_keys (purpose) WHERE retired_at IS NULL;
