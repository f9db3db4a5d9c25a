-- What the Vault KV version 2 API keeps beyond the store's own model (docs/vault-compat.md).

-- When a version was soft-deleted (NULL while active; kept when it is destroyed later).
-- Versions deleted before this migration get their secret's last update time, the only
-- time the store had for them.
ALTER TABLE secret_versions ADD COLUMN deleted_at timestamptz;
UPDATE secret_versions v SET deleted_at = s.updated_at
FROM secrets s WHERE s.id = v.secret_id AND v.state = 'deleted';

-- A secret's Vault metadata: cas_required, delete_version_after (seconds, 0 = never),
-- custom_metadata (a JSON object of string values, as Vault has it).
ALTER TABLE secrets
    ADD COLUMN cas_required boolean NOT NULL DEFAULT false,
    ADD COLUMN delete_version_after bigint NOT NULL DEFAULT 0 CHECK (delete_version_after >= 0),
    ADD COLUMN custom_metadata jsonb CHECK (custom_metadata IS NULL OR jsonb_typeof(custom_metadata) = 'object');

-- A vault's Vault mount configuration (<mount>/config): max_versions for secrets created
-- through the Vault API (0: the store's default), cas_required and delete_version_after.
ALTER TABLE vaults
    ADD COLUMN kv_max_versions integer NOT NULL DEFAULT 0 CHECK (kv_max_versions BETWEEN 0 AND 1000),
    ADD COLUMN kv_cas_required boolean NOT NULL DEFAULT false,
    ADD COLUMN kv_delete_version_after bigint NOT NULL DEFAULT 0 CHECK (kv_delete_version_after >= 0);
