#!/usr/bin/env bash
# A local Apache Kafka broker in KRaft mode (one process is broker and controller), run from the
# official jars on Maven Central. No ZooKeeper, no Docker.
#
#   infra/local/kafka.sh fetch                     resolve the jars once, cached (prints the libs dir)
#   infra/local/kafka.sh start <data-dir> [<port>] [<controller-port>]
#                                                  format the data dir on first use, start the broker on
#                                                  127.0.0.1:<port> (default 9092; controller on port+1),
#                                                  wait until it accepts clients; prints `pid=<n>` and
#                                                  `brokers=127.0.0.1:<port>`. Starting again on the same
#                                                  data dir keeps its topics, offsets and cluster id.
#   infra/local/kafka.sh stop <data-dir>           controlled shutdown (SIGTERM, SIGKILL after 30 s)
#   infra/local/kafka.sh kill <data-dir>           SIGKILL (fault tests: a crashed broker)
#   infra/local/kafka.sh status <data-dir>         prints `running pid=<n> brokers=...` or `stopped`
#
# The jars live in ${LEDGERFLOW_CACHE:-~/.cache/ledgerflow}/kafka-<version>/libs, resolved by Maven
# (`mvn dependency:copy-dependencies` on a generated pom) from org.apache.kafka:kafka_2.13 and its
# runtime dependencies. Needs Java 17+ and Maven. The broker's log is <data-dir>/kafka.log.
set -euo pipefail

VERSION="${LEDGERFLOW_KAFKA_VERSION:-3.9.1}"
CACHE="${LEDGERFLOW_CACHE:-$HOME/.cache/ledgerflow}"
HOME_DIR="$CACHE/kafka-$VERSION"
LIBS="$HOME_DIR/libs"
HEAP="${LEDGERFLOW_KAFKA_HEAP:--Xms128m -Xmx512m}"

fetch() {
  if [[ -f "$HOME_DIR/.complete" ]]; then
    echo "$LIBS"
    return 0
  fi
  command -v java >/dev/null || {
    echo "kafka.sh: Java 17+ is needed to run Kafka" >&2
    exit 1
  }
  command -v mvn >/dev/null || {
    echo "kafka.sh: Maven is needed to fetch the Kafka jars" >&2
    exit 1
  }
  mkdir -p "$HOME_DIR"
  # One fetcher at a time (tests and CI may ask together).
  exec 9>"$HOME_DIR.lock"
  flock 9
  if [[ -f "$HOME_DIR/.complete" ]]; then
    echo "$LIBS"
    return 0
  fi
  local started=$SECONDS
  local work="$HOME_DIR/resolve"
  rm -rf "$work" "$LIBS"
  mkdir -p "$work"
  # kafka_2.13 is the broker (kafka.Kafka, kafka.tools.StorageTool); slf4j-reload4j gives its
  # logging a backend (without one the broker logs nothing at all).
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ledgerflow.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
POM
  echo "kafka.sh: resolving Kafka $VERSION jars with Maven..." >&2
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$LIBS.tmp") >&2
  mv "$LIBS.tmp" "$LIBS"
  cat >"$HOME_DIR/log4j.properties" <<'LOG4J'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
LOG4J
  rm -rf "$work"
  touch "$HOME_DIR/.complete"
  echo "kafka.sh: fetched $(ls "$LIBS" | wc -l) jars in $((SECONDS - started)) s" >&2
  echo "$LIBS"
}

# exec: started in the background, the broker's pid is then the pid the script records.
kafka_java() {
  exec java $HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$HOME_DIR/log4j.properties" \
    -cp "$LIBS/*" "$@"
}

write_config() {
  local data="$1" port="$2" cport="$3"
  cat >"$data/server.properties" <<PROPS
# Written by infra/local/kafka.sh: one KRaft node that is broker and controller, on 127.0.0.1 only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data/logs
# Topics are created by Ledgerflow with their own settings (partitions, retention); a typo in a
# topic name must fail instead of creating a new empty topic.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=104857600
PROPS
}

start() {
  local data="${1:?data dir}" port="${2:-9092}" cport="${3:-}"
  [[ -n "$cport" ]] || cport=$((port + 1))
  fetch >/dev/null
  mkdir -p "$data"
  data="$(cd "$data" && pwd)"
  if [[ -f "$data/kafka.pid" ]] && kill -0 "$(cat "$data/kafka.pid")" 2>/dev/null; then
    echo "kafka.sh: already running on $data (pid $(cat "$data/kafka.pid"))" >&2
    exit 1
  fi
  write_config "$data" "$port" "$cport"
  if [[ ! -f "$data/logs/meta.properties" ]]; then
    local cluster
    cluster="$( (kafka_java kafka.tools.StorageTool random-uuid) 2>/dev/null | tail -1)"
    (kafka_java kafka.tools.StorageTool format -t "$cluster" -c "$data/server.properties") \
      >"$data/format.log" 2>&1 || {
      echo "kafka.sh: formatting $data/logs failed:" >&2
      cat "$data/format.log" >&2
      exit 1
    }
  fi
  # the log exists before the background job opens it: the readiness check below counts its lines
  touch "$data/kafka.log"
  kafka_java -Dkafka.logs.dir="$data" kafka.Kafka "$data/server.properties" \
    >>"$data/kafka.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$data/kafka.pid"
  echo "$port" >"$data/kafka.port"
  # Ready once the broker logs that it started (the port alone opens before the broker can serve).
  local mark
  mark="$(wc -l <"$data/kafka.log")"
  for _ in $(seq 1 900); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kafka.sh: kafka exited early; last log lines:" >&2
      tail -40 "$data/kafka.log" >&2
      rm -f "$data/kafka.pid"
      exit 1
    fi
    if tail -n +"$((mark + 1))" "$data/kafka.log" | grep -q 'Kafka Server started'; then
      echo "pid=$pid"
      echo "brokers=127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  echo "kafka.sh: the broker did not start within 180 s; last log lines:" >&2
  tail -40 "$data/kafka.log" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$data/kafka.pid"
  exit 1
}

stop_with() {
  local signal="$1" data="${2:?data dir}"
  [[ -f "$data/kafka.pid" ]] || return 0
  local pid
  pid="$(cat "$data/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$signal" "$pid"
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$data/kafka.pid"
}

status() {
  local data="${1:?data dir}"
  if [[ -f "$data/kafka.pid" ]] && kill -0 "$(cat "$data/kafka.pid")" 2>/dev/null; then
    echo "running pid=$(cat "$data/kafka.pid") brokers=127.0.0.1:$(cat "$data/kafka.port")"
  else
    echo "stopped"
    return 3
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) shift && start "$@" ;;
  stop) shift && stop_with TERM "$@" ;;
  kill) shift && stop_with KILL "$@" ;;
  status) shift && status "$@" ;;
  *)
    echo "usage: $0 fetch | start <data-dir> [<port>] [<controller-port>] | stop <data-dir> | kill <data-dir> | status <data-dir>" >&2
    exit 2
    ;;
esac
