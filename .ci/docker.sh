#!/usr/bin/env bash
# The Docker engine for the runtime and builder tests: Debian's docker.io and a static busybox for
# the test images (no registry is reachable, so images are built FROM scratch), and docker-compose
# to validate docker-compose.yml. Installs what is missing, starts dockerd in the background when
# no engine answers, and waits for it.
#
#   source .ci/docker.sh     start (if needed); stop what it started when the shell exits
#
# No `set -e` at the top level: when sourced, that would change the caller's shell.

_paas_docker_install() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  ldd /bin/busybox 2>&1 | grep -q "not a dynamic" || missing+=(busybox-static)
  ((${#missing[@]} == 0)) && return 0
  echo "docker.sh: installing ${missing[*]}"
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/tmp/paas-apt.log 2>&1; then
    echo "docker.sh: apt-get failed:" >&2
    tail -20 /tmp/paas-apt.log >&2
    return 1
  fi
}

paas_docker_start() {
  _paas_docker_install || return 1
  if docker info >/dev/null 2>&1; then
    echo "docker.sh: an engine is already running"
    return 0
  fi
  PAAS_DOCKERD_LOG="$(mktemp "${TMPDIR:-/tmp}/paas-dockerd.XXXXXX.log")"
  dockerd >"$PAAS_DOCKERD_LOG" 2>&1 &
  PAAS_DOCKERD_PID=$!
  export PAAS_DOCKERD_PID PAAS_DOCKERD_LOG
  local waited
  for ((waited = 0; waited < 300; waited++)); do
    if docker info >/dev/null 2>&1; then
      echo "docker.sh: dockerd $(docker version --format '{{.Server.Version}}') is up"
      return 0
    fi
    if ! kill -0 "$PAAS_DOCKERD_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "docker.sh: dockerd did not start; its log:" >&2
  tail -40 "$PAAS_DOCKERD_LOG" >&2
  return 1
}

paas_docker_stop() {
  [[ -n "${PAAS_DOCKERD_PID:-}" ]] || return 0
  kill "$PAAS_DOCKERD_PID" 2>/dev/null
  local waited
  for ((waited = 0; waited < 100; waited++)); do
    kill -0 "$PAAS_DOCKERD_PID" 2>/dev/null || break
    sleep 0.1
  done
  unset PAAS_DOCKERD_PID
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  if paas_docker_start; then
    _paas_docker_previous_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
    # shellcheck disable=SC2064
    trap "paas_docker_stop; ${_paas_docker_previous_trap:-:}" EXIT
  else
    return 1
  fi
else
  set -euo pipefail
  paas_docker_start
fi
