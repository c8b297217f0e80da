#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server:
#   bash scripts/with-postgres.sh .venv/bin/pytest tests/web -q
# Installs Debian's postgresql package when no server binaries are found, creates a new cluster in a
# temporary directory (initdb + pg_ctl, as the postgres user when run as root: initdb refuses root),
# listening on 127.0.0.1 at a free port, makes a user and database (the user may create databases,
# for Django's test database), exports DATABASE_URL, runs the command, then stops the server and
# removes the cluster. The command's exit status is this script's exit status.
set -euo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin).
find_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
    echo "$dir"
  elif command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
  fi
}
BINDIR=$(find_bindir)
if [ -z "$BINDIR" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  BINDIR=$(find_bindir)
fi
if [ -z "$BINDIR" ]; then
  echo "with-postgres: no PostgreSQL server binaries (initdb) found" >&2
  exit 1
fi

# Server processes run as postgres when we are root, else as ourselves.
RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  RUNAS=(runuser -u postgres --)
fi

PORT="${WITH_POSTGRES_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/with-postgres.XXXXXX")
chmod 700 "$ROOT"
if [ "${#RUNAS[@]}" -gt 0 ]; then chown postgres: "$ROOT"; fi
DATA="$ROOT/data"
SOCK="$ROOT"
LOG="$ROOT/server.log"
PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
DBUSER=benzotaper
DBNAME=benzotaper
READY=0

cleanup() {
  local status=$?
  if [ -f "$DATA/postmaster.pid" ]; then
    "${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ "$status" -ne 0 ] && [ "$READY" -eq 0 ] && [ -f "$LOG" ]; then
    echo "with-postgres: the server did not start; its log:" >&2
    tail -n 20 "$LOG" >&2 || true
  fi
  rm -rf "$ROOT"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Local (socket) connections are trusted for the set-up below; TCP needs the password.
"${RUNAS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
  --auth-local=trust --auth-host=scram-sha-256 >/dev/null
# A throwaway server: durability off for speed.
"${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
  "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  >/dev/null
"${RUNAS[@]}" "$BINDIR/psql" -h "$SOCK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
  -c "CREATE ROLE $DBUSER LOGIN CREATEDB PASSWORD '$PASSWORD'" \
  -c "CREATE DATABASE $DBNAME OWNER $DBUSER" >/dev/null

export DATABASE_URL="postgres://$DBUSER:$PASSWORD@127.0.0.1:$PORT/$DBNAME"
READY=1
echo "with-postgres: PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (database $DBNAME)" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
