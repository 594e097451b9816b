#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine (Debian's slurm-wlm 22.05, munge, slurmdbd + mariadb so that
# sacct works as on real sites). CPU-only node. Idempotent:  bash slurm/cluster.sh up|down|status
# It is what the integration tests and CI use, and a way to try the product without a cluster. Needs root.
set -euo pipefail

CLUSTER=onenode
ETC=/etc/slurm
STATE=/var/lib/slurm-onenode
LOGS=/var/log/slurm-onenode
HOST=$(hostname -s)

say() { echo "slurm/cluster.sh: $*"; }
die() { say "error: $*"; for f in "$LOGS"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; exit 1; }
running() { pgrep -x "$1" >/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq 1 $((t * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "timed out waiting for $what"
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mysqld >/dev/null \
     && command -v munged >/dev/null; then return; fi
  say "installing slurm-wlm, munge, slurmdbd, mariadb-server (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 slurm-wlm munge mariadb-server slurmdbd >/dev/null
}

write_configs() {
  mkdir -p "$ETC" "$STATE/ctld" "$STATE/d" "$LOGS" /run/munge /var/run/mysqld
  getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(free -m | awk '/^Mem:/{print $2}') - 1024 ))
  cat > "$ETC/slurm.conf" <<EOF
# Written by slurm/cluster.sh: one CPU-only node, accounting through slurmdbd.
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
MpiDefault=none
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
JobRequeue=1
PreemptType=preempt/none
MaxArraySize=1001
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
MinJobAge=300
KillWait=5
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=60 DefMemPerCPU=2048 State=UP
PartitionName=short Nodes=$HOST MaxTime=5 DefMemPerCPU=2048 State=UP
EOF
  cat > "$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=$HOST
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-onenode
StorageLoc=slurm_acct_db
LogFile=$LOGS/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
EOF
  chmod 600 "$ETC/slurmdbd.conf"
}

start_munge() {
  [ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  running munged || { say "starting munged"; runuser -u munge -- /usr/sbin/munged || die "munged did not start"; }
}

start_mariadb() {
  chown mysql:mysql /var/run/mysqld
  if ! running mariadbd && ! running mysqld; then
    say "starting mariadb"
    (mysqld_safe >/dev/null 2>&1 &)
    wait_for 30 "mariadb" mysqladmin ping
  fi
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-onenode';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_slurm() {
  running slurmdbd || { say "starting slurmdbd"; slurmdbd || die "slurmdbd did not start"; }
  wait_for 30 "slurmdbd" sacctmgr -n show cluster
  sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
  running slurmctld || { say "starting slurmctld"; slurmctld || die "slurmctld did not start"; }
  running slurmd || { say "starting slurmd"; slurmd || die "slurmd did not start"; }
  wait_for 60 "the node to be idle" bash -c "sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'"
  wait_for 30 "sacct" sacct -n -X -S now
}

up() {
  install
  write_configs
  start_munge
  start_mariadb
  start_slurm
  say "up: node $HOST ($(nproc) CPUs), partitions debug (60 min, default) and short (5 min); sacct works"
}

down() {
  for d in slurmd slurmctld slurmdbd; do
    if running "$d"; then say "stopping $d"; pkill -x "$d"; fi
  done
  for d in slurmd slurmctld slurmdbd; do wait_for 20 "$d to stop" bash -c "! pgrep -x $d"; done
  say "down (munge and mariadb left running)"
}

status() {
  local ok=0
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if running "$d"; then echo "$d: running"; else echo "$d: stopped"; ok=1; fi
  done
  sinfo 2>/dev/null || ok=1
  if sacct -n -X -S now >/dev/null 2>&1; then echo "sacct: answers"; else echo "sacct: no answer"; ok=1; fi
  return $ok
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: bash slurm/cluster.sh up|down|status" >&2; exit 2 ;;
esac
