#!/bin/sh
# The containers' entrypoint (docker-compose.yml): `docker-entrypoint.sh authority|store [cvault args...]`.
#
# It starts as root only to do what the service user (uid 10001) cannot:
#  1. copy the mounted secrets (master key, TLS key; owned by whoever owns them on the host)
#     into a private directory owned by the service user, mode 0400, and point cvault at the copies;
#  2. then drop to uid/gid 10001 (setpriv) before anything else runs: migrations, and
#     for the store, pinning the authority's org public key at first start (pin-authority-key.py);
#  3. exec `cvault serve <service>` as that user.
set -eu
service="$1"; shift
uid="${CVAULT_UID:-10001}"
secrets="${CVAULT_SECRETS_DIR:-/run/secrets}"
private="${CVAULT_PRIVATE_DIR:-/run/cvault}"
# The entrypoint's own variables: cvault would call them unknown settings (and
# CVAULT_REVOCATION_FEED_DIGEST_FILE below).
unset CVAULT_UID CVAULT_SECRETS_DIR CVAULT_PRIVATE_DIR

case "$service" in authority|store) ;; *) echo "usage: $0 authority|store" >&2; exit 2 ;; esac

mkdir -p "$private"
chown "$uid:$uid" "$private"
chmod 0700 "$private"
copy() {  # copy SECRET NAME: $secrets/SECRET -> $private/NAME, owned by the service user, mode 0400
  if [ ! -r "$secrets/$1" ]; then
    echo "docker-entrypoint: secret $secrets/$1 is missing or unreadable (run deploy/init)" >&2
    exit 1
  fi
  install -o "$uid" -g "$uid" -m 0400 "$secrets/$1" "$private/$2"
}
copy "${service}_master_key" master.key
export CVAULT_MASTER_KEY_FILE="$private/master.key"
if [ -n "${CVAULT_TLS_KEY_FILE:-}" ]; then
  copy "${service}_tls_key" tls-key.pem
  export CVAULT_TLS_KEY_FILE="$private/tls-key.pem"
fi

# The revocation feed (docs/revocation.md): the store reads with the token deploy/init made (a secret),
# the authority accepts its SHA-256 (a public file); a value set in the environment wins.
if [ "$service" = store ] && [ -z "${CVAULT_REVOCATION_FEED_TOKEN:-}" ] && [ -r "$secrets/revocation_feed_token" ]; then
  CVAULT_REVOCATION_FEED_TOKEN="$(cat "$secrets/revocation_feed_token")"
  export CVAULT_REVOCATION_FEED_TOKEN
fi
digest="${CVAULT_REVOCATION_FEED_DIGEST_FILE:-/etc/cvault/revocation-feed.sha256}"
unset CVAULT_REVOCATION_FEED_DIGEST_FILE
if [ "$service" = authority ] && [ -z "${CVAULT_REVOCATION_FEED_TOKEN_SHA256:-}" ] && [ -r "$digest" ]; then
  CVAULT_REVOCATION_FEED_TOKEN_SHA256="$(cat "$digest")"
  export CVAULT_REVOCATION_FEED_TOKEN_SHA256
fi

# setpriv changes the ids only: HOME would stay root's (mode 0700), where asyncpg looks for client
# certificates and fails with "Permission denied". The service user's own home (its state directory).
HOME="$(getent passwd "$uid" | cut -d: -f6)"
export HOME="${HOME:-/nonexistent}"
run() { exec setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"; }
if [ "$(id -u)" != 0 ]; then
  run() { exec "$@"; }  # already the service user (e.g. docker run --user)
fi

if [ "$service" = store ] && [ -z "${CVAULT_AUTHORITY_ORG_PUBLIC_KEY:-}" ]; then
  # The store learns the authority's key without a hand edit: fetched once, pinned in its volume.
  pin="$(cd "$(dirname "$0")" && pwd)/pin-authority-key.py"
  run sh -c 'cvault migrate --schema store && key="$(python "$0")" && export CVAULT_AUTHORITY_ORG_PUBLIC_KEY="$key" && exec cvault serve store "$@"' "$pin" "$@"
fi
run sh -c 'cvault migrate --schema "$0" && exec cvault serve "$0" "$@"' "$service" "$@"
