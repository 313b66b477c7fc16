#!/usr/bin/env bash
# nginx (Debian's package) as the single front door of distributed mode, on 127.0.0.1, unprivileged.
#
#   infra/local/nginx.sh install                 install Debian's nginx when it is missing (apt-get)
#   infra/local/nginx.sh render <run-dir> <port> write <run-dir>/nginx.conf from nginx.conf.template
#                                                and check it with `nginx -t`; prints its path
#   infra/local/nginx.sh start <run-dir> <port>  render, then start nginx listening on 127.0.0.1:<port>;
#                                                prints `pid=<n>` and `url=http://127.0.0.1:<port>`.
#                                                A start on a run dir whose nginx runs reloads it.
#   infra/local/nginx.sh stop <run-dir>          graceful stop of the nginx of that run dir
#   infra/local/nginx.sh status <run-dir>        exit 0 and print pid/url when it runs, 1 otherwise
#
# Upstreams come from the environment, each a comma-separated list of host:port (one per replica):
#   LEDGERFLOW_UPSTREAM_TRACKING   (default 127.0.0.1:5101)  experiments, runs, metrics, the rest
#   LEDGERFLOW_UPSTREAM_ARTIFACTS  (default 127.0.0.1:5102)  mlflow-artifacts, artifacts/*, get-artifact
#   LEDGERFLOW_UPSTREAM_REGISTRY   (default 127.0.0.1:5103)  registered-models, model-versions,
#                                                            transition-requests, comments, audit
#   LEDGERFLOW_UPSTREAM_IDENTITY   (default: the registry's) users, permissions, groups, tokens
#   LEDGERFLOW_UPSTREAM_DEPLOYMENT (default 127.0.0.1:5104)  /invocations, /ping, deployments
#   LEDGERFLOW_NGINX_WORKERS       (default 1)
# Everything nginx writes (pid, logs, temp files) lives in the run dir. As root, nginx runs as
# `nobody` (setpriv); otherwise as the calling user.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/nginx.conf.template"

nginx_bin() {
  if command -v nginx >/dev/null 2>&1; then
    command -v nginx
  elif [[ -x /usr/sbin/nginx ]]; then
    echo /usr/sbin/nginx
  else
    return 1
  fi
}

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

install() {
  if nginx_bin >/dev/null; then
    nginx_bin
    return 0
  fi
  echo "nginx.sh: installing Debian's nginx..." >&2
  as_root apt-get update -qq
  # The package's service is not started: only this script starts nginx, with its own config.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >&2
  nginx_bin
}

# servers <host:port,...> — `server` lines of an upstream block.
servers() {
  local list="$1" entry
  IFS=',' read -ra entries <<<"$list"
  for entry in "${entries[@]}"; do
    entry="${entry// /}"
    [[ "$entry" =~ ^[A-Za-z0-9._-]+:[0-9]+$ ]] || {
      echo "nginx.sh: upstream '$entry' is not host:port" >&2
      exit 2
    }
    echo "    server $entry max_fails=0;"
  done
}

render() {
  local run="${1:?run dir}" port="${2:?port}"
  [[ "$port" =~ ^[0-9]+$ ]] || {
    echo "nginx.sh: port '$port' is not a number" >&2
    exit 2
  }
  local bin
  bin="$(install)"
  mkdir -p "$run/tmp"
  run="$(cd "$run" && pwd)"
  local registry="${LEDGERFLOW_UPSTREAM_REGISTRY:-127.0.0.1:5103}"
  local tracking artifacts identity deployment registry_servers
  tracking="$(servers "${LEDGERFLOW_UPSTREAM_TRACKING:-127.0.0.1:5101}")"
  artifacts="$(servers "${LEDGERFLOW_UPSTREAM_ARTIFACTS:-127.0.0.1:5102}")"
  registry_servers="$(servers "$registry")"
  identity="$(servers "${LEDGERFLOW_UPSTREAM_IDENTITY:-$registry}")"
  deployment="$(servers "${LEDGERFLOW_UPSTREAM_DEPLOYMENT:-127.0.0.1:5104}")"
  TRACKING="$tracking" ARTIFACTS="$artifacts" REGISTRY="$registry_servers" IDENTITY="$identity" \
    DEPLOYMENT="$deployment" RUN_DIR="$run" PORT="$port" WORKERS="${LEDGERFLOW_NGINX_WORKERS:-1}" \
    python3 - "$TEMPLATE" "$run/nginx.conf.tmp" <<'PY'
import os, sys
text = open(sys.argv[1]).read()
for name in ("TRACKING", "ARTIFACTS", "REGISTRY", "IDENTITY", "DEPLOYMENT"):
    text = text.replace(f"@{name}_SERVERS@", os.environ[name])
for name in ("RUN_DIR", "PORT", "WORKERS"):
    text = text.replace(f"@{name}@", os.environ[name])
open(sys.argv[2], "w").write(text)
PY
  "$bin" -t -q -p "$run" -c "$run/nginx.conf.tmp" -e "$run/error.log" || {
    echo "nginx.sh: rendered config does not pass nginx -t ($run/nginx.conf.tmp)" >&2
    exit 1
  }
  mv "$run/nginx.conf.tmp" "$run/nginx.conf"
  echo "$run/nginx.conf"
}

# Runs nginx as an unprivileged user: `nobody` when called as root.
run_nginx() {
  local bin
  bin="$(nginx_bin)"
  if [[ "$(id -u)" -eq 0 ]]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$bin" "$@"
  else
    "$bin" "$@"
  fi
}

status() {
  local run="${1:?run dir}"
  [[ -f "$run/nginx.pid" && -f "$run/port" ]] || return 1
  local pid port
  pid="$(cat "$run/nginx.pid")"
  port="$(cat "$run/port")"
  kill -0 "$pid" 2>/dev/null || return 1
  curl -fsS "http://127.0.0.1:$port/nginx-health" >/dev/null 2>&1 || return 1
  echo "pid=$pid"
  echo "url=http://127.0.0.1:$port"
}

start() {
  local run="${1:?run dir}" port="${2:?port}"
  mkdir -p "$run"
  run="$(cd "$run" && pwd)"
  exec 9>"$run/nginx.lock"
  flock 9
  render "$run" "$port" >/dev/null
  echo "$port" >"$run/port"
  if [[ "$(id -u)" -eq 0 ]]; then
    chown -R nobody:nogroup "$run"
  fi
  if status "$run" >/dev/null 2>&1; then
    run_nginx -p "$run" -c "$run/nginx.conf" -e "$run/error.log" -s reload 9>&-
  else
    rm -f "$run/nginx.pid"
    run_nginx -p "$run" -c "$run/nginx.conf" -e "$run/error.log" 9>&-
  fi
  for _ in $(seq 1 100); do
    if status "$run"; then
      return 0
    fi
    sleep 0.1
  done
  echo "nginx.sh: nginx did not answer on 127.0.0.1:$port; last log lines:" >&2
  tail -20 "$run/error.log" >&2 || true
  exit 1
}

stop() {
  local run="${1:?run dir}"
  [[ -f "$run/nginx.pid" ]] || return 0
  local pid
  pid="$(cat "$run/nginx.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -QUIT "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
  fi
  rm -f "$run/nginx.pid"
}

case "${1:-}" in
  install) install ;;
  render) shift && render "$@" ;;
  start) shift && start "$@" ;;
  stop) shift && stop "$@" ;;
  status) shift && status "$@" ;;
  *)
    echo "usage: $0 install | render <run-dir> <port> | start <run-dir> <port> | stop <run-dir> | status <run-dir>" >&2
    exit 2
    ;;
esac
