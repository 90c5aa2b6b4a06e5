#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by slurm/up.sh: cancel its jobs, then stop slurmd,
# slurmctld and (with --munge) munged, each by the pid in its pid file. Idempotent.
#
#   slurm/down.sh            # cancel jobs, stop slurmd + slurmctld (munged keeps running)
#   slurm/down.sh --munge    # also stop munged
#   slurm/down.sh --purge    # also delete the controller state (job records, next job id)
set -euo pipefail

stop_munge=0
purge=0
for arg in "$@"; do
  case "$arg" in
    --munge) stop_munge=1 ;;
    --purge) purge=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "slurm/down.sh: unknown argument '$arg' (expected --munge, --purge)" >&2; exit 2 ;;
  esac
done

log() { echo "slurm/down.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "error: must run as root"; exit 1; }

SLURM_ETC=${SLURM_ETC:-/etc/slurm}
SLURM_STATE=${SLURM_STATE:-/var/spool/slurm-editsweep}
export SLURM_CONF="$SLURM_ETC/slurm.conf"

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {  # stop_pidfile NAME PIDFILE: TERM, wait up to 10 s, then KILL
  local name="$1" pidfile="$2" pid
  if pid_alive "$pidfile"; then
    pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not stop; killing it"; kill -9 "$pid"; fi
  fi
  rm -f "$pidfile"
}

if pid_alive /run/slurmctld.pid; then
  jobs=$(squeue -h -o %A -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,REQUEUED 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 100); do
      [ -z "$(squeue -h -o %A -t RUNNING,COMPLETING 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
fi
stop_pidfile slurmd /run/slurmd.pid
stop_pidfile slurmctld /run/slurmctld.pid
if [ "$purge" = 1 ]; then
  log "purging controller state in $SLURM_STATE"
  rm -rf "$SLURM_STATE"
fi
if [ "$stop_munge" = 1 ]; then
  stop_pidfile munged /run/munge/munged.pid
fi
log "down"
