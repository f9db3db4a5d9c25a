-- An invitation creates an account only with proof that the invitee controls the invited email
-- (docs/authority.md, "Invitations"): the authority mails a verification code to it and keeps only
-- the code's SHA-256 and when it expires. Asking again replaces the code.
ALTER TABLE invitations
    ADD COLUMN verification_digest bytea CHECK (length(verification_digest) = 32),
    ADD COLUMN verification_expires_at timestamptz,
    ADD CONSTRAINT invitations_verification_whole
        CHECK ((verification_digest IS NULL) = (verification_expires_at IS NULL));
