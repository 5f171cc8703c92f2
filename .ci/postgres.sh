#!/usr/bin/env bash
# A throwaway PostgreSQL for tests: a new cluster in a temporary directory, trust auth, listening
# only on 127.0.0.1 on a free port, fsync off. It sets PAAS_TEST_DATABASE_URL, which the
# persistence tests read (each test file creates and drops its own database on it).
#
#   source .ci/postgres.sh           start; export PAAS_TEST_DATABASE_URL; stop when the shell
#                                    exits, or earlier with `paas_postgres_stop`
#   .ci/postgres.sh <command> ...    start, run the command with PAAS_TEST_DATABASE_URL, stop
#   .ci/postgres.sh start            start and print PAAS_TEST_DATABASE_URL=… and PAAS_POSTGRES_DIR=…
#   .ci/postgres.sh stop <dir>       stop the cluster that `start` printed
#
# PG_BIN overrides where initdb, pg_ctl and postgres are (default /usr/local/bin). initdb refuses
# to run as root, so as root the cluster belongs to the `postgres` user.
#
# No `set -e` at the top level: when sourced, that would change the caller's shell.

PG_BIN="${PG_BIN:-/usr/local/bin}"

# Runs a command as the user that owns the cluster.
_paas_pg_as_owner() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Prints a port on 127.0.0.1 that nothing answers on.
_paas_pg_free_port() {
  local port tries
  for ((tries = 0; tries < 50; tries++)); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Starts a cluster; on success sets PAAS_POSTGRES_DIR and PAAS_TEST_DATABASE_URL.
paas_postgres_start() {
  local dir port attempt waited tool
  for tool in initdb pg_ctl postgres; do
    if [[ ! -x "$PG_BIN/$tool" ]]; then
      echo "postgres.sh: $PG_BIN/$tool not found (set PG_BIN)" >&2
      return 1
    fi
  done
  dir="$(mktemp -d "${TMPDIR:-/tmp}/paas-postgres.XXXXXX")" || return 1
  if [[ $EUID -eq 0 ]]; then
    chown postgres:postgres "$dir" || return 1
  fi
  if ! _paas_pg_as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
    echo "postgres.sh: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    return 1
  fi

  # Another process may take the port between the probe and the bind: try a few ports.
  for ((attempt = 1; attempt <= 5; attempt++)); do
    port="$(_paas_pg_free_port)" || break
    : >"$dir/postgres.log"
    chmod 666 "$dir/postgres.log"
    _paas_pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -W \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1
    # Ready when the server says so and answers on the port; give up after 30 s.
    for ((waited = 0; waited < 300; waited++)); do
      if grep -q "ready to accept connections" "$dir/postgres.log" 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        export PAAS_POSTGRES_DIR="$dir"
        export PAAS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
        return 0
      fi
      if ! _paas_pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 && ((waited > 10)); then
        break # it exited (e.g. the port was taken): try another port
      fi
      sleep 0.1
    done
    _paas_pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
  done
  echo "postgres.sh: PostgreSQL did not start; its log:" >&2
  cat "$dir/postgres.log" >&2
  rm -rf "$dir"
  return 1
}

# Stops the cluster in $1 (default: the one this shell started) and deletes its directory.
paas_postgres_stop() {
  local dir="${1:-${PAAS_POSTGRES_DIR:-}}"
  [[ -n "$dir" && -d "$dir/data" ]] || return 0
  _paas_pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    _paas_pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$dir"
  if [[ "$dir" == "${PAAS_POSTGRES_DIR:-}" ]]; then
    unset PAAS_POSTGRES_DIR PAAS_TEST_DATABASE_URL
  fi
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # Sourced: start, and stop on exit after whatever EXIT trap the shell already had.
  if paas_postgres_start; then
    _paas_pg_previous_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
    # The earlier trap's text is expanded now, on purpose: it is what has to run later.
    # shellcheck disable=SC2064
    trap "paas_postgres_stop; ${_paas_pg_previous_trap:-:}" EXIT
    echo "PAAS_TEST_DATABASE_URL=$PAAS_TEST_DATABASE_URL"
  else
    return 1
  fi
else
  set -euo pipefail
  case "${1:-}" in
    "" | -h | --help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
      ;;
    start)
      paas_postgres_start
      echo "PAAS_TEST_DATABASE_URL=$PAAS_TEST_DATABASE_URL"
      echo "PAAS_POSTGRES_DIR=$PAAS_POSTGRES_DIR"
      ;;
    stop)
      paas_postgres_stop "${2:?usage: postgres.sh stop <dir>}"
      ;;
    *)
      paas_postgres_start
      trap paas_postgres_stop EXIT
      echo "PAAS_TEST_DATABASE_URL=$PAAS_TEST_DATABASE_URL"
      "$@"
      ;;
  esac
fi
