#!/usr/bin/env bash
# A single-node Slurm on this machine, from Debian's packages: munge,
# slurmctld and slurmd on localhost, one partition `local` with this host's
# CPUs. Idempotent: running it again restarts the daemons with the same
# configuration. Needs root (apt-get, /etc/slurm, daemons). No systemd is
# needed: the daemons are started directly.
set -euo pipefail

CPUS="${SLURM_CPUS:-$(nproc)}"
HOST="$(hostname -s)"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# Munge: one key shared by the (single) controller and node.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  # A munged started earlier (by its pid file) that does not answer.
  if [ -s /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; sleep 1; fi
  runuser -u munge -- /usr/sbin/munged --force
  sleep 1
fi

install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=lottery
SlurmctldHost=${HOST}
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=root
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MaxArraySize=10001
NodeName=${HOST} CPUs=${CPUS} State=UNKNOWN
PartitionName=local Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF

# Restart the daemons this script started before (by their pid files).
for daemon in slurmd slurmctld; do
  if [ -s "/run/${daemon}.pid" ] && kill -0 "$(cat /run/${daemon}.pid)" 2>/dev/null; then
    kill "$(cat /run/${daemon}.pid)"
    sleep 1
  fi
done
/usr/sbin/slurmctld -c      # -c: a fresh controller state (no old jobs)
/usr/sbin/slurmd
for _ in $(seq 30); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "slurm did not come up; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
