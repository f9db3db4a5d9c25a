-- Managed rotation (issue 31, docs/rotation.md): one policy per rotated secret, and the state of its
-- rotation in progress. The lease (holder, lease_expires_at) makes each due rotation the work of exactly one
-- rotator; a holder that dies stops renewing it and another takes the rotation over once it has expired.
-- step and pending_version key the steps: a rotation resumes from the step recorded for that pending version.
CREATE TABLE rotation_policies (
    secret_id          bigint PRIMARY KEY REFERENCES secrets (id) ON DELETE CASCADE,
    target             text NOT NULL CHECK (target IN ('postgres', 'command')),
    strategy           text NOT NULL CHECK (strategy IN ('single', 'alternating')),
    every_seconds      integer NOT NULL CHECK (every_seconds BETWEEN 60 AND 315360000),
    admin_secret       text,
    hook               text,
    password_length    integer NOT NULL CHECK (password_length BETWEEN 16 AND 128),
    -- postgres: the connection (host, port, dbname, sslmode, role) the policy was set for, pinned by someone with
    -- control; a value written later that names another role or endpoint is not rotated (docs/rotation.md).
    connection         text,
    enabled            boolean NOT NULL DEFAULT true,
    next_due_at        timestamptz NOT NULL,
    holder             text,
    lease_expires_at   timestamptz,
    step               text CHECK (step IN ('created', 'set', 'tested')),
    pending_version    integer,
    attempt            integer NOT NULL DEFAULT 0,
    rotations          bigint NOT NULL DEFAULT 0,
    last_success_at    timestamptz,
    last_rotated       integer,
    last_failure_at    timestamptz,
    last_failure       text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((target = 'postgres') = (admin_secret IS NOT NULL)),
    CHECK ((target = 'command') = (hook IS NOT NULL)),
    CHECK ((step IS NULL) = (pending_version IS NULL))
);

-- The rotators' claim: the enabled policies that are due, soonest first.
CREATE INDEX rotation_policies_due ON rotation_policies (next_due_at) WHERE enabled;
