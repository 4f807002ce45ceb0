#  scripts/lib.sh — helpers shared by scripts/test, scripts/demo and the
#  other scripts. Source it; it defines functions and FEDQ_ROOT only.
#
#  shellcheck shell=bash disable=SC2034

#  Repository root: the parent of the folder holding this file.
FEDQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FEDQ_ROOT

#  Colour only when stdout is a terminal and NO_COLOR is unset.
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
    FEDQ_C_BOLD=$'\e[1m' FEDQ_C_RED=$'\e[31m' FEDQ_C_GREEN=$'\e[32m'
    FEDQ_C_YELLOW=$'\e[33m' FEDQ_C_OFF=$'\e[0m'
else
    FEDQ_C_BOLD='' FEDQ_C_RED='' FEDQ_C_GREEN='' FEDQ_C_YELLOW='' FEDQ_C_OFF=''
fi

#  fedq_say WHO MESSAGE... — one line on stdout, prefixed by the script name.
fedq_say () {
    local who="$1"
    shift
    printf '%s: %s\n' "$who" "$*"
}

#  fedq_warn WHO MESSAGE... — one line on stderr.
fedq_warn () {
    local who="$1"
    shift
    printf '%s%s: warning: %s%s\n' "$FEDQ_C_YELLOW" "$who" "$*" \
        "$FEDQ_C_OFF" >&2
}

#  fedq_die WHO MESSAGE... — print an error on stderr and exit 1.
fedq_die () {
    local who="$1"
    shift
    printf '%s%s: error: %s%s\n' "$FEDQ_C_RED" "$who" "$*" "$FEDQ_C_OFF" >&2
    exit 1
}

#  fedq_as_root CMD... — run CMD as root: directly when we are root, else
#  through sudo when it exists; fail with a clear message otherwise.
fedq_as_root () {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root to run: $* (run as root, or install sudo)" >&2
        return 1
    fi
}

#  fedq_now — seconds since the epoch with millisecond precision.
fedq_now () {
    date +%s.%N | cut -c1-14
}

#  fedq_elapsed START — seconds since START (from fedq_now), one decimal.
fedq_elapsed () {
    awk -v s="$1" -v e="$(fedq_now)" 'BEGIN { printf "%.1f", e - s }'
}

#  fedq_cmake_build DIR [CMAKE-ARGS...] — configure DIR from the repository
#  root with the given options, then build it with every core.
fedq_cmake_build () {
    local dir="$1"
    shift
    cmake -S "$FEDQ_ROOT" -B "$FEDQ_ROOT/$dir" "$@"
    cmake --build "$FEDQ_ROOT/$dir" --parallel "$(fedq_jobs)"
}

#  fedq_jobs — build/test parallelism: FEDQ_JOBS or the core count.
fedq_jobs () {
    if [[ -n "${FEDQ_JOBS:-}" ]]; then
        echo "$FEDQ_JOBS"
    else
        nproc 2>/dev/null || echo 2
    fi
}

#  fedq_port_busy HOST PORT — true when something accepts TCP on HOST:PORT.
fedq_port_busy () {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

#  fedq_stop_pid PID [GRACE-SECONDS] — SIGTERM PID, wait up to GRACE
#  seconds (default 10) for it to exit, then SIGKILL it. Only PIDs this
#  shell started may be passed. Returns once the process is gone.
fedq_stop_pid () {
    local pid="$1" grace="${2:-10}" i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "pid $pid did not exit ${grace}s after SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
