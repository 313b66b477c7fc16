#!/usr/bin/env bash
# Ledgerflow in distributed mode on one machine: the real engines from infra/local (FerretDB or
# mongod, Apache Kafka in KRaft mode, SeaweedFS for S3, nginx), then the four services, each its
# own process, behind nginx on one base URL.
#
#   infra/local/cluster.sh up [<run-dir>]       start whatever is not running yet, wait until every
#                                               service is ready, print `url=<nginx URL>`
#   infra/local/cluster.sh down [<run-dir>]     stop the services, nginx and the engines (data kept)
#   infra/local/cluster.sh status [<run-dir>]   one line per process; exit 1 when one is down
#   infra/local/cluster.sh env [<run-dir>]      the environment the services run with (sourceable)
#   infra/local/cluster.sh restart-service <name> [<run-dir>]
#                                               stop (SIGKILL with KILL=1) and start one service again
#   infra/local/cluster.sh purge [<run-dir>]    down, then delete the run dir (all data)
#
# <run-dir> defaults to $LEDGERFLOW_CLUSTER_DIR, else ./ledgerflow-cluster. Everything lives there:
# engine data, the services' logs (logs/<service>.log) and pid files. Ports (all on 127.0.0.1) come
# from the environment:
#   LEDGERFLOW_CLUSTER_PORT   nginx, the one URL clients use (default 5100)
#   services' HTTP ports      5101 tracking-ingest, 5102 artifact-store, 5103 registry-governance,
#                             5104 deployment (LEDGERFLOW_CLUSTER_SERVICE_PORT_BASE=5100 moves them)
#   services' gRPC            50051 metric ingest; 50061 tracking and 50062 registry service calls
#                             (LEDGERFLOW_CLUSTER_GRPC_BASE=50060 moves the service calls)
#   LEDGERFLOW_CLUSTER_MONGO_PORT (27118), LEDGERFLOW_CLUSTER_KAFKA_PORT (19092, controller +1),
#   LEDGERFLOW_CLUSTER_S3_PORT (18333, SeaweedFS base port +100)
# Services are started from dist/ (node tools/build.mjs first; `npm run dev:distributed` does both).
# Service-to-service calls carry LEDGERFLOW_SERVICE_TOKEN: taken from the environment, else generated
# once into <run-dir>/service-token. Auth: set LEDGERFLOW_AUTH=basic (and LEDGERFLOW_ADMIN_PASSWORD)
# in the environment of `up`; registry-governance checks credentials for every service.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SERVICES=(tracking-ingest artifact-store registry-governance deployment)

cmd="${1:-}"
if [[ "$cmd" == restart-service ]]; then
  only="${2:?usage: cluster.sh restart-service <name> [<run-dir>]}"
  RUN="${3:-${LEDGERFLOW_CLUSTER_DIR:-$PWD/ledgerflow-cluster}}"
else
  RUN="${2:-${LEDGERFLOW_CLUSTER_DIR:-$PWD/ledgerflow-cluster}}"
fi
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
# nginx's workers run unprivileged (nobody as root) and must reach their files under the run dir
# (mktemp -d makes it 0700)
chmod o+x "$RUN"

NGINX_PORT="${LEDGERFLOW_CLUSTER_PORT:-5100}"
SERVICE_BASE="${LEDGERFLOW_CLUSTER_SERVICE_PORT_BASE:-5100}"
GRPC_BASE="${LEDGERFLOW_CLUSTER_GRPC_BASE:-50060}"
INGEST_GRPC_PORT="${LEDGERFLOW_CLUSTER_INGEST_GRPC_PORT:-50051}"
MONGO_PORT="${LEDGERFLOW_CLUSTER_MONGO_PORT:-27118}"
KAFKA_PORT="${LEDGERFLOW_CLUSTER_KAFKA_PORT:-19092}"
S3_PORT="${LEDGERFLOW_CLUSTER_S3_PORT:-18333}"
S3_BASE_PORT="${LEDGERFLOW_CLUSTER_S3_BASE_PORT:-$((S3_PORT + 100))}"
S3_ACCESS_KEY="${LEDGERFLOW_S3_TEST_ACCESS_KEY:-ledgerflow-test}"
S3_SECRET_KEY="${LEDGERFLOW_S3_TEST_SECRET_KEY:-ledgerflow-test-secret}"
if [[ -z "${LEDGERFLOW_SERVICE_TOKEN:-}" ]]; then
  if [[ ! -s "$RUN/service-token" ]]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/service-token")
  fi
  LEDGERFLOW_SERVICE_TOKEN="$(cat "$RUN/service-token")"
fi

http_port() {
  case "$1" in
    tracking-ingest) echo $((SERVICE_BASE + 1)) ;;
    artifact-store) echo $((SERVICE_BASE + 2)) ;;
    registry-governance) echo $((SERVICE_BASE + 3)) ;;
    deployment) echo $((SERVICE_BASE + 4)) ;;
    *)
      echo "cluster.sh: unknown service '$1'" >&2
      return 1
      ;;
  esac
}

service_grpc_port() {
  case "$1" in
    tracking-ingest) echo $((GRPC_BASE + 1)) ;;
    registry-governance) echo $((GRPC_BASE + 2)) ;;
    artifact-store) echo $((GRPC_BASE + 3)) ;;
    deployment) echo $((GRPC_BASE + 4)) ;;
  esac
}

# The environment every service runs with (the per-service part is added in start_service).
cluster_env() {
  cat <<EOF
LEDGERFLOW_MODE=distributed
LEDGERFLOW_HOST=127.0.0.1
LEDGERFLOW_MONGO_URL=mongodb://127.0.0.1:${MONGO_PORT}/?serverMonitoringMode=poll
LEDGERFLOW_KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT}
LEDGERFLOW_TRACKING_GRPC_ADDRESS=127.0.0.1:$((GRPC_BASE + 1))
LEDGERFLOW_REGISTRY_GRPC_ADDRESS=127.0.0.1:$((GRPC_BASE + 2))
LEDGERFLOW_GRPC_PORT=${INGEST_GRPC_PORT}
LEDGERFLOW_ARTIFACT_STORE=s3
LEDGERFLOW_S3_ENDPOINT=http://127.0.0.1:${S3_PORT}
LEDGERFLOW_S3_BUCKET=ledgerflow-artifacts
LEDGERFLOW_S3_ACCESS_KEY=${S3_ACCESS_KEY}
LEDGERFLOW_S3_SECRET_KEY=${S3_SECRET_KEY}
LEDGERFLOW_SERVICE_TOKEN=${LEDGERFLOW_SERVICE_TOKEN}
LEDGERFLOW_TRUSTED_PROXIES=127.0.0.1
EOF
}

pid_alive() {
  local file="$1"
  [[ -f "$file" ]] && kill -0 "$(cat "$file")" 2>/dev/null
}

wait_ready() {
  local name="$1" port="$2" deadline=$((SECONDS + ${LEDGERFLOW_CLUSTER_READY_TIMEOUT:-120}))
  while ((SECONDS < deadline)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:${port}/ready" 2>/dev/null; then
      return 0
    fi
    if ! pid_alive "$RUN/pids/$name.pid"; then
      echo "cluster.sh: $name exited; last lines of $RUN/logs/$name.log:" >&2
      tail -n 30 "$RUN/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  echo "cluster.sh: $name not ready after ${LEDGERFLOW_CLUSTER_READY_TIMEOUT:-120} s:" >&2
  curl -sS "http://127.0.0.1:${port}/ready" >&2 || true
  return 1
}

start_service() {
  local name="$1" port
  port="$(http_port "$name")"
  mkdir -p "$RUN/pids" "$RUN/logs" "$RUN/data/$name"
  if pid_alive "$RUN/pids/$name.pid"; then
    wait_ready "$name" "$port"
    echo "$name: running (pid $(cat "$RUN/pids/$name.pid"))"
    return 0
  fi
  if [[ ! -f "$ROOT/dist/apps/cli/src/main.js" ]]; then
    echo "cluster.sh: dist/ is missing: run 'node tools/build.mjs' first" >&2
    return 1
  fi
  (
    set -a
    # shellcheck disable=SC1090
    source <(cluster_env)
    set +a
    export LEDGERFLOW_PORT="$port"
    export LEDGERFLOW_SERVICE_GRPC_PORT="$(service_grpc_port "$name")"
    export LEDGERFLOW_DATA_DIR="$RUN/data/$name"
    exec setsid node "$ROOT/bin/ledgerflow.js" service "$name" >>"$RUN/logs/$name.log" 2>&1 </dev/null
  ) &
  echo $! >"$RUN/pids/$name.pid"
  wait_ready "$name" "$port"
  echo "$name: ready on http://127.0.0.1:$port (pid $(cat "$RUN/pids/$name.pid"))"
}

stop_service() {
  local name="$1" signal="${2:-TERM}"
  local file="$RUN/pids/$name.pid"
  if pid_alive "$file"; then
    local pid
    pid="$(cat "$file")"
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# Starts each engine unless it already runs on this run dir.
engines_up() {
  bash "$HERE/ferretdb.sh" start "$RUN/mongo" "$MONGO_PORT" | sed 's/^/mongo: /'
  if [[ "$(bash "$HERE/kafka.sh" status "$RUN/kafka" 2>/dev/null || true)" == running* ]]; then
    echo "kafka: running"
  else
    bash "$HERE/kafka.sh" start "$RUN/kafka" "$KAFKA_PORT" "$((KAFKA_PORT + 1))" | sed 's/^/kafka: /'
  fi
  if pid_alive "$RUN/s3/weed.pid"; then
    echo "s3: running"
  else
    bash "$HERE/seaweedfs.sh" start "$RUN/s3" "$S3_PORT" "$S3_BASE_PORT" | sed 's/^/s3: /'
  fi
}

nginx_up() {
  LEDGERFLOW_UPSTREAM_TRACKING="127.0.0.1:$(http_port tracking-ingest)" \
    LEDGERFLOW_UPSTREAM_ARTIFACTS="127.0.0.1:$(http_port artifact-store)" \
    LEDGERFLOW_UPSTREAM_REGISTRY="127.0.0.1:$(http_port registry-governance)" \
    LEDGERFLOW_UPSTREAM_DEPLOYMENT="127.0.0.1:$(http_port deployment)" \
    bash "$HERE/nginx.sh" start "$RUN/nginx" "$NGINX_PORT" | sed 's/^/nginx: /'
}

case "$cmd" in
  up)
    engines_up
    # tracking first: the others ask it over gRPC (they would wait for it, within their deadline)
    for s in "${SERVICES[@]}"; do start_service "$s"; done
    nginx_up
    echo "url=http://127.0.0.1:${NGINX_PORT}"
    ;;
  down)
    for s in deployment registry-governance artifact-store tracking-ingest; do stop_service "$s"; done
    bash "$HERE/nginx.sh" stop "$RUN/nginx" >/dev/null 2>&1 || true
    bash "$HERE/seaweedfs.sh" stop "$RUN/s3" >/dev/null 2>&1 || true
    bash "$HERE/kafka.sh" stop "$RUN/kafka" >/dev/null 2>&1 || true
    bash "$HERE/ferretdb.sh" stop "$RUN/mongo" >/dev/null 2>&1 || true
    echo "stopped (data kept in $RUN)"
    ;;
  purge)
    "$0" down "$RUN" >/dev/null
    rm -rf "$RUN"
    echo "removed $RUN"
    ;;
  status)
    down=0
    for s in "${SERVICES[@]}"; do
      if pid_alive "$RUN/pids/$s.pid"; then
        ready="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(http_port "$s")/ready" || true)"
        echo "$s: running pid=$(cat "$RUN/pids/$s.pid") ready=$([[ "$ready" == 200 ]] && echo yes || echo "no ($ready)")"
      else
        echo "$s: stopped"
        down=1
      fi
    done
    bash "$HERE/ferretdb.sh" status "$RUN/mongo" >/dev/null 2>&1 && echo "mongo: running" || {
      echo "mongo: stopped"
      down=1
    }
    kafka="$(bash "$HERE/kafka.sh" status "$RUN/kafka" 2>/dev/null || true)"
    echo "kafka: ${kafka:-stopped}"
    [[ "$kafka" == running* ]] || down=1
    bash "$HERE/nginx.sh" status "$RUN/nginx" >/dev/null 2>&1 && echo "nginx: running url=http://127.0.0.1:${NGINX_PORT}" || {
      echo "nginx: stopped"
      down=1
    }
    exit "$down"
    ;;
  env)
    cluster_env
    ;;
  restart-service)
    http_port "$only" >/dev/null
    stop_service "$only" "$([[ "${KILL:-0}" == 1 ]] && echo KILL || echo TERM)"
    start_service "$only"
    ;;
  *)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
