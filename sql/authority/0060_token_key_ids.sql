-- Which root key (kid) signed each token, so `cvault keys retire-tokens KID` can say how many live tokens
-- it kills (docs/keys.md). Before this migration the authority only ever had one root key: its oldest.
ALTER TABLE tokens ADD COLUMN root_key_id bigint REFERENCES wrapped_keys (id);
UPDATE tokens SET root_key_id = (SELECT min(id) FROM wrapped_keys WHERE purpose = 'authority-root');
CREATE INDEX tokens_root_key ON tokens (root_key_id);
