#!/usr/bin/env bash
# The live demonstration: a local mosquitto on a free loopback port, the
# controller (`fleetmedic run`, dry-run), a recorder (`fleetmedic record`)
# and the simulator publishing a scenario's fleet live (`fleetmedic sim
# --live`). Decisions print as the controller makes them. At the end the
# report is written, the recorded log is replayed with --check (the replay
# must reproduce the live decisions), and everything started here is
# stopped by its PID.
#
# Environment:
#   FLEETMEDIC      the binary (default: build/fleetmedic)
#   DEMO_SCENARIO   scenario (default: sim/scenarios/slow-instance.yaml)
#   DEMO_SPEED      simulated seconds per second (default: 60)
#   DEMO_REPORT     HTML report to write (default: demo-report.html)
#   DEMO_KEEP       a directory to keep the broker, controller and recorder
#                   files in (default: a temporary directory, removed)
set -euo pipefail
cd "$(dirname "$0")/.."

FLEETMEDIC=${FLEETMEDIC:-build/fleetmedic}
SCENARIO=${DEMO_SCENARIO:-sim/scenarios/slow-instance.yaml}
SPEED=${DEMO_SPEED:-60}
REPORT=${DEMO_REPORT:-demo-report.html}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
PREFIX=fleet

if [ ! -x "$FLEETMEDIC" ]; then
  echo "demo: $FLEETMEDIC not found; build first (meson setup build && ninja -C build)" >&2
  exit 1
fi
if [ ! -x "$MOSQUITTO" ]; then
  echo "demo: mosquitto not found; install it (apt-get install mosquitto)" >&2
  exit 1
fi

if [ -n "${DEMO_KEEP:-}" ]; then
  WORK=$DEMO_KEEP
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/fleetmedic-demo.XXXXXX")
fi

PIDS=()
cleanup() {
  local pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -z "${DEMO_KEEP:-}" ]; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: SIGTERM, then wait for it (it is ours: started by this script)
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wait_for SECONDS COMMAND...: poll a condition until a deadline
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.1
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

PORT=$(free_port)
URL=mqtt://127.0.0.1:$PORT

# -- the broker: queue limits off, so a burst is never dropped silently
mkdir -p "$WORK/broker" "$WORK/state"
{
  echo "listener $PORT 127.0.0.1"
  echo "allow_anonymous true"
  echo "persistence false"
  echo "max_queued_messages 0"
  echo "max_queued_bytes 0"
  echo "log_dest file $WORK/broker/mosquitto.log"
  if [ "$(id -u)" = 0 ]; then echo "user root"; fi
} >"$WORK/broker/mosquitto.conf"
"$MOSQUITTO" -c "$WORK/broker/mosquitto.conf" >"$WORK/broker/stdout" 2>&1 &
PIDS+=($!)
if ! wait_for 10 port_open "$PORT"; then
  echo "demo: mosquitto did not start on port $PORT" >&2
  cat "$WORK/broker/stdout" >&2 || true
  exit 1
fi

# -- the controller: dry-run; at 60x a wall-clock second is a simulated
# minute, so the breaker's window is short enough to see within seconds
cat >"$WORK/controller.yaml" <<EOF
mqtt:
  url: $URL
  client_id: fleetmedic-demo
  topic_prefix: $PREFIX
http:
  listen: 127.0.0.1:0
state_dir: $WORK/state
dry_run: true
tick_s: 1
log:
  level: info
breaker:
  window_s: 6
  window_slots: 6
  min_requests: 20
traffic:
  enabled: true
  max_ejection_percent: 50
  healthy_floor: 0.5
  probe_percent: 5
EOF
"$FLEETMEDIC" run -c "$WORK/controller.yaml" >"$WORK/controller.log" 2>&1 &
PIDS+=($!)
CONTROLLER=$!
if ! wait_for 15 grep -q "subscribed to" "$WORK/controller.log"; then
  echo "demo: the controller did not subscribe" >&2
  cat "$WORK/controller.log" >&2
  exit 1
fi

# -- the recorder
"$FLEETMEDIC" record --mqtt "$URL" --topic-prefix "$PREFIX" -o "$WORK/events.jsonl" \
  2>"$WORK/record.log" &
PIDS+=($!)
RECORDER=$!
if ! wait_for 15 grep -q "subscribed to" "$WORK/record.log"; then
  echo "demo: the recorder did not subscribe" >&2
  cat "$WORK/record.log" >&2
  exit 1
fi

# -- decisions as they happen: the controller's log lines, without the JSON
# (tail ends with the controller, and the filters with tail)
tail -n +1 -F --pid="$CONTROLLER" "$WORK/controller.log" 2>/dev/null |
  grep --line-buffered -E -- ' -> | \([a-z_]+\): \{' |
  sed -u -e 's/: {.*$//' -e 's/^/  decision: /' &
PIDS+=($!)

echo "== fleetmedic live demo: $(basename "$SCENARIO") at ${SPEED}x, broker $URL, controller in dry-run"
"$FLEETMEDIC" sim "$SCENARIO" --live --mqtt "$URL" --topic-prefix "$PREFIX" --speed "$SPEED" \
  --report "$REPORT"

# let the controller take its last ticks, then stop it before the recorder,
# so that every decision it made is in the log
sleep 2
stop "$CONTROLLER"
sleep 0.5
stop "$RECORDER"

echo "== report: $REPORT"
echo "== replay of the recorded log ($(wc -l <"$WORK/events.jsonl") messages) with --check"
set +e
"$FLEETMEDIC" replay "$WORK/events.jsonl" -c "$WORK/controller.yaml" --check -q
status=$?
set -e
if [ "$status" = 0 ]; then
  echo "== the replay reproduced the live decisions"
else
  echo "== the replay differs from the live decisions (exit $status)" >&2
fi
exit "$status"
