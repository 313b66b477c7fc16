#!/usr/bin/env bash
# `npm run test:distributed`: distributed mode on the real engines, no Docker.
#
#   1. builds (node tools/build.mjs) and makes sure the engines are built/fetched (cached under
#      ~/.cache/ledgerflow): FerretDB or mongod, Apache Kafka, SeaweedFS, nginx;
#   2. runs the contract suites of the distributed adapters, each against a real engine it starts:
#      MongoDB event store and read models, the Kafka event bus, the S3 blob store, the gRPC lookups;
#   3. starts a whole cluster with infra/local/cluster.sh (engines, the four services as separate
#      processes, nginx in front) on its own ports and run dir, and runs the official MLflow client's
#      tracking, artifact and registry suites (tests/python) against the nginx URL;
#   4. runs the distributed e2e specs (apps/cli/src/*.distributed.spec.ts: fault tests and a replay
#      of the cluster's logs compared with an embedded replay; auth on, identity over gRPC, with the
#      MLflow client's auth suite against that cluster's nginx URL), which start their own clusters;
#   5. stops the cluster and deletes its data (kept, with the services' logs, when a step failed).
#
# Options: --keep (leave the cluster running), --only contracts|python|faults. Extra arguments
# after `--` go to pytest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export NX_NO_CLOUD=true NX_DAEMON=false
export LEDGERFLOW_REQUIRE_ENGINES=1

keep=false
only=""
pytest_args=()
while (($# > 0)); do
  case "$1" in
    --keep) keep=true ;;
    --only)
      only="$2"
      shift
      ;;
    --)
      shift
      pytest_args=("$@")
      break
      ;;
    *)
      echo "usage: tools/test-distributed.sh [--keep] [--only contracts|python|faults] [-- pytest args]" >&2
      exit 2
      ;;
  esac
  shift
done

want() { [[ -z "$only" || "$only" == "$1" ]]; }

step() {
  local name="$1"
  shift
  local started=$SECONDS
  echo
  echo "=== test:distributed: ${name}"
  "$@"
  echo "=== test:distributed: ${name}: done in $((SECONDS - started)) s"
}

jest() {
  # --forceExit: a suite that leaves a handle open must not hang the run
  node --experimental-vm-modules node_modules/jest/bin/jest.js --forceExit "$@"
}

engines() {
  bash infra/local/ferretdb.sh build >/dev/null
  bash infra/local/kafka.sh fetch >/dev/null
  bash infra/local/seaweedfs.sh build >/dev/null
  bash infra/local/nginx.sh install >/dev/null
}

contracts() {
  jest --config libs/platform/mongo/jest.config.cjs
  jest --config libs/platform/kafka/jest.config.cjs libs/platform/kafka/src/kafka-event-bus.int.spec.ts
  jest --config libs/testing/jest.config.cjs libs/testing/src/blob-store-contract.spec.ts
  jest --config libs/platform/service-calls/jest.config.cjs
}

# Ports of the test cluster: away from a developer's `npm run dev:distributed` (5100, 27118, ...).
export LEDGERFLOW_CLUSTER_PORT="${LEDGERFLOW_CLUSTER_PORT:-5200}"
export LEDGERFLOW_CLUSTER_SERVICE_PORT_BASE="${LEDGERFLOW_CLUSTER_SERVICE_PORT_BASE:-5200}"
# gRPC ports below Linux's ephemeral range (32768-60999), where an outgoing connection could take
# one just before a service binds it
export LEDGERFLOW_CLUSTER_GRPC_BASE="${LEDGERFLOW_CLUSTER_GRPC_BASE:-20160}"
export LEDGERFLOW_CLUSTER_INGEST_GRPC_PORT="${LEDGERFLOW_CLUSTER_INGEST_GRPC_PORT:-20151}"
export LEDGERFLOW_CLUSTER_MONGO_PORT="${LEDGERFLOW_CLUSTER_MONGO_PORT:-27218}"
export LEDGERFLOW_CLUSTER_KAFKA_PORT="${LEDGERFLOW_CLUSTER_KAFKA_PORT:-19192}"
export LEDGERFLOW_CLUSTER_S3_PORT="${LEDGERFLOW_CLUSTER_S3_PORT:-18633}"

mkdir -p tmp
RUN_DIR="$(mktemp -d "$ROOT/tmp/test-distributed-XXXXXX")"
failed=true
cleanup() {
  if [[ "$keep" == true ]]; then
    echo "cluster left running in $RUN_DIR (infra/local/cluster.sh down $RUN_DIR)"
    return
  fi
  bash infra/local/cluster.sh down "$RUN_DIR" >/dev/null 2>&1 || true
  if [[ "$failed" == true ]]; then
    echo "the cluster's data and logs are kept in $RUN_DIR/logs"
  else
    rm -rf "$RUN_DIR"
  fi
}
trap cleanup EXIT

python_suites() {
  local url
  # Shows the cluster's output as it comes, on this script's own stderr: `tee /dev/stderr` would
  # reopen a redirected log file with O_TRUNC and wipe what was written before it.
  url="$(bash infra/local/cluster.sh up "$RUN_DIR" | tee >(cat >&2) | sed -n 's/^url=//p')"
  if [ -z "$url" ]; then
    echo "cluster did not start (no url= line)" >&2
    return 1
  fi
  # Writes wait for every read model of their service; a busy machine running FerretDB on SQLite
  # needs more than the embedded suite's 15 s per request.
  local venv
  venv="$(bash tools/python-env.sh)"
  LEDGERFLOW_TEST_URL="$url" LEDGERFLOW_TEST_HTTP_TIMEOUT="${LEDGERFLOW_TEST_HTTP_TIMEOUT:-60}" \
    PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -p no:cacheprovider -v --color=no \
    tests/python/test_mlflow_client_tracking.py \
    tests/python/test_mlflow_client_artifacts.py \
    tests/python/test_mlflow_client_registry.py \
    "${pytest_args[@]}"
}

faults() {
  local specs
  specs="$(ls apps/cli/src/*.distributed.spec.ts 2>/dev/null || true)"
  if [[ -z "$specs" ]]; then
    echo "no distributed e2e specs"
    return 0
  fi
  # shellcheck disable=SC2086
  LEDGERFLOW_DISTRIBUTED_TESTS=1 jest --config apps/cli/jest.config.cjs --runInBand $specs
}

step "build" node tools/build.mjs --quiet
step "engines (cached)" engines
want contracts && step "adapter contract suites" contracts
want python && step "MLflow client suites against the nginx URL" python_suites
want faults && step "distributed e2e and fault tests" faults
failed=false
echo
echo "=== test:distributed: all passed"
