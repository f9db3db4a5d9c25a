"""Cryptography of cvault: the only package that imports ``cryptography.hazmat`` or ``nacl``.

Pure code: no I/O, nothing from the rest of cvault except :mod:`vault.errors`.
Randomness comes from the operating system (``os.urandom``) inside the recipes,
as in Fernet, because a caller-chosen nonce is the classic way to break GCM.

- :mod:`~vault.crypto.envelope`: secret values sealed with a per-version data key
  (AES-256-GCM, associated data binding org, vault, name, version, data-key id).
- :mod:`~vault.crypto.keyring`: the master key, key-encryption keys (KEKs) by
  version, and the wrapping of data keys, root keys and private keys under them.
- :mod:`~vault.crypto.ticket_keys`: X25519 key pairs for third-party tickets.
- :mod:`~vault.crypto.passwords`: argon2id password hashes.

Every failure to open a ciphertext raises the one opaque
:class:`~vault.errors.DecryptionError`; the message never carries key bytes.
"""
