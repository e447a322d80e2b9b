#!/bin/bash
# Test-only entrypoint of the Postgres stand-in (images/standins/README.md), written for this
# project after the official image's documented contract: on an empty PGDATA, initdb with
# POSTGRES_USER (default postgres) as superuser and POSTGRES_PASSWORD as its password, create
# POSTGRES_DB (default: the user's name), accept password (SCRAM) connections from anywhere;
# then run the server.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
[ "${1:-}" = postgres ] && shift
user=${POSTGRES_USER:-postgres}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres: POSTGRES_PASSWORD is not set; the database would accept no password" >&2
    exit 1
  fi
  mkdir -p "$PGDATA" && chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  {
    echo "listen_addresses = '*'"
    echo "unix_socket_directories = '/var/run/postgresql'"
  } >>"$PGDATA/postgresql.conf"
  db=${POSTGRES_DB:-$user}
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres: initialized $PGDATA (user $user, database $db)"
fi
exec postgres -D "$PGDATA" "$@"
