#!/usr/bin/env bash
# Run a real Apache Kafka (KRaft, no ZooKeeper, no Docker) on 127.0.0.1 for
# development and tests. Jars come from Maven Central through `mvn`, because
# that is the one distribution channel every dev/CI machine here can reach.
# See README.md next to this file. Only the bootstrap list goes to stdout.
set -euo pipefail

VERSION="${BATON_KAFKA_VERSION:-4.4.0}"
CACHE="${BATON_KAFKA_CACHE:-${BATON_CACHE:-$HOME/.cache/baton}/kafka-$VERSION}"
LOG4J_SLF4J_VERSION="2.25.5"     # SLF4J 1.x -> log4j2 bridge (Kafka ships slf4j-api 1.7)
START_TIMEOUT="${BATON_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${BATON_KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# A dev broker lives for minutes on a small machine: C1-only JIT and serial GC
# start noticeably faster and use less CPU than the production G1/C2 defaults.
BROKER_JVM=(-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)
TOOL_JVM=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: kafka.sh fetch
       kafka.sh start [--brokers 1|3] [--dir DIR] [--sasl] [--tls PKI] [--detour]
                                                    # prints bootstrap servers; with
                                                    # --sasl clients must authenticate
                                                    # (SASL/SCRAM-SHA-512): user baton,
                                                    # password in DIR/sasl/baton.password;
                                                    # with --tls, TLS with client
                                                    # certificates required: PKI has
                                                    # ca.pem, kafka.pem, kafka.key;
                                                    # with --detour (plaintext only),
                                                    # a second listener per broker
                                                    # (DPORTS in DIR/cluster.env)
                                                    # advertised at APORTS, where a
                                                    # test puts a proxy it can cut
       kafka.sh stop --dir DIR
       kafka.sh status --dir DIR
       kafka.sh kill-broker --dir DIR N             # SIGKILL node N (1-based)
       kafka.sh start-broker --dir DIR N            # restart node N, same config/data
       kafka.sh run CLASS [ARGS...]                 # run a Kafka tool class, e.g.
                                                    # org.apache.kafka.tools.TopicCommand
EOF
  exit 2
}

# ---- fetch: resolve the jars once into $CACHE/libs ---------------------------
fetch() {
  [[ -f "$CACHE/.complete" ]] && return 0   # cached: no network, no mvn
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka jars)"
  mkdir -p "$CACHE"
  # Parallel first runs (e.g. test shards) must not both rewrite libs/: lock.
  # The lock lives in a subshell so the brokers started later don't inherit it.
  ( if command -v flock >/dev/null; then flock 9; fi
    if [[ ! -f "$CACHE/.complete" ]]; then fetch_locked; fi ) 9>"$CACHE/.lock"
}
fetch_locked() {
  # kafka_2.13 has kafka.Kafka (broker) and kafka.tools.StorageTool (format);
  # kafka-tools has TopicCommand & co. connect-runtime (pulled in by kafka-tools
  # only for the connect-plugin-path tool) would add ~45 jetty/jersey jars: skip.
  cat >"$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.baton</groupId><artifactId>kafka-dev</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_SLF4J_VERSION</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>
  </dependencies>
</project>
EOF
  log "fetching Kafka $VERSION jars with Maven into $CACHE/libs"
  rm -rf "$CACHE/libs"
  # Output kept in mvn.log and shown only on failure (Maven 3.8 emits ANSI resets even with -B).
  mvn -B -q -f "$CACHE/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE/libs" >"$CACHE/mvn.log" 2>&1 \
    || { cat "$CACHE/mvn.log" >&2; die "mvn failed (log: $CACHE/mvn.log)"; }
  [[ -f "$CACHE/libs/kafka_2.13-$VERSION.jar" ]] || die "kafka_2.13-$VERSION.jar missing after mvn"
  # Tools (TopicCommand, console producer...) log WARN and up to stderr.
  printf '%s\n' 'status = error' 'appender.err.type = Console' 'appender.err.name = STDERR' \
    'appender.err.target = SYSTEM_ERR' 'appender.err.layout.type = PatternLayout' \
    'appender.err.layout.pattern = [%d] %p %m (%c)%n' \
    'rootLogger.level = warn' 'rootLogger.appenderRef.err.ref = STDERR' >"$CACHE/tools-log4j2.properties"
  touch "$CACHE/.complete"
}

# Run a Kafka main class (tool) with the cached jars.
run_class() {
  fetch
  "$JAVA" "${TOOL_JVM[@]}" -Dlog4j2.configurationFile="$CACHE/tools-log4j2.properties" \
    -cp "$CACHE/libs/*" "$@"
}

# ---- helpers ---------------------------------------------------------------
# N distinct free ports on 127.0.0.1, chosen by the OS (bind to port 0, all
# held open together so they differ). Fallback: random ports probed via bash.
free_ports() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in ss))' "$1"
  else
    local p seen=" " n=0
    while (( n < $1 )); do
      p=$((20000 + RANDOM % 12000))
      [[ $seen == *" $p "* ]] && continue
      port_open "$p" && continue
      seen+="$p "; echo "$p"; n=$((n + 1))
    done
  fi
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# State dir layout: cluster.env (BROKERS, PORTS, CACHE), log4j2.properties,
# nodeN/{server.properties,data/,logs/server.log,logs/stdout.log,pid}.
load_cluster() {
  [[ -n "${DIR:-}" ]] || die "--dir DIR is required"
  [[ -f "$DIR/cluster.env" ]] || die "$DIR is not a kafka.sh state dir (no cluster.env)"
  DIR="$(cd "$DIR" && pwd)"
  # shellcheck source=/dev/null
  source "$DIR/cluster.env"
}
node_pid() {  # prints the pid of node $1 if that JVM is alive, else fails
  local f="$DIR/node$1/pid" pid
  [[ -f $f ]] || return 1
  pid="$(<"$f")"
  # Guard against pid reuse: the process must be the JVM of this very node.
  [[ -n $pid ]] && ps -ww -o args= -p "$pid" 2>/dev/null | grep -qF "$DIR/node$1/server.properties" \
    && echo "$pid"
}
broker_port() { local p; read -ra p <<<"$PORTS"; echo "${p[$(($1 - 1))]}"; }
bootstrap() { local n out=(); for n in $(seq 1 "$BROKERS"); do out+=("127.0.0.1:$(broker_port "$n")"); done
  (IFS=,; echo "${out[*]}"); }

write_node_config() {  # node id
  local n=$1 d="$DIR/node$1" voters=() i p c
  read -ra p <<<"$PORTS"; read -ra c <<<"$CPORTS"
  for i in $(seq 1 "$BROKERS"); do voters+=("$i@127.0.0.1:${c[$((i - 1))]}"); done
  local rf=$BROKERS isr=$(( BROKERS >= 3 ? 2 : 1 ))
  local name
  name="$(protocol)"
  # --detour: clients that bootstrap at the advertised port are told to
  # come back to it, so everything they send goes through what listens
  # there (a test's proxy) to the detour listener.
  local detour_listener="" detour_advertised="" detour_map=""
  if [[ ${DETOUR:-0} == 1 ]]; then
    local dp ap
    read -ra dp <<<"$DPORTS"; read -ra ap <<<"$APORTS"
    detour_listener=",DETOUR://127.0.0.1:${dp[$((n - 1))]}"
    detour_advertised=",DETOUR://127.0.0.1:${ap[$((n - 1))]}"
    detour_map=",DETOUR:PLAINTEXT"
  fi
  mkdir -p "$d/data" "$d/logs"
  cat >"$d/server.properties" <<EOF
# Generated by kafka.sh: node $n of a $BROKERS-node combined broker+controller KRaft cluster.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=$name://127.0.0.1:${p[$((n - 1))]},CONTROLLER://127.0.0.1:${c[$((n - 1))]}$detour_listener
advertised.listeners=$name://127.0.0.1:${p[$((n - 1))]}$detour_advertised
listener.security.protocol.map=$name:$name,CONTROLLER:PLAINTEXT$detour_map
controller.listener.names=CONTROLLER
inter.broker.listener.name=$name
log.dirs=$d/data
# Replication defaults: with 3 nodes, RF 3 + min ISR 2 so losing one broker is
# survivable with acks=all (what the fault tests exercise); 1 node: RF 1.
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
# Dev/test speed: few partitions for internal topics, no rebalance delay,
# small thread pools (2 cores), and topics only created explicitly by Baton.
num.partitions=1
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
share.coordinator.state.topic.num.partitions=4
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
# Fence a dead broker after 6 s instead of 9 s so fault tests move on sooner,
# still with 6 missed heartbeats of slack for a busy 2-core machine.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
EOF
  if [[ ${SASL:-0} == 1 ]]; then
    # Every client (brokers between themselves too) authenticates with
    # SCRAM-SHA-512; the users are created at format time (--add-scram).
    cat >>"$d/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.${name,,}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(<"$DIR/sasl/admin.password")";
EOF
    chmod 600 "$d/server.properties"   # it holds the admin password
  fi
  if [[ -n ${TLS_DIR:-} ]]; then
    # The broker's key and chain (PEM) for its listener and, as a client,
    # for the other brokers; clients must present a certificate the CA signed.
    cat >>"$d/server.properties" <<EOF
ssl.keystore.type=PEM
ssl.keystore.location=$DIR/tls/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.${name,,}.ssl.client.auth=required
EOF
  fi
}

# The listener's security protocol.
protocol() {
  case "${SASL:-0}:${TLS_DIR:+tls}" in
    0:) echo PLAINTEXT ;; 1:) echo SASL_PLAINTEXT ;; 0:tls) echo SSL ;; 1:tls) echo SASL_SSL ;;
  esac
}

# The admin client config kafka.sh's own tools use on a --sasl/--tls
# cluster, as arguments in the array TOOL_CONFIG.
tool_config() {
  TOOL_CONFIG=()
  if [[ ${SASL:-0} == 1 || -n ${TLS_DIR:-} ]]; then TOOL_CONFIG=(--command-config "$DIR/admin.properties"); fi
}

launch_node() {  # node id; starts the JVM detached (own session, no tty/stdout)
  local n=$1 d="$DIR/node$1"
  local detach=(nohup); command -v setsid >/dev/null && detach=(setsid)
  rm -f "$d/pid"
  # The wrapper writes its own pid then execs java, so the pid file is the JVM.
  # shellcheck disable=SC2016
  "${detach[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$d/pid" \
    "$JAVA" "${BROKER_JVM[@]}" -Dkafka.logs.dir="$d/logs" \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    -cp "$CACHE/libs/*" kafka.Kafka "$d/server.properties" \
    </dev/null >>"$d/logs/stdout.log" 2>&1 &
}

show_logs() {
  local n f
  for n in $(seq 1 "$BROKERS"); do
    for f in "$DIR/node$n/logs/server.log" "$DIR/node$n/logs/stdout.log"; do
      [[ -s $f ]] && { log "--- tail of $f"; tail -n 25 "$f" >&2; }
    done
  done
  return 0
}

# Wait until the given nodes run and the cluster answers a client: each of
# them must open its port, and BrokerApiVersions must get a reply from at
# least that many brokers (so all are registered, unfenced and serving).
wait_ready() {  # node ids...
  tool_config
  local deadline=$((SECONDS + START_TIMEOUT)) n up seen=0 t=()
  command -v timeout >/dev/null && t=(timeout 20)   # a hung client must not eat the deadline
  while (( SECONDS < deadline )); do
    up=0
    for n in "$@"; do
      # Fail fast when a JVM died (bad config, port taken) instead of waiting 90 s.
      [[ ! -s "$DIR/node$n/pid" ]] || node_pid "$n" >/dev/null || { log "node $n exited"; return 1; }
      port_open "$(broker_port "$n")" && up=$((up + 1))
    done
    if (( up == $# )); then   # only then is a (slow) JVM-based probe worth it
      seen="$(BATON_KAFKA_CACHE="$CACHE" BATON_KAFKA_VERSION="$VERSION" "${t[@]}" bash "$0" \
        run org.apache.kafka.tools.BrokerApiVersionsCommand "${TOOL_CONFIG[@]}" \
        --bootstrap-server "$(bootstrap)" 2>/dev/null | grep -c ') -> ($' || true)"
      (( seen >= $# )) && return 0
    fi
    sleep 0.3
  done
  log "cluster not serving after ${START_TIMEOUT}s ($seen/$# brokers answered)"
  return 1
}

# ---- commands ----------------------------------------------------------------
cmd_start() {
  [[ $BROKERS == 1 || $BROKERS == 3 ]] || die "--brokers must be 1 or 3"
  fetch
  if [[ -z "${DIR:-}" ]]; then
    DIR="$(mktemp -d "${TMPDIR:-/tmp}/baton-kafka.XXXXXX")"
  elif [[ -f "$DIR/cluster.env" ]]; then
    # Re-using one of our own (stopped) state dirs: start from a clean slate.
    ( load_cluster; for n in $(seq 1 "$BROKERS"); do node_pid "$n" >/dev/null && exit 1; done; exit 0 ) \
      || die "a cluster is still running in $DIR (kafka.sh stop --dir $DIR)"
    rm -rf "$DIR"/node* "$DIR/cluster.env" "$DIR/bootstrap"
  elif [[ -d $DIR && -n "$(ls -A "$DIR")" ]]; then
    die "$DIR exists and is not empty"
  fi
  mkdir -p "$DIR"; DIR="$(cd "$DIR" && pwd)"
  local ports n; mapfile -t ports < <(free_ports $((4 * BROKERS)))
  (( ${#ports[@]} == 4 * BROKERS )) || die "could not pick free ports"
  PORTS="${ports[*]:0:$BROKERS}"; CPORTS="${ports[*]:$BROKERS:$BROKERS}"
  DPORTS="${ports[*]:$((2 * BROKERS)):$BROKERS}"; APORTS="${ports[*]:$((3 * BROKERS)):$BROKERS}"
  if [[ $DETOUR == 1 && ( $SASL == 1 || -n $TLS_DIR ) ]]; then die "--detour is for plaintext clusters"; fi
  printf 'BROKERS=%s\nPORTS="%s"\nCPORTS="%s"\nCACHE="%s"\nVERSION=%s\nSASL=%s\nTLS_DIR=%q\nDETOUR=%s\nDPORTS="%s"\nAPORTS="%s"\n' \
    "$BROKERS" "$PORTS" "$CPORTS" "$CACHE" "$VERSION" "$SASL" "$TLS_DIR" "$DETOUR" "$DPORTS" "$APORTS" >"$DIR/cluster.env"
  local scram=()
  ( umask 077; echo "security.protocol=$(protocol)" >"$DIR/admin.properties" )
  if [[ $SASL == 1 ]]; then
    # Throwaway passwords, made now, readable by the owner only.
    ( umask 077; mkdir -p "$DIR/sasl"
      for user in admin baton; do head -c18 /dev/urandom | base64 | tr -d '+/=' >"$DIR/sasl/$user.password"; done
      printf '%s\n' 'sasl.mechanism=SCRAM-SHA-512' \
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(<"$DIR/sasl/admin.password")\";" \
        >>"$DIR/admin.properties" )
    for user in admin baton; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(<"$DIR/sasl/$user.password")]")
    done
  fi
  if [[ -n $TLS_DIR ]]; then
    local f
    for f in ca.pem kafka.pem kafka.key; do [[ -f "$TLS_DIR/$f" ]] || die "--tls: $TLS_DIR/$f is missing"; done
    ( umask 077; mkdir -p "$DIR/tls"
      cat "$TLS_DIR/kafka.key" "$TLS_DIR/kafka.pem" >"$DIR/tls/keystore.pem"
      printf '%s\n' ssl.keystore.type=PEM "ssl.keystore.location=$DIR/tls/keystore.pem" \
        ssl.truststore.type=PEM "ssl.truststore.location=$TLS_DIR/ca.pem" >>"$DIR/admin.properties" )
  fi
  # shellcheck disable=SC2016  # ${sys:...} is log4j2 syntax, not shell
  # Broker logging: WARN and up to nodeN/logs/server.log (Kafka's INFO floods).
  printf '%s\n' 'status = error' 'shutdownHook = disable' 'appender.f.type = File' 'appender.f.name = FILE' \
    'appender.f.fileName = ${sys:kafka.logs.dir}/server.log' \
    'appender.f.layout.type = PatternLayout' 'appender.f.layout.pattern = [%d] %p %m (%c)%n' \
    'rootLogger.level = warn' 'rootLogger.appenderRef.f.ref = FILE' >"$DIR/log4j2.properties"
  # Cluster id: 16 random bytes, base64url without padding (Kafka's Uuid text
  # form); generated here to save one JVM start. Avoid a leading '-'.
  local id
  while id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"; [[ $id == -* ]]; do :; done
  log "starting $BROKERS-node Kafka $VERSION cluster in $DIR"
  local pids=()
  for n in $(seq 1 "$BROKERS"); do
    write_node_config "$n"
    # Static quorum (controller.quorum.voters), so plain `format` is enough.
    run_class kafka.tools.StorageTool format -t "$id" -c "$DIR/node$n/server.properties" "${scram[@]}" \
      >"$DIR/node$n/logs/format.log" 2>&1 &
    pids+=($!)
  done
  for n in "${!pids[@]}"; do
    wait "${pids[$n]}" || { cat "$DIR/node$((n + 1))/logs/format.log" >&2; die "storage format failed"; }
  done
  for n in $(seq 1 "$BROKERS"); do launch_node "$n"; done
  if ! wait_ready $(seq 1 "$BROKERS"); then show_logs; cmd_stop; die "start failed; logs are in $DIR"; fi
  bootstrap >"$DIR/bootstrap"
  log "ready in ${SECONDS}s; stop with: $0 stop --dir $DIR"
  cat "$DIR/bootstrap"
}

cmd_stop() {
  load_cluster
  local n pid nodes=() alive deadline=$((SECONDS + STOP_TIMEOUT))
  # SIGTERM (= controlled shutdown) goes to all nodes at once: a broker's
  # controlled shutdown must be approved by a controller majority, so stopping
  # nodes one at a time leaves the last one waiting 5 minutes. Even at once,
  # a slow node can miss the majority (see below). SIGKILL past the deadline.
  for n in $(seq 1 "$BROKERS"); do node_pid "$n" >/dev/null && nodes+=("$n"); done
  local sig=TERM; (( BROKERS > 1 && 2 * ${#nodes[@]} <= BROKERS )) && sig=KILL  # no majority left
  for n in "${nodes[@]}"; do
    if pid="$(node_pid "$n")"; then kill -"$sig" "$pid" 2>/dev/null || true; fi
  done
  while :; do
    alive=()   # node_pid, not kill -0: a zombie counts as gone
    for n in "${nodes[@]}"; do node_pid "$n" >/dev/null && alive+=("$n"); done
    (( ${#alive[@]} )) || break
    # Once a majority has exited, the rest can only finish Kafka's 5 s raft
    # resignation wait; they never get a pending shutdown approved. Allow 6 s.
    if (( BROKERS > 1 && 2 * ${#alive[@]} <= BROKERS && deadline > SECONDS + 6 )); then
      deadline=$((SECONDS + 6))
    fi
    if (( SECONDS >= deadline )); then
      log "node(s) ${alive[*]} still running: SIGKILL"
      for n in "${alive[@]}"; do if pid="$(node_pid "$n")"; then kill -KILL "$pid" 2>/dev/null || true; fi; done
    fi
    sleep 0.2
  done
  rm -f "$DIR"/node*/pid
  log "stopped ${#nodes[@]} node(s) in $DIR"
}

cmd_kill_broker() {
  load_cluster; local n=$1 pid
  pid="$(node_pid "$n")" || { log "node $n is not running"; return 0; }
  kill -KILL "$pid"
  while node_pid "$n" >/dev/null; do sleep 0.1; done
  rm -f "$DIR/node$n/pid"; log "killed node $n (pid $pid)"
}

cmd_start_broker() {
  load_cluster; tool_config; local n=$1 i up=()
  [[ -f "$DIR/node$n/server.properties" ]] || die "no node $n in $DIR"
  node_pid "$n" >/dev/null && { log "node $n already running"; return 0; }
  for i in $(seq 1 "$BROKERS"); do node_pid "$i" >/dev/null && up+=("$i"); done
  launch_node "$n"
  wait_ready "${up[@]}" "$n" || { show_logs; die "node $n did not rejoin"; }
  # Serving is not enough for fault tests: wait until it is back in every ISR
  # (only possible when no other node is down).
  if (( ${#up[@]} + 1 == BROKERS )); then
    local deadline=$((SECONDS + START_TIMEOUT))
    until [[ -z "$(run_class org.apache.kafka.tools.TopicCommand "${TOOL_CONFIG[@]}" --bootstrap-server "$(bootstrap)" \
        --describe --under-replicated-partitions 2>/dev/null || echo failed)" ]]; do
      (( SECONDS < deadline )) || die "node $n did not catch up within ${START_TIMEOUT}s"
      sleep 0.5
    done
  fi
  log "node $n is back"
}

cmd_status() {
  load_cluster; local n pid running=0
  echo "dir: $DIR  version: $VERSION  bootstrap: $(bootstrap)"
  for n in $(seq 1 "$BROKERS"); do
    if pid="$(node_pid "$n")"; then echo "node $n: running pid $pid 127.0.0.1:$(broker_port "$n")"; running=$((running + 1))
    else echo "node $n: stopped"; fi
  done
  (( running == BROKERS ))   # exit status 0 only when every node is up
}

# ---- argument parsing --------------------------------------------------------
(( $# )) || usage
CMD=$1; shift
if [[ $CMD == run ]]; then run_class "$@"; exit; fi
BROKERS=1; DIR=""; POS=(); SASL=0; TLS_DIR=""; DETOUR=0
while (( $# )); do
  case $1 in
    --brokers) BROKERS=${2:?}; shift 2 ;;
    --sasl) SASL=1; shift ;;
    --detour) DETOUR=1; shift ;;
    --tls) TLS_DIR="$(cd "${2:?}" && pwd)"; shift 2 ;;
    --dir) DIR=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) POS+=("$1"); shift ;;
  esac
done
case $CMD in
  fetch) fetch; log "Kafka $VERSION jars in $CACHE/libs" ;;
  start) cmd_start ;;
  stop) [[ -n $DIR ]] || die "--dir DIR is required"
        [[ -f "$DIR/cluster.env" ]] || { log "nothing to stop in $DIR"; exit 0; }; cmd_stop ;;
  status) cmd_status ;;
  kill-broker) cmd_kill_broker "${POS[0]:?node number required}" ;;
  start-broker) cmd_start_broker "${POS[0]:?node number required}" ;;
  *) usage ;;
esac
