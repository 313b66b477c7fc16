#!/usr/bin/env bash
# A local S3-compatible server (SeaweedFS) for tests and benchmarks, built from the Go module proxy.
#
#   infra/local/seaweedfs.sh build                 build the `weed` binary once, cached (prints its path)
#   infra/local/seaweedfs.sh start <data-dir> <s3-port> [<base-port>]
#                                                  start `weed server -s3` on 127.0.0.1, wait until the
#                                                  S3 port answers; prints `pid=<n>` and `endpoint=<url>`
#   infra/local/seaweedfs.sh stop <data-dir>       stop the server started on that data dir
#
# The binary lives in ${LEDGERFLOW_CACHE:-~/.cache/ledgerflow}/bin/weed-<version>. `go install` refuses
# the module (its go.mod has replace directives), so the module is downloaded and built as the main
# module from a writable copy. Credentials are fixed test values (see S3_ACCESS_KEY below); every
# port binds to 127.0.0.1 only and telemetry is off.
set -euo pipefail

VERSION="v0.0.0-20261109003541-7506e5f91cd6"
MODULE="github.com/seaweedfs/seaweedfs"
CACHE="${LEDGERFLOW_CACHE:-$HOME/.cache/ledgerflow}"
BIN="$CACHE/bin/weed-$VERSION"
# Go may be installed outside PATH (the official tarball lives in /usr/local/go).
PATH="$PATH:/usr/local/go/bin"
S3_ACCESS_KEY="${LEDGERFLOW_S3_TEST_ACCESS_KEY:-ledgerflow-test}"
S3_SECRET_KEY="${LEDGERFLOW_S3_TEST_SECRET_KEY:-ledgerflow-test-secret}"

build() {
  if [[ -x "$BIN" ]]; then
    echo "$BIN"
    return 0
  fi
  command -v go >/dev/null || {
    echo "seaweedfs.sh: Go is needed to build SeaweedFS" >&2
    exit 1
  }
  mkdir -p "$CACHE/bin" "$CACHE/src"
  # One builder at a time (tests and CI may ask together).
  exec 9>"$CACHE/weed-build.lock"
  flock 9
  if [[ -x "$BIN" ]]; then
    echo "$BIN"
    return 0
  fi
  local started=$SECONDS
  local dir
  dir="$(cd "$CACHE/src" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$dir" ]] || {
    echo "seaweedfs.sh: could not download $MODULE@$VERSION" >&2
    exit 1
  }
  local work="$CACHE/src/seaweedfs-$VERSION"
  rm -rf "$work"
  cp -r "$dir" "$work"
  chmod -R u+w "$work"
  echo "seaweedfs.sh: building weed $VERSION (several minutes on first use)..." >&2
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" ./weed)
  mv "$BIN.tmp" "$BIN"
  rm -rf "$work"
  echo "seaweedfs.sh: built in $((SECONDS - started)) s" >&2
  echo "$BIN"
}

start() {
  local data="${1:?data dir}" s3port="${2:?s3 port}" base="${3:-}"
  build >/dev/null
  if [[ -z "$base" ]]; then
    # Other ports sit above the S3 port; their gRPC twins are fixed explicitly so nothing binds
    # the defaults (port + 10000) that another test's server might already use.
    base=$((s3port + 1))
  fi
  mkdir -p "$data/weed"
  cat >"$data/s3.json" <<JSON
{
  "identities": [
    {
      "name": "ledgerflow-test",
      "credentials": [{ "accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY" }],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
JSON
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$BIN" server \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$data/weed" \
    -master.port=$((base)) -master.port.grpc=$((base + 1)) -master.telemetry=false \
    -master.volumeSizeLimitMB=1024 \
    -volume.port=$((base + 2)) -volume.port.grpc=$((base + 3)) -volume.max=0 \
    -filer -filer.port=$((base + 4)) -filer.port.grpc=$((base + 5)) \
    -filer.localSocket="$data/filer.sock" \
    -s3 -s3.port="$s3port" -s3.port.grpc=$((base + 6)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.localSocket="$data/s3.sock" -s3.config="$data/s3.json" \
    >"$data/weed.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$data/weed.pid"
  local endpoint="http://127.0.0.1:$s3port"
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "seaweedfs.sh: weed exited early; last log lines:" >&2
      tail -30 "$data/weed.log" >&2
      exit 1
    fi
    # Any HTTP answer from the S3 gateway (403 without a signature) means it is up.
    if code="$(curl -s -o /dev/null -w '%{http_code}' "$endpoint/" 2>/dev/null)" && [[ "$code" != "000" ]]; then
      echo "pid=$pid"
      echo "endpoint=$endpoint"
      echo "access_key=$S3_ACCESS_KEY"
      echo "secret_key=$S3_SECRET_KEY"
      return 0
    fi
    sleep 0.2
  done
  echo "seaweedfs.sh: S3 gateway did not answer on $endpoint within 120 s" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

stop() {
  local data="${1:?data dir}"
  [[ -f "$data/weed.pid" ]] || return 0
  local pid
  pid="$(cat "$data/weed.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$data/weed.pid"
}

case "${1:-}" in
  build) build ;;
  start) shift && start "$@" ;;
  stop) shift && stop "$@" ;;
  *)
    echo "usage: $0 build | start <data-dir> <s3-port> [<base-port>] | stop <data-dir>" >&2
    exit 2
    ;;
esac
