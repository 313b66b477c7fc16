#!/usr/bin/env bash
# A local MongoDB wire-protocol server for tests and distributed mode: real `mongod` when the machine
# has one, otherwise FerretDB v1 (SQLite backend) built from the Go module proxy.
#
#   infra/local/ferretdb.sh build                  build the `ferretdb` binary once, cached (prints its
#                                                  path); prints the `mongod` path instead when one is
#                                                  on PATH (or LEDGERFLOW_MONGOD names one)
#   infra/local/ferretdb.sh built                  print the engine's path and exit 0 when it is ready to
#                                                  start (built or `mongod` present), exit 1 otherwise
#   infra/local/ferretdb.sh start <data-dir> <port>
#                                                  start the server on 127.0.0.1:<port> with its data in
#                                                  <data-dir>, wait until it answers the wire protocol;
#                                                  prints `pid=<n>`, `engine=<ferretdb|mongod>` and
#                                                  `uri=mongodb://127.0.0.1:<port>/`. A second start on
#                                                  the same data dir while the first runs reuses it.
#   infra/local/ferretdb.sh stop <data-dir>        stop the server started on that data dir
#   infra/local/ferretdb.sh status <data-dir>      exit 0 and print pid/uri when it runs, 1 otherwise
#
# The binary lives in ${LEDGERFLOW_CACHE:-~/.cache/ledgerflow}/bin/ferretdb-<version>. Builds and
# starts are serialised with flock, so tests and CI may ask at the same time. The server binds to
# 127.0.0.1 only, telemetry is off and its debug HTTP handler is disabled.
# LEDGERFLOW_MONGO_ENGINE=ferretdb forces FerretDB even when `mongod` exists.
set -euo pipefail

VERSION="v1.24.2"
MODULE="github.com/FerretDB/FerretDB"
CACHE="${LEDGERFLOW_CACHE:-$HOME/.cache/ledgerflow}"
BIN="$CACHE/bin/ferretdb-$VERSION"
# Go may be installed outside PATH (the official tarball lives in /usr/local/go).
PATH="$PATH:/usr/local/go/bin"

mongod_path() {
  [[ "${LEDGERFLOW_MONGO_ENGINE:-}" == "ferretdb" ]] && return 1
  if [[ -n "${LEDGERFLOW_MONGOD:-}" && -x "${LEDGERFLOW_MONGOD}" ]]; then
    echo "$LEDGERFLOW_MONGOD"
    return 0
  fi
  command -v mongod 2>/dev/null
}

build_ferretdb() {
  if [[ -x "$BIN" ]]; then
    echo "$BIN"
    return 0
  fi
  command -v go >/dev/null || {
    echo "ferretdb.sh: Go is needed to build FerretDB" >&2
    exit 1
  }
  mkdir -p "$CACHE/bin" "$CACHE/src"
  # One builder at a time (tests and CI may ask together).
  exec 8>"$CACHE/ferretdb-build.lock"
  flock 8
  if [[ -x "$BIN" ]]; then
    echo "$BIN"
    return 0
  fi
  local started=$SECONDS
  local dir
  dir="$(cd "$CACHE/src" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$dir" ]] || {
    echo "ferretdb.sh: could not download $MODULE@$VERSION" >&2
    exit 1
  }
  # Built as the main module from a writable copy, so its go.mod (and any replace directive) applies.
  local work="$CACHE/src/ferretdb-$VERSION"
  rm -rf "$work"
  cp -r "$dir" "$work"
  chmod -R u+w "$work"
  # The module ships without the version file its build normally generates from git (`task
  # gen-version`); without it the binary panics at start.
  echo "$VERSION" >"$work/build/version/version.txt"
  echo "ferretdb.sh: building ferretdb $VERSION (a few minutes on first use)..." >&2
  (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" ./cmd/ferretdb)
  mv "$BIN.tmp" "$BIN"
  rm -rf "$work"
  echo "ferretdb.sh: built in $((SECONDS - started)) s" >&2
  echo "$BIN"
}

build() {
  local mongod
  if mongod="$(mongod_path)"; then
    echo "$mongod"
    return 0
  fi
  build_ferretdb
}

# Answers when a TCP connection to the port succeeds and the server replies to a wire-protocol
# `hello` (OP_MSG). bash's /dev/tcp keeps this free of client tools.
answers() {
  local port="$1"
  # OP_MSG { hello: 1, $db: "admin" }: header (16 bytes) + flags (4) + section kind 0 + BSON document.
  local reply
  reply="$(
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || exit 1
    printf '\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00\x00\x1f\x00\x00\x00\x10hello\x00\x01\x00\x00\x00\x02$db\x00\x06\x00\x00\x00admin\x00\x00' >&3
    timeout 2 head -c 21 <&3 | od -An -tx1 | tr -d ' \n'
  )" || return 1
  # 21 bytes back: a reply header whose opCode is 2013 (0x07dd).
  [[ "${#reply}" -ge 42 && "${reply:24:8}" == "dd070000" ]]
}

status() {
  local data="${1:?data dir}"
  [[ -f "$data/server.pid" && -f "$data/server.port" ]] || return 1
  local pid port
  pid="$(cat "$data/server.pid")"
  port="$(cat "$data/server.port")"
  kill -0 "$pid" 2>/dev/null || return 1
  answers "$port" || return 1
  echo "pid=$pid"
  echo "engine=$(cat "$data/server.engine" 2>/dev/null || echo ferretdb)"
  echo "uri=mongodb://127.0.0.1:$port/"
}

start() {
  local data="${1:?data dir}" port="${2:?port}"
  local bin
  bin="$(build)"
  mkdir -p "$data"
  data="$(cd "$data" && pwd)"
  exec 7>"$data/server.lock"
  flock 7
  if status "$data" 2>/dev/null; then
    return 0
  fi
  local engine
  if [[ "$(basename "$bin")" == mongod* ]]; then
    engine=mongod
    mkdir -p "$data/db"
    # Standalone: majority write concern and majority reads work on one node, and the adapters
    # need neither transactions nor change streams, so no replica set is initiated.
    "$bin" --bind_ip 127.0.0.1 --port "$port" --dbpath "$data/db" \
      >"$data/server.log" 2>&1 </dev/null 7>&- 8>&- &
  else
    engine=ferretdb
    mkdir -p "$data/sqlite" "$data/state"
    "$bin" --listen-addr="127.0.0.1:$port" --handler=sqlite --sqlite-url="file:$data/sqlite/" \
      --state-dir="$data/state" --telemetry=disable --debug-addr=- --log-level=warn \
      >"$data/server.log" 2>&1 </dev/null 7>&- 8>&- &
  fi
  local pid=$!
  echo "$pid" >"$data/server.pid"
  echo "$port" >"$data/server.port"
  echo "$engine" >"$data/server.engine"
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ferretdb.sh: $engine exited early; last log lines:" >&2
      tail -30 "$data/server.log" >&2
      rm -f "$data/server.pid"
      exit 1
    fi
    if answers "$port"; then
      echo "pid=$pid"
      echo "engine=$engine"
      echo "uri=mongodb://127.0.0.1:$port/"
      return 0
    fi
    sleep 0.2
  done
  echo "ferretdb.sh: $engine did not answer on 127.0.0.1:$port within 120 s" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

stop() {
  local data="${1:?data dir}"
  [[ -f "$data/server.pid" ]] || return 0
  local pid
  pid="$(cat "$data/server.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$data/server.pid"
}

built() {
  local mongod
  if mongod="$(mongod_path)"; then
    echo "$mongod"
    return 0
  fi
  [[ -x "$BIN" ]] || return 1
  echo "$BIN"
}

case "${1:-}" in
  build) build ;;
  built) built ;;
  start) shift && start "$@" ;;
  stop) shift && stop "$@" ;;
  status) shift && status "$@" ;;
  *)
    echo "usage: $0 build | built | start <data-dir> <port> | stop <data-dir> | status <data-dir>" >&2
    exit 2
    ;;
esac
