#!/usr/bin/env bash
# Local Kafka + Schema Registry stack for development, tests and the demo.
#
# Owns: fetching Apache Kafka (KRaft, single node) and Apicurio Registry from Maven Central with
# mvn, caching them outside the work tree, starting/stopping them, and waiting until they answer.
# Must not: kill anything it did not start (pid files only), or touch the work tree.
#
#   scripts/stack.sh start    fetch if needed, start both (idempotent), wait until ready
#   scripts/stack.sh stop     stop what start started
#   scripts/stack.sh status   say what runs; exit 0 only if both answer
#   scripts/stack.sh fetch    download only
#   scripts/stack.sh reset    stop and wipe the broker's data (a clean cluster on next start)
set -euo pipefail

KAFKA_VERSION="${SYNCLINE_KAFKA_VERSION:-4.1.1}"
APICURIO_VERSION="${SYNCLINE_APICURIO_VERSION:-3.3.3}"
LOG4J_VERSION="${SYNCLINE_LOG4J_VERSION:-2.24.3}"
CACHE="${SYNCLINE_CACHE:-$HOME/.cache/syncline}"
RUN="${SYNCLINE_RUN_DIR:-$CACHE/run}"
KAFKA_PORT="${SYNCLINE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${SYNCLINE_CONTROLLER_PORT:-9093}"
REGISTRY_PORT="${SYNCLINE_REGISTRY_PORT:-8081}"
# Apicurio (Quarkus) serves health and metrics on a management interface of its own, by default on
# 0.0.0.0:9000, a port many tools use: loopback here, on a port little else picks.
REGISTRY_MANAGEMENT_PORT="${SYNCLINE_REGISTRY_MANAGEMENT_PORT:-18081}"
START_TIMEOUT="${SYNCLINE_START_TIMEOUT:-120}"

KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
APICURIO_HOME="$CACHE/apicurio-$APICURIO_VERSION"
REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

java_bin() {
  if [[ -n "${JAVA_HOME:-}" ]]; then echo "$JAVA_HOME/bin/java"; else command -v java || die "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"; fi
}

java_major() { # java binary -> major version
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n 1
}

# Apicurio 3.1+ is built for Java 21. Use a JDK >= 21 when the machine has one (the default java,
# SYNCLINE_REGISTRY_JAVA_HOME, or one under /usr/lib/jvm); otherwise fall back to the last
# Apicurio 3.x that runs on Java 17.
APICURIO_JAVA17_VERSION="3.0.9"
pick_registry_java() {
  local candidates=()
  [[ -n "${SYNCLINE_REGISTRY_JAVA_HOME:-}" ]] && candidates+=("$SYNCLINE_REGISTRY_JAVA_HOME/bin/java")
  candidates+=("$(java_bin)")
  for j in /usr/lib/jvm/*/bin/java; do [[ -x "$j" ]] && candidates+=("$j"); done
  for j in "${candidates[@]}"; do
    local v; v=$(java_major "$j")
    if [[ -n "$v" && "$v" -ge 21 ]]; then REGISTRY_JAVA="$j"; return 0; fi
  done
  REGISTRY_JAVA="$(java_bin)"
  if [[ -z "${SYNCLINE_APICURIO_VERSION:-}" ]]; then
    APICURIO_VERSION="$APICURIO_JAVA17_VERSION"
    APICURIO_HOME="$CACHE/apicurio-$APICURIO_VERSION"
    log "no JDK >= 21 found: using Apicurio $APICURIO_VERSION on Java 17"
  fi
}

# --- fetch ---------------------------------------------------------------------------------

fetch_kafka() {
  # The marker names the fetch layout: v2 added the slf4j 1.7 binding Kafka 4.1 logs through.
  [[ -f "$KAFKA_HOME/.complete-v2" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch Kafka"
  log "fetching Apache Kafka $KAFKA_VERSION and its runtime dependencies from Maven Central"
  rm -rf "$KAFKA_HOME" && mkdir -p "$KAFKA_HOME/libs"
  # A throwaway pom: the broker (kafka_2.13), the storage tool, and a log4j2 binding.
  cat >"$KAFKA_HOME/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.syncline.stack</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-server</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  (cd "$KAFKA_HOME" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_HOME/libs" >"$KAFKA_HOME/fetch.log" 2>&1) \
    || { tail -n 30 "$KAFKA_HOME/fetch.log" >&2; die "could not fetch Kafka $KAFKA_VERSION (set SYNCLINE_KAFKA_VERSION to another 4.x)"; }
  # Kafka 4 logs through log4j2; other slf4j bindings would fight over it.
  rm -f "$KAFKA_HOME"/libs/slf4j-reload4j-*.jar "$KAFKA_HOME"/libs/logback-*.jar
  touch "$KAFKA_HOME/.complete-v2"
}

fetch_apicurio() {
  [[ -f "$APICURIO_HOME/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch Apicurio"
  log "fetching Apicurio Registry $APICURIO_VERSION (all assembly) from Maven Central"
  rm -rf "$APICURIO_HOME" && mkdir -p "$APICURIO_HOME/dl"
  local ok=""
  for ext in tar.gz zip; do
    if (cd "$APICURIO_HOME" && mvn -B -q dependency:copy \
          -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:$ext:all" \
          -DoutputDirectory="$APICURIO_HOME/dl" >"$APICURIO_HOME/fetch.log" 2>&1); then
      ok="$ext"; break
    fi
  done
  [[ -n "$ok" ]] || { tail -n 30 "$APICURIO_HOME/fetch.log" >&2; die "could not fetch Apicurio $APICURIO_VERSION (set SYNCLINE_APICURIO_VERSION to another 3.x)"; }
  local archive
  archive=$(ls "$APICURIO_HOME"/dl/*)
  mkdir -p "$APICURIO_HOME/app"
  case "$ok" in
    tar.gz) tar -xzf "$archive" -C "$APICURIO_HOME/app" ;;
    zip) (cd "$APICURIO_HOME/app" && jar xf "$archive") ;;
  esac
  local run_jar
  # 3.1+ ships the fast-jar layout (quarkus-run.jar); 3.0.x a legacy *-runner.jar.
  run_jar=$(find "$APICURIO_HOME/app" -name quarkus-run.jar | head -n 1)
  [[ -n "$run_jar" ]] || run_jar=$(find "$APICURIO_HOME/app" -maxdepth 2 -name '*-runner.jar' | head -n 1)
  [[ -n "$run_jar" ]] || die "the Apicurio archive holds no quarkus-run.jar or *-runner.jar"
  echo "$run_jar" >"$APICURIO_HOME/run-jar"
  rm -rf "$APICURIO_HOME/dl"
  touch "$APICURIO_HOME/.complete"
}

# --- process bookkeeping -------------------------------------------------------------------

pid_alive() { # pidfile
  [[ -f "$1" ]] || return 1
  local pid; pid=$(cat "$1")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

stop_pidfile() { # name pidfile
  local name=$1 file=$2
  if pid_alive "$file"; then
    local pid; pid=$(cat "$file")
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 30 s, killing"; kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$file"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Fails before anything starts when a port the service needs is held by another process, naming
# the port and the variable that moves it (a late bind failure reads as "did not become ready").
require_free_ports() { # service VAR=port...
  local service=$1; shift
  local pair var port
  for pair in "$@"; do
    var=${pair%%=*}; port=${pair#*=}
    if port_open "$port"; then
      die "$service needs port $port on 127.0.0.1, which another process holds: stop it or set $var to a free port"
    fi
  done
}

# --- readiness -----------------------------------------------------------------------------

kafka_ready() {
  # A real metadata request: the admin tool asks the broker for its cluster id.
  port_open "$KAFKA_PORT" || return 1
  "$(java_bin)" -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$RUN/tools-log4j2.properties" \
    org.apache.kafka.tools.ClusterTool cluster-id --bootstrap-server "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1
}

registry_ready() {
  curl -fsS -o /dev/null --max-time 3 "$REGISTRY_URL/subjects" 2>/dev/null
}

wait_for() { # name check logfile
  local name=$1 check=$2 logfile=$3 deadline=$((SECONDS + START_TIMEOUT))
  until $check; do
    if (( SECONDS > deadline )); then
      log "$name did not become ready within ${START_TIMEOUT}s; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    sleep 1
  done
  log "$name ready"
}

# --- start ---------------------------------------------------------------------------------

write_kafka_config() {
  mkdir -p "$RUN/kafka-data"
  cat >"$RUN/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$RUN/kafka-data
num.partitions=3
# One node: every internal topic must live with a single replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# Tests restart workers often; fence abandoned transactions quickly.
transaction.max.timeout.ms=900000
log.retention.hours=24
log.segment.bytes=104857600
EOF
  # Extra broker properties for experiments (e.g. a clock test), appended last so they win.
  if [[ -n "${SYNCLINE_KAFKA_EXTRA_CONFIG:-}" ]]; then
    cat "$SYNCLINE_KAFKA_EXTRA_CONFIG" >>"$RUN/server.properties" \
      || die "cannot read SYNCLINE_KAFKA_EXTRA_CONFIG=$SYNCLINE_KAFKA_EXTRA_CONFIG"
  fi
  cat >"$RUN/log4j2.properties" <<EOF
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=FILE
appender.file.type=File
appender.file.name=FILE
appender.file.fileName=$RUN/kafka.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
EOF
  cat >"$RUN/tools-log4j2.properties" <<EOF
rootLogger.level=ERROR
rootLogger.appenderRef.err.ref=STDERR
appender.err.type=Console
appender.err.name=STDERR
appender.err.target=SYSTEM_ERR
appender.err.layout.type=PatternLayout
appender.err.layout.pattern=%p %m%n
EOF
}

start_kafka() {
  if pid_alive "$RUN/kafka.pid"; then log "kafka already running (pid $(cat "$RUN/kafka.pid"))"; return 0; fi
  require_free_ports kafka "SYNCLINE_KAFKA_PORT=$KAFKA_PORT" "SYNCLINE_CONTROLLER_PORT=$CONTROLLER_PORT"
  write_kafka_config
  local java; java=$(java_bin)
  if [[ ! -f "$RUN/kafka-data/meta.properties" ]]; then
    log "formatting KRaft storage"
    "$java" -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$RUN/tools-log4j2.properties" \
      kafka.tools.StorageTool format --config "$RUN/server.properties" \
      --cluster-id "$("$java" -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$RUN/tools-log4j2.properties" kafka.tools.StorageTool random-uuid)" \
      >"$RUN/format.log" 2>&1 || { cat "$RUN/format.log" >&2; die "formatting KRaft storage failed"; }
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  nohup "$java" -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$RUN/server.properties" \
    >"$RUN/kafka.out" 2>&1 </dev/null &
  echo $! >"$RUN/kafka.pid"
}

start_registry() {
  if pid_alive "$RUN/registry.pid"; then log "registry already running (pid $(cat "$RUN/registry.pid"))"; return 0; fi
  require_free_ports registry "SYNCLINE_REGISTRY_PORT=$REGISTRY_PORT" "SYNCLINE_REGISTRY_MANAGEMENT_PORT=$REGISTRY_MANAGEMENT_PORT"
  local java="$REGISTRY_JAVA"
  log "starting Apicurio Registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT (in-memory storage, management on 127.0.0.1:$REGISTRY_MANAGEMENT_PORT)"
  # In-memory storage is the registry's default; state is gone on stop, which the tests want.
  QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT="$REGISTRY_PORT" \
  QUARKUS_MANAGEMENT_HOST=127.0.0.1 QUARKUS_MANAGEMENT_PORT="$REGISTRY_MANAGEMENT_PORT" \
  APICURIO_REST_DELETION_ARTIFACT_ENABLED=true \
  APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED=true \
  QUARKUS_LOG_CONSOLE_COLOR=false \
    nohup "$java" -Xms128m -Xmx512m -jar "$(cat "$APICURIO_HOME/run-jar")" \
    >"$RUN/registry.log" 2>&1 </dev/null &
  echo $! >"$RUN/registry.pid"
}

cmd_start() {
  mkdir -p "$RUN"
  pick_registry_java
  fetch_kafka
  fetch_apicurio
  only="${1:-all}"
  case "$only" in all|kafka) start_kafka ;; esac
  case "$only" in all|registry) start_registry ;; esac
  case "$only" in all|kafka) wait_for kafka kafka_ready "$RUN/kafka.log" || { tail -n 20 "$RUN/kafka.out" >&2; exit 1; } ;; esac
  case "$only" in all|registry) wait_for registry registry_ready "$RUN/registry.log" || exit 1 ;; esac
  log "kafka: 127.0.0.1:$KAFKA_PORT  registry: $REGISTRY_URL"
}

cmd_stop() {
  only="${1:-all}"
  case "$only" in all|registry) stop_pidfile registry "$RUN/registry.pid" ;; esac
  case "$only" in all|kafka) stop_pidfile kafka "$RUN/kafka.pid" ;; esac
}

cmd_status() {
  local rc=0
  if pid_alive "$RUN/kafka.pid" && kafka_ready; then echo "kafka: up (pid $(cat "$RUN/kafka.pid"), 127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; rc=1; fi
  if pid_alive "$RUN/registry.pid" && registry_ready; then echo "registry: up (pid $(cat "$RUN/registry.pid"), $REGISTRY_URL)"; else echo "registry: down"; rc=1; fi
  return $rc
}

case "${1:-}" in
  start) cmd_start "${2:-all}" ;;
  stop) cmd_stop "${2:-all}" ;;
  status) cmd_status ;;
  fetch) mkdir -p "$RUN"; pick_registry_java; fetch_kafka; fetch_apicurio ;;
  reset) cmd_stop all; rm -rf "$RUN/kafka-data"; log "broker data wiped" ;;
  *) echo "usage: $0 start|stop|status|fetch|reset [kafka|registry]" >&2; exit 2 ;;
esac
