#!/usr/bin/env bash
# Install the Debian packages editsweep runs against, only when missing:
# firejail (sandbox), slurm-wlm + munge (local single-node Slurm for tests and demos).
set -euo pipefail
need=()
command -v firejail >/dev/null 2>&1 || need+=(firejail)
command -v slurmctld >/dev/null 2>&1 || need+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need+=(munge)
command -v bc >/dev/null 2>&1 || need+=(bc)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "editsweep: missing system packages: ${need[*]} (run as root or install them: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "editsweep: installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
