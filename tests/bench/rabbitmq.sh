#!/usr/bin/env bash
#  tests/bench/rabbitmq.sh — two independent RabbitMQ nodes on loopback
#  with the shovel plugin, the baseline scripts/bench shovel compares fedq
#  against (after the project's RabbitMQ anchor: same settings).
#
#  usage: tests/bench/rabbitmq.sh start | stop | ctl A|B ARGS... | pid A|B
#
#  environment:
#     FEDQ_RMQ_BASE   state folder (default /tmp/fedq-bench-rmq), wiped by start
#     FEDQ_RMQ_PORT   AMQP port of node A (default 5711); B is +1; the
#                     distribution ports are +20000
#     RMQ_SBIN        RabbitMQ's scripts (default /usr/lib/rabbitmq/bin)
#     FEDQ_RMQ_PLUGINS  plugins to enable (default rabbitmq_shovel;
#                     scripts/bench federation adds rabbitmq_federation)
#     FEDQ_RMQ_NAME   node name prefix (default fedqbench: nodes NAMEA, NAMEB)
#
#  Nodes are named fedqbenchA@localhost and fedqbenchB@localhost, listen on
#  127.0.0.1 only and keep all state under FEDQ_RMQ_BASE; HOME points there
#  too (the Erlang cookie), so the caller's HOME and the package's own
#  node are never touched. Requires `scripts/install-deps --with bench`.
set -euo pipefail

BASE=${FEDQ_RMQ_BASE:-/tmp/fedq-bench-rmq}
PORT_A=${FEDQ_RMQ_PORT:-5711}
PLUGINS=${FEDQ_RMQ_PLUGINS:-rabbitmq_shovel}
NAME=${FEDQ_RMQ_NAME:-fedqbench}
RMQ_SBIN=${RMQ_SBIN:-/usr/lib/rabbitmq/bin}
export HOME=$BASE/home
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

port_of () { case $1 in A) echo "$PORT_A" ;; B) echo $((PORT_A + 1)) ;;
                        *) echo "site A or B, not '$1'" >&2; exit 2 ;; esac; }

site_env () {
    local s=$1 port
    port=$(port_of "$s")
    export RABBITMQ_NODENAME=${NAME}$s@localhost
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$port
    export RABBITMQ_DIST_PORT=$((port + 20000))
    export RABBITMQ_MNESIA_BASE=$BASE/$s/mnesia
    export RABBITMQ_LOG_BASE=$BASE/$s/log
    export RABBITMQ_ENABLED_PLUGINS_FILE=$BASE/$s/enabled_plugins
    export RABBITMQ_CONFIG_FILE=$BASE/$s/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$BASE/$s/advanced.config
    export RABBITMQ_PID_FILE=$BASE/$s/beam.pid
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

ctl () {
    local s=$1
    shift
    ( site_env "$s" && "$RMQ_SBIN/rabbitmqctl" -q -n "${NAME}$s@localhost" "$@" )
}

beam_pid () { cat "$BASE/$1/beam.pid" 2>/dev/null; }

start () {
    [[ -x $RMQ_SBIN/rabbitmq-server ]] || {
        echo "rabbitmq.sh: no RabbitMQ at $RMQ_SBIN (scripts/install-deps --with bench)" >&2
        exit 1
    }
    stop >/dev/null 2>&1 || true
    rm -rf "${BASE:?}"
    mkdir -p "$HOME"
    head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$HOME/.erlang.cookie"
    chmod 400 "$HOME/.erlang.cookie"
    local s port
    for s in A B; do
        port=$(port_of $s)
        mkdir -p "$BASE/$s/log"
        cat > "$BASE/$s/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$port
loopback_users.guest = true
vm_memory_high_watermark.relative = 0.3
disk_free_limit.absolute = 1GB
log.console = false
log.file.level = info
CONF
        echo '[].' > "$BASE/$s/advanced.config"
        ( site_env $s
          "$RMQ_SBIN/rabbitmq-plugins" --offline enable $PLUGINS >/dev/null
          nohup "$RMQ_SBIN/rabbitmq-server" > "$BASE/$s/log/stdout.log" 2>&1 < /dev/null &
          echo $! > "$BASE/$s/script.pid" )
    done
    for s in A B; do
        ( site_env $s
          "$RMQ_SBIN/rabbitmqctl" -q -n "${NAME}$s@localhost" wait --timeout 120 "$BASE/$s/beam.pid" )
        ctl $s set_cluster_name "${NAME}$s"
        echo "${NAME}$s@localhost up: beam pid $(beam_pid $s), AMQP 127.0.0.1:$(port_of $s)"
    done
}

stop () {
    local s pid spid i
    for s in A B; do
        pid=$(beam_pid $s)
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            ctl $s stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
            for ((i = 0; i < 60; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        fi
        spid=$(cat "$BASE/$s/script.pid" 2>/dev/null || true)
        if [[ -n $spid ]] && kill -0 "$spid" 2>/dev/null; then
            kill "$spid" 2>/dev/null || true
        fi
        rm -f "$BASE/$s/beam.pid" "$BASE/$s/script.pid"
    done
    #  The epmd the first node started: stop it once no node is registered.
    local epmd
    epmd=$(ls /usr/lib/erlang/erts-*/bin/epmd 2>/dev/null | head -1 || true)
    if [[ -n $epmd ]] && ! "$epmd" -names 2>/dev/null | grep -q '^name '; then
        "$epmd" -kill >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    ctl) shift; ctl "$@" ;;
    pid) beam_pid "$2" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,2\}//' >&2
       exit 2 ;;
esac
