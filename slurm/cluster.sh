#!/usr/bin/env bash
# A real Slurm cluster on this machine: Debian's slurm-wlm 22.05 daemons (slurmctld, one slurmd per node),
# munge, and slurmdbd + mariadb so that `sacct` works as on real sites. Needs root.
# Nodes node1..nodeN (CPU only) each run their slurmd in their own UTS namespace (hostname nodeI) at their own
# loopback address 127.0.0.(10+I); node gpu1 (127.0.0.21, partition gpu) declares 2 stand-in GPUs (fake gres:
# character devices, no real GPU) so GPU requests, CUDA_VISIBLE_DEVICES and refusals can be tried.
#
#   bash slurm/cluster.sh up [--nodes=N] [--cpus-per-node=C]   install what is missing, write configs, start
#                                    everything, wait until usable (N: as many as now, or 1 at first; at most 9;
#                                    C: nproc)
#   bash slurm/cluster.sh down       stop the slurmds, slurmctld, slurmdbd; remove the nodes' devices and
#                                    /etc/hosts lines (munged and mariadb stay up)
#   bash slurm/cluster.sh status     each daemon and node, sinfo, sacct; exit 0 only if all is up
#   bash slurm/cluster.sh kill-node NAME   lose a node: SIGKILL everything in its namespace (slurmd, job steps,
#                                    Ray), then mark it DOWN as slurmctld would after its timeout; `up` revives it
#
# `up` is idempotent (a second run takes ~1 s) and restarts only daemons whose config changed.
# It is what the integration tests and CI use; see slurm/README.md for what it configures.
set -euo pipefail

CLUSTER=onenode                  # ClusterName; sacct/sacctmgr know the cluster by it
ACCOUNT=lab                      # an account besides root's own, for `--account=lab` / slurm_account = "lab"
ETC=/etc/slurm
STATE=/var/lib/slurm-onenode     # StateSaveLocation (ctld/), SlurmdSpoolDir (d/), pid files
LOGS=/var/log/slurm-onenode      # slurmctld.log, slurmd.log, slurmdbd.log, mariadb.log
DB_PASS=slurm-onenode            # local-only mariadb user 'slurm'@'localhost'
QOS=capped                       # a QOS with MaxSubmitJobsPerUser=$QOS_MAX_SUBMIT: Slurm refusing a submission
QOS_MAX_SUBMIT=2
# Slurm forgets a finished job after MinJobAge seconds (300 on a default site): squeue then says "Invalid job id".
# Short here, so the tests meet that state in seconds (slurmctld purges once a minute on top of it).
MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-5}
HEADER="# Written by slurm/cluster.sh"
HOST=$(hostname -s)              # the controller's host (slurmctld, slurmdbd)
NODES=                           # --nodes: CPU nodes node1..nodeN (default: as many as now, else 1)
CPUS_PER_NODE=$(nproc)           # --cpus-per-node: CPUs each node declares (config_overrides: more than exist is fine)
GPU_NODE=gpu1                    # the fake-gres node, alone in partition gpu
GPU_NODE_ADDR=127.0.0.21
FAKE_GPUS=2
HOSTS_TAG="# slurm/cluster.sh node"
T0=$SECONDS

say() { echo "cluster.sh: $*"; }
fail() {  # fail MESSAGE [LOG...]: print the message and the tail of each log, exit 1
  local msg=$1; shift
  say "FAILED: $msg"
  for f in "$@"; do
    if [ -s "$f" ]; then echo "--- last lines of $f"; tail -n 20 "$f"; fi
  done
  exit 1
}
wait_for() {  # wait_for SECONDS DESCRIPTION "LOG..." COMMAND...: poll COMMAND every 0.25 s, then show the LOGs
  local t=$1 what=$2 log=$3; shift 3
  for _ in $(seq 1 $((t * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  # shellcheck disable=SC2086  # $log: one or more log files, space-separated
  fail "timed out after ${t}s waiting for $what" $log
}
need_root() { [ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts system daemons)"; }

# --- processes -------------------------------------------------------------------------------------------
pidfile() {
  case $1 in
    munged) echo /run/munge/munged.pid ;;
    mariadbd) echo /run/mysqld/mysqld.pid ;;
    *) echo "$STATE/$1.pid" ;;
  esac
}
pid_of() {  # pid_of DAEMON: print its pid if it runs (pid file first, then the exact process name)
  local f pid name=${1%%.*}
  f=$(pidfile "$1")
  if [ -s "$f" ]; then
    pid=$(<"$f")
    if [ -r "/proc/$pid/comm" ] && [ "$(<"/proc/$pid/comm")" = "$name" ]; then echo "$pid"; return 0; fi
  fi
  [ "$name" = "$1" ] || return 1  # a node's slurmd is known by its pid file only: there are several slurmds
  pgrep -x "$1" | head -n 1 | grep .
}
running() { pid_of "$1" >/dev/null; }
stop() {  # stop DAEMON: SIGTERM (Slurm daemons save their state on it), wait, SIGKILL after 30 s
  local pid
  pid=$(pid_of "$1") || return 0
  stop_pid "$1" "$pid"
}
stop_pid() {  # stop_pid NAME PID
  local pid=$2
  say "stopping $1 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do [ -d "/proc/$pid" ] || return 0; sleep 0.25; done
  say "$1 ignored SIGTERM for 30 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}
start() {  # start DAEMON LOG COMMAND...: run a self-daemonizing command detached from our stdout/stderr
  local d=$1 log=$2; shift 2
  say "starting $d"
  # Detached fds: a caller that captures our output (pytest, CI) must not wait on the daemon's copies,
  # and the daemon must not inherit our lock (fd 9), or the next `up` would wait for it forever.
  setsid "$@" </dev/null >>"$LOGS/start.log" 2>&1 9>&- || fail "$d did not start" "$LOGS/start.log" "$log"
  wait_for 20 "$d to run" "$LOGS/start.log $log" running "$d"
}

# --- install ---------------------------------------------------------------------------------------------
install_packages() {
  local b missing=0
  for b in slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mysqld_safe mysql; do
    command -v "$b" >/dev/null || missing=1
  done
  if [ $missing = 0 ]; then say "packages: installed"; return; fi
  command -v apt-get >/dev/null || fail "Slurm is not installed and there is no apt-get: install slurm-wlm, slurmdbd, munge, mariadb-server"
  say "installing slurm-wlm slurmdbd munge mariadb-server (apt, ~1-2 min)"
  export DEBIAN_FRONTEND=noninteractive
  local log=/tmp/slurm-onenode-apt.log
  # No service starts from package scripts (no systemd here, and we start daemons with our own config).
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod 755 $policy; made_policy=1; fi
  local rc=0
  { apt-get update -q && apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
      slurm-wlm slurmdbd munge mariadb-server mariadb-client; } >"$log" 2>&1 || rc=$?
  [ $made_policy = 1 ] && rm -f $policy
  [ $rc = 0 ] || fail "apt-get install failed (rc $rc)" "$log"
}

# --- configuration ---------------------------------------------------------------------------------------
ours() {  # ours PATH: the file is absent or one this script wrote (its first line is our header)
  [ ! -e "$1" ] || head -n 1 "$1" | grep -q "^$HEADER"
}
put() {  # put PATH MODE < CONTENT: write if different; return 0 if the file changed
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; chmod "$2" "$1"; return 1; fi
  install -m "$2" -o root -g root "$tmp" "$1"
  rm -f "$tmp"
  return 0
}

# --- nodes -----------------------------------------------------------------------------------------------
cpu_nodes() { local i; for i in $(seq 1 "$NODES"); do echo "node$i"; done; }
all_nodes() { cpu_nodes; echo "$GPU_NODE"; }
node_addr() { if [ "$1" = "$GPU_NODE" ]; then echo "$GPU_NODE_ADDR"; else echo "127.0.0.$((10 + ${1#node}))"; fi; }
node_port() { if [ "$1" = "$GPU_NODE" ]; then echo 16841; else echo "$((16820 + ${1#node}))"; fi; }
configured_nodes() {  # the nodes of the slurm.conf that `up` wrote last (down/status/kill-node use them)
  sed -n 's/^NodeName=\([^ ]*\) .*/\1/p' "$ETC/slurm.conf" 2>/dev/null
}
fake_gpus() { echo "$STATE/fake-gpus/$1-gpu"; }  # + 0..FAKE_GPUS-1: gres.conf File= needs character devices

prepare_host() {
  local n
  mkdir -p "$ETC" "$STATE/ctld" "$STATE/d" "$LOGS" /run/munge /run/mysqld
  : >"$LOGS/start.log"  # what daemons print while starting (this run only)
  if ! getent hosts "$HOST" >/dev/null; then
    say "adding $HOST to /etc/hosts (slurmctld and slurmd find the node by its short name)"
    echo "127.0.0.1 $HOST" >>/etc/hosts
  fi
  # Every node's name resolves to its own loopback address: jobs, srun and Ray find each other by it.
  remove_hosts_lines
  for n in $(all_nodes); do echo "$(node_addr "$n") $n $HOSTS_TAG" >>/etc/hosts; done
  mkdir -p "$STATE/fake-gpus"
  for i in $(seq 0 $((FAKE_GPUS - 1))); do
    [ -c "$(fake_gpus "$GPU_NODE")$i" ] || mknod "$(fake_gpus "$GPU_NODE")$i" c 1 3  # like /dev/null
  done
}
remove_hosts_lines() {  # /etc/hosts may be a bind mount (containers): rewrite it in place, never replace it
  local kept
  kept=$(grep -v "$HOSTS_TAG\$" /etc/hosts || true)
  printf '%s\n' "$kept" >/etc/hosts
}

SLURM_CONF_CHANGED=0
DBD_CONF_CHANGED=0
refuse_foreign_configs() {  # on a real Slurm host, never replace the site's configuration or restart its daemons
  local f
  for f in "$ETC/slurm.conf" "$ETC/slurmdbd.conf" "$ETC/gres.conf"; do
    ours "$f" || fail "$f exists and was not written by this script (no '$HEADER' first line): it looks like a \
real cluster's configuration, and 'up' would replace it and restart its daemons. Nothing was changed. Run this on \
a machine without Slurm, or move the file away yourself if it is a leftover."
  done
}
write_configs() {
  local cpus=$CPUS_PER_NODE total margin mem defmem n gres node_lines="" cpu_list
  total=$(free -m | awk '/^Mem:/{print $2}')
  margin=$(( total / 20 > 512 ? total / 20 : 512 ))   # slurmd drains a node that has less than RealMemory
  mem=$(( total - margin ))
  defmem=$(( mem / cpus < 2048 ? mem / cpus : 2048 ))  # so that every CPU can run a default-sized task
  for n in $(all_nodes); do
    gres=""
    [ "$n" != "$GPU_NODE" ] || gres=" Gres=gpu:$FAKE_GPUS"
    node_lines+="NodeName=$n NodeHostname=$n NodeAddr=$(node_addr "$n") Port=$(node_port "$n") CPUs=$cpus Sockets=1 \
CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem$gres State=UNKNOWN"$'\n'
  done
  cpu_list=$(cpu_nodes | paste -sd,)
  if put "$ETC/slurm.conf" 644 <<EOF
$HEADER (do not edit: \`up\` rewrites it). $NODES CPU node(s) and one fake-GPU node; accounting via slurmdbd.
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
# No cgroups (containers, CI): track job processes through /proc. Tasks are bound to their cores as on real
# sites (task/affinity, no cgroups needed): a step that forgets --cpus-per-task gets one core, here as there.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
TaskPluginParam=Cores
MpiDefault=none
# Cores and memory are consumable: 1-CPU tasks run side by side, one per core.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
# Reject at submission (not pend forever) a job that exceeds its partition's limits, e.g. its MaxTime.
EnforcePartLimits=ALL
# GPUs exist only on $GPU_NODE (partition gpu), as stand-in devices: a --gres=gpu:N request elsewhere is rejected.
GresTypes=gpu
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
# Jobs need an existing account association (as on real sites): root and account '$ACCOUNT' exist; QOS limits
# (e.g. MaxSubmitJobsPerUser of QOS '$QOS') are enforced at submission.
AccountingStorageEnforce=associations,limits,qos
# Jobs may be requeued (scontrol requeue, preemption-like tests); nothing preempts by itself.
JobRequeue=1
PreemptType=preempt/none
# Array indexes 0..1000: a bigger grid has to be split into several array jobs.
MaxArraySize=1001
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
KillWait=5
StateSaveLocation=$STATE/ctld
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmctldLogFile=$LOGS/slurmctld.log
# Several slurmds on one machine: each node has its own spool dir, pid and log file (%n: the node's name), and
# takes its CPUs and memory from its NodeName line below rather than from the machine (config_overrides).
SlurmdSpoolDir=$STATE/d/%n
SlurmdPidFile=$STATE/slurmd.%n.pid
SlurmdLogFile=$LOGS/slurmd.%n.log
SlurmdParameters=config_overrides
# A node whose slurmd stops answering is set DOWN after this long and its jobs requeued (real sites: 300).
SlurmdTimeout=30
# Each CPU counts as a core (also on hyper-threaded machines), so N CPUs run N 1-CPU tasks at once.
# Every node at its own loopback address and port (never any other address).
${node_lines}PartitionName=debug Nodes=$cpu_list Default=YES MaxTime=60 DefMemPerCPU=$defmem State=UP
PartitionName=short Nodes=$cpu_list Default=NO MaxTime=5 DefMemPerCPU=$defmem State=UP
PartitionName=gpu Nodes=$GPU_NODE Default=NO MaxTime=60 DefMemPerCPU=$defmem State=UP
EOF
  then SLURM_CONF_CHANGED=1; fi
  if put "$ETC/gres.conf" 644 <<EOF
$HEADER. Stand-in GPUs: character devices (like /dev/null), no real GPU behind them.
AutoDetect=off
NodeName=$GPU_NODE Name=gpu File=$(fake_gpus "$GPU_NODE")[0-$((FAKE_GPUS - 1))]
EOF
  then SLURM_CONF_CHANGED=1; fi
  if put "$ETC/slurmdbd.conf" 600 <<EOF
$HEADER. Mode 600, owned by SlurmUser (root): slurmdbd refuses anything looser.
AuthType=auth/munge
DbdHost=$HOST
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$LOGS/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
EOF
  then DBD_CONF_CHANGED=1; fi
  say "configs: $ETC/slurm.conf (nodes $cpu_list + $GPU_NODE: $cpus CPUs, ${mem} MB each), gres.conf, slurmdbd.conf$(
    [ $SLURM_CONF_CHANGED$DBD_CONF_CHANGED = 00 ] && echo ' (unchanged)')"
}

# --- daemons ---------------------------------------------------------------------------------------------
start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
  fi
  mkdir -p /var/lib/munge /var/log/munge
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
  if running munged; then say "munged: running"; return; fi
  start munged /var/log/munge/munged.log runuser -u munge -- /usr/sbin/munged
  wait_for 10 "munge to answer" /var/log/munge/munged.log bash -c 'munge -n | unmunge'
}

start_mariadb() {
  chown mysql:mysql /run/mysqld
  if running mariadbd || running mysqld; then
    say "mariadb: running"
  else
    if [ ! -d /var/lib/mysql/mysql ]; then
      say "initialising the mariadb data directory"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$LOGS/mariadb-install.log" 2>&1 \
        || fail "mariadb-install-db failed" "$LOGS/mariadb-install.log"
    fi
    # No systemd here: mysqld_safe (what /etc/init.d/mariadb runs) keeps mariadbd up, logging to our file.
    say "starting mariadb"
    # mariadbd writes its log as user mysql: the file must exist and be theirs.
    touch "$LOGS/mariadb.log"
    chown mysql:mysql "$LOGS/mariadb.log"
    setsid mysqld_safe --skip-syslog --log-error="$LOGS/mariadb.log" </dev/null >>"$LOGS/start.log" 2>&1 9>&- &
    wait_for 60 "mariadb to answer" "$LOGS/start.log $LOGS/mariadb.log" mysqladmin ping
  fi
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" 2>"$LOGS/mariadb-setup.log" \
    || fail "could not create the accounting database" "$LOGS/mariadb-setup.log" "$LOGS/mariadb.log"
}

start_slurmdbd() {
  if running slurmdbd && [ $DBD_CONF_CHANGED = 1 ]; then say "slurmdbd.conf changed: restarting slurmdbd"; stop slurmdbd; fi
  if running slurmdbd; then say "slurmdbd: running"; else start slurmdbd "$LOGS/slurmdbd.log" slurmdbd; fi
  wait_for 60 "slurmdbd to answer sacctmgr" "$LOGS/slurmdbd.log" sacctmgr -n show cluster
}

register() {  # the cluster, account $ACCOUNT, and root (+ the sudo user) in it
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster $CLUSTER failed" "$LOGS/slurmdbd.log"
  fi
  if ! sacctmgr -n -P show account format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="one-node test account" organization=onenode \
      >/dev/null || fail "sacctmgr add account $ACCOUNT failed" "$LOGS/slurmdbd.log"
  fi
  local u users=(root)
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && id "$SUDO_USER" >/dev/null 2>&1; then users+=("$SUDO_USER"); fi
  for u in "${users[@]}"; do
    if ! sacctmgr -n -P show assoc cluster="$CLUSTER" account="$ACCOUNT" user="$u" format=user | grep -qx "$u"; then
      sacctmgr -i add user "$u" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null \
        || fail "sacctmgr add user $u failed" "$LOGS/slurmdbd.log"
    fi
  done
  if ! sacctmgr -n -P show qos format=name | grep -qx "$QOS"; then
    sacctmgr -i add qos "$QOS" MaxSubmitJobsPerUser="$QOS_MAX_SUBMIT" >/dev/null || fail "sacctmgr add qos $QOS failed" "$LOGS/slurmdbd.log"
  fi
  for u in "${users[@]}"; do  # allowed, not default: jobs ask for it with --qos=$QOS
    sacctmgr -i modify user "$u" set qos+="$QOS" >/dev/null 2>&1 || true
  done
  say "accounting: cluster $CLUSTER, accounts root and $ACCOUNT, users ${users[*]}, qos normal and $QOS (max $QOS_MAX_SUBMIT jobs)"
}

node_state() { sinfo -h -N -n "$1" -o %t 2>/dev/null | head -n 1; }
node_usable() { [[ $(node_state "$1") =~ ^(idle|mix|alloc|comp)$ ]]; }
slurmd_pids() {  # every slurmd of this machine, ours under any config (a node renamed or removed included)
  pgrep -x slurmd || true
}
uts_of() { readlink "/proc/$1/ns/uts" 2>/dev/null; }

start_node() {  # start_node NAME: its slurmd in a UTS namespace of its own, so that jobs see `hostname` = NAME
  local n=$1
  mkdir -p "$STATE/d/$n"
  start "slurmd.$n" "$LOGS/slurmd.$n.log" unshare --uts --fork bash -c "hostname $n && exec slurmd -N $n"
}

start_slurm() {
  local n pid
  if [ $SLURM_CONF_CHANGED = 1 ] && { running slurmctld || [ -n "$(slurmd_pids)" ]; }; then
    say "slurm.conf changed: restarting slurmctld and the slurmds"
    for pid in $(slurmd_pids); do stop_pid slurmd "$pid"; done
    stop slurmctld
  fi
  if running slurmctld; then say "slurmctld: running"; else start slurmctld "$LOGS/slurmctld.log" slurmctld; fi
  wait_for 30 "slurmctld to answer" "$LOGS/slurmctld.log" scontrol ping
  for n in $(all_nodes); do
    if running "slurmd.$n"; then say "slurmd of $n: running"; else start_node "$n"; fi
  done
  for n in $(all_nodes); do
    # A node left down/drained (an earlier crash, kill-node) goes back to service.
    if [[ $(node_state "$n") =~ ^(down|drain|drng|fail|inval)\*?$ ]]; then
      say "node $n was $(node_state "$n"): resuming it"
      scontrol update nodename="$n" state=resume 2>/dev/null || true
    fi
    wait_for 60 "node $n to be idle (sinfo)" "$LOGS/slurmd.$n.log" node_usable "$n"
  done
  wait_for 30 "sacct to answer" "$LOGS/slurmdbd.log" sacct -n -X -S now
}

lock() {  # two `up`s at once (parallel test sessions, CI) take turns instead of racing to start the same daemons
  mkdir -p /run/lock
  exec 9>/run/lock/slurm-onenode.lock
  flock -w 300 9 || fail "another 'cluster.sh' has held /run/lock/slurm-onenode.lock for 5 minutes"
}

# --- commands --------------------------------------------------------------------------------------------
up() {
  need_root
  lock
  refuse_foreign_configs
  install_packages
  prepare_host
  write_configs
  start_munge
  start_mariadb
  start_slurmdbd
  register
  start_slurm
  say "up in $((SECONDS - T0))s: nodes $(cpu_nodes | paste -sd' ') ($CPUS_PER_NODE CPUs each) in partitions debug \
(default, 60 min) and short (5 min), $GPU_NODE ($FAKE_GPUS fake GPUs) in partition gpu; sacct works"
}

down() {
  need_root
  lock
  local d pid
  for pid in $(slurmd_pids); do stop_pid slurmd "$pid"; done
  for d in slurmctld slurmdbd; do
    if running "$d"; then stop "$d"; else say "$d: not running"; fi
  done
  remove_hosts_lines
  rm -rf "$STATE/fake-gpus"
  say "down in $((SECONDS - T0))s (munged and mariadb left running; 'up' brings Slurm back with its job state)"
}

status() {
  local ok=0 d pid n
  for d in munged mariadbd slurmdbd slurmctld; do
    if pid=$(pid_of "$d"); then echo "$d: running (pid $pid)"; else echo "$d: not running"; ok=1; fi
  done
  if ! sinfo 2>&1; then ok=1; fi
  for n in $(configured_nodes); do
    if pid=$(pid_of "slurmd.$n"); then d="slurmd pid $pid"; else d="slurmd not running"; ok=1; fi
    if node_usable "$n"; then echo "node $n ($(node_addr "$n")): $(node_state "$n"), $d"
    else echo "node $n ($(node_addr "$n")): $(node_state "$n") (not usable), $d"; ok=1; fi
  done
  if sacct -n -X -S now >/dev/null 2>&1; then echo "sacct: answers"; else echo "sacct: no answer"; ok=1; fi
  [ $ok = 0 ] && echo "status: up" || echo "status: not (fully) up"
  return $ok
}

kill_node() {  # kill_node NAME: the node is lost, as when a machine dies: nothing on it gets to clean up
  need_root
  local n=${1:-} pid ns p killed=0
  configured_nodes | grep -qx "$n" || fail "no node '$n' (nodes: $(configured_nodes | paste -sd' '))"
  pid=$(pid_of "slurmd.$n") || fail "node $n: its slurmd is not running"
  ns=$(uts_of "$pid")
  [ "$ns" != "$(uts_of $$)" ] || fail "node $n shares this shell's UTS namespace: refusing to kill everything here"
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if [ "$(uts_of "$p")" = "$ns" ]; then kill -KILL "$p" 2>/dev/null && killed=$((killed + 1)); fi
  done
  scontrol update nodename="$n" state=down reason="lost (slurm/cluster.sh kill-node)" \
    || fail "scontrol could not set $n DOWN" "$LOGS/slurmctld.log"
  say "node $n lost: $killed processes killed (slurmd, job steps, Ray), node DOWN; 'up' brings it back"
}

usage() { echo "usage: bash slurm/cluster.sh up [--nodes=N] [--cpus-per-node=C] | down | status | kill-node NAME" >&2; exit 2; }
command=${1:-}
[ $# -gt 0 ] && shift
case $command in
  up)
    for arg in "$@"; do
      case $arg in
        --nodes=[1-9]) NODES=${arg#--nodes=} ;;
        --cpus-per-node=[1-9]|--cpus-per-node=[1-9][0-9]) CPUS_PER_NODE=${arg#--cpus-per-node=} ;;
        --nodes=*) echo "cluster.sh: --nodes=${arg#--nodes=} is not allowed: 1 to 9 (addresses 127.0.0.11-19)" >&2; exit 2 ;;
        *) echo "cluster.sh: unknown argument '$arg'" >&2; usage ;;
      esac
    done
    if [ -z "$NODES" ]; then NODES=$(configured_nodes | grep -c '^node' || true); [ "$NODES" -ge 1 ] || NODES=1; fi
    up ;;
  down) down ;;
  status) status ;;
  kill-node) kill_node "${1:-}" ;;
  *) usage ;;
esac
