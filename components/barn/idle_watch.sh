#!/bin/bash
# dragonfarm idle watcher: run once a minute (systemd timer). Counts consecutive idle minutes and stops
# the machine after IDLE_MINUTES of them. A minute is idle when
#   - no GPU is busier than GPU_IDLE_PERCENT (nvidia-smi utilization.gpu, the busiest GPU counts),
#   - the CPU load is under CPU_IDLE_PERCENT of the cores (1-minute load average / cores),
#   - nobody is logged in (terminal or SSH logins, SSM sessions).
# A GPU job with one busy core is busy by its GPU; a notebook someone is logged in to is busy by its session.
# STOP_COMMAND differs per cloud: a guest power-off stops billing on AWS (shutdown behaviour "stop") and
# GCP; on Azure it must deallocate through the API.
set -u
IDLE_MINUTES=${IDLE_MINUTES:-60}
GPU_IDLE_PERCENT=${GPU_IDLE_PERCENT:-5}
CPU_IDLE_PERCENT=${CPU_IDLE_PERCENT:-5}
STATE_DIR=${STATE_DIR:-/var/lib/dragonfarm}
LOADAVG_FILE=${LOADAVG_FILE:-/proc/loadavg}
STOP_COMMAND=${STOP_COMMAND:-systemctl poweroff}

mkdir -p "$STATE_DIR"
counter="$STATE_DIR/idle-minutes"

gpu=$(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null | sort -n | tail -n 1 | tr -dc '0-9')
gpu=${gpu:-0}  # no readable GPU counts as an idle one: a box with a broken driver must still stop
cores=$(nproc 2>/dev/null || echo 1)
load=$(cut -d ' ' -f 1 "$LOADAVG_FILE")
cpu=$(awk -v l="$load" -v c="$cores" 'BEGIN { printf "%d", (l * 100) / c }')
logins=$(who 2>/dev/null | grep -c .)
ssm=$(pgrep -c -f ssm-session-worker 2>/dev/null | head -n 1 | tr -dc '0-9')
sessions=$(( logins + ${ssm:-0} ))

if [ "$gpu" -ge "$GPU_IDLE_PERCENT" ] || [ "$cpu" -ge "$CPU_IDLE_PERCENT" ] || [ "$sessions" -gt 0 ]; then
    echo 0 > "$counter"
    exit 0
fi
idle=$(( $(cat "$counter" 2>/dev/null || echo 0) + 1 ))
echo "$idle" > "$counter"
if [ "$idle" -ge "$IDLE_MINUTES" ]; then
    echo 0 > "$counter"
    logger -t dragonfarm-idle "idle for $idle minutes (gpu ${gpu}%, cpu ${cpu}%, no sessions): stopping" 2>/dev/null || true
    $STOP_COMMAND
fi
