#!/usr/bin/env bash
# Bring up a single-node Slurm cluster (munged, slurmctld, slurmd) on this machine, as root,
# without systemd. Used by the integration tests and by anyone who wants to try the Slurm path
# of `launch.py` locally. Idempotent: when the cluster already runs with the same configuration
# it returns at once; a changed configuration (e.g. another --gpus count) restarts the daemons.
#
#   slurm/up.sh              # CPU-only node
#   slurm/up.sh --gpus 2     # plus 2 fake GPUs (GRES backed by /dev/null clones outside /dev)
#
# The node line comes from `slurmd -C`, so CPUs and RealMemory match the machine.
# MinJobAge=86400 keeps finished jobs visible to `squeue`, which the launcher and the sacct
# stand-in (slurm/bin/sacct) read because this cluster has no accounting database.
# Paths can be moved with SLURM_ETC (default /etc/slurm) and SLURM_STATE (default /var/spool/slurm-editsweep).
set -euo pipefail

gpus=0
timeout_s=${SLURM_UP_TIMEOUT_S:-60}
while [ $# -gt 0 ]; do
  case "$1" in
    --gpus) gpus="$2"; shift 2 ;;
    --gpus=*) gpus="${1#--gpus=}"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "slurm/up.sh: unknown argument '$1' (expected --gpus N)" >&2; exit 2 ;;
  esac
done
case "$gpus" in ''|*[!0-9]*) echo "slurm/up.sh: --gpus needs a non-negative integer, got '$gpus'" >&2; exit 2 ;; esac

log() { echo "slurm/up.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it starts munged, slurmctld and slurmd)"
for tool in munged slurmctld slurmd sinfo scontrol; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; install the packages first: bash slurm/install-system-packages.sh"
done

SLURM_ETC=${SLURM_ETC:-/etc/slurm}
SLURM_STATE=${SLURM_STATE:-/var/spool/slurm-editsweep}
FAKE_GPU_DIR=/run/slurm-fake-gpu
LOG_DIR=/var/log/slurm
conf="$SLURM_ETC/slurm.conf"
export SLURM_CONF="$conf"

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for DESCRIPTION COMMAND...: poll every 0.1 s until COMMAND succeeds or the deadline passes
  local what="$1"; shift
  local deadline=$((SECONDS + timeout_s))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${timeout_s}s waiting for $what (logs: $LOG_DIR)"
    sleep 0.1
  done
}

# --- munge -------------------------------------------------------------------------------------
start_munge() {
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  if ! pid_alive /run/munge/munged.pid; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
  fi
  wait_for "munge to encode and decode a credential" bash -c 'munge -n | unmunge'
}

# --- network: Slurm resolves with AI_ADDRCONFIG, which ignores loopback-only hosts ---------------
ensure_global_ipv4() {
  if ! ip -4 addr show scope global 2>/dev/null | grep -q inet; then
    log "no global IPv4 address: adding 10.253.0.1/32 to lo so that slurmctld can resolve localhost"
    ip addr add 10.253.0.1/32 dev lo
  fi
}

# --- configuration -------------------------------------------------------------------------------
node_hardware() {  # CPUs=… Boards=… … RealMemory=… of this machine
  slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //; s/ UpTime=.*//'
}

render_conf() {
  local hw gres_line=""
  hw=$(node_hardware)
  [ "$gpus" -gt 0 ] && gres_line="GresTypes=gpu"
  cat <<EOF
# Written by editsweep slurm/up.sh (single-node test cluster). Rewritten on every change.
ClusterName=local
SlurmctldHost=localhost
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=86400
KillWait=5
StateSaveLocation=$SLURM_STATE/ctld
SlurmdSpoolDir=$SLURM_STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
$gres_line
NodeName=localhost $hw$([ "$gpus" -gt 0 ] && echo " Gres=gpu:$gpus") State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

render_gres() {
  echo "# Written by editsweep slurm/up.sh: fake GPUs, character-device clones of /dev/null."
  echo "AutoDetect=off"
  local i
  for ((i = 0; i < gpus; i++)); do
    echo "NodeName=localhost Name=gpu File=$FAKE_GPU_DIR/gpu$i"
  done
}

make_fake_gpus() {
  rm -rf "$FAKE_GPU_DIR"
  [ "$gpus" -gt 0 ] || return 0
  mkdir -p "$FAKE_GPU_DIR"
  local i
  for ((i = 0; i < gpus; i++)); do
    mknod "$FAKE_GPU_DIR/gpu$i" c 1 3 || die "mknod failed: fake GPUs need CAP_MKNOD"
  done
}

stop_slurm_daemons() {
  local pidfile pid
  for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if pid_alive "$pidfile"; then
      pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
  done
}

node_state() { sinfo -h -N -n localhost -o %T 2>/dev/null | head -1; }
node_usable() { case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac; }

# --- main ----------------------------------------------------------------------------------------
start=$(date +%s.%N)
start_munge
ensure_global_ipv4
mkdir -p "$SLURM_ETC" "$SLURM_STATE/ctld" "$SLURM_STATE/d" "$LOG_DIR"

want_conf=$(render_conf)
want_gres=$(render_gres)
have_conf=$(cat "$conf" 2>/dev/null || true)
have_gres=$(cat "$SLURM_ETC/gres.conf" 2>/dev/null || true)
if [ "$want_conf" != "$have_conf" ] || { [ "$gpus" -gt 0 ] && [ "$want_gres" != "$have_gres" ]; } \
   || { [ "$gpus" -gt 0 ] && [ ! -c "$FAKE_GPU_DIR/gpu$((gpus - 1))" ]; }; then
  log "writing $conf (gpus=$gpus)"
  stop_slurm_daemons
  make_fake_gpus
  printf '%s\n' "$want_conf" > "$conf"
  if [ "$gpus" -gt 0 ]; then printf '%s\n' "$want_gres" > "$SLURM_ETC/gres.conf"; else rm -f "$SLURM_ETC/gres.conf"; fi
fi

if ! pid_alive /run/slurmctld.pid; then
  log "starting slurmctld"
  slurmctld
fi
wait_for "slurmctld to answer 'scontrol ping'" bash -c 'timeout 2 scontrol ping | grep -q "is UP"'
if ! pid_alive /run/slurmd.pid; then
  log "starting slurmd"
  slurmd -N localhost
fi

# A node left drained/down by an earlier configuration comes back with RESUME.
case "$(node_state)" in
  drain*|down*|inval*|fail*) log "node is $(node_state); resuming it"; scontrol update NodeName=localhost State=RESUME || true ;;
esac
wait_for "node 'localhost' to become idle (state now: \$(sinfo -h -N -o %T))" node_usable
log "up: node localhost $(node_state), partition debug, gpus=$gpus ($(echo "$(date +%s.%N) - $start" | bc | sed 's/^\./0./') s)"
