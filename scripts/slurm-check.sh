#!/usr/bin/env bash
# Runs a suite as two shards in two processes at once and merges them, then
# runs scripts/slurm-array.sh under a real, throwaway single-node SLURM cluster
# (slurmctld + slurmd on this machine, munge for authentication); both times
# checks that the merged rows cover every point of the suite exactly once.
#
#   scripts/slurm-check.sh [SUITE.toml] [JOULEBENCH]
#
# Defaults: experiments/smoke.toml and target/release/joulebench (built if
# missing). Needs root and Debian's slurm-wlm (installed with apt-get when
# missing). The cluster lives in a temporary folder with its own ports and
# is shut down on exit; nothing outside that folder is configured, except
# that munged is started if it is not running.
set -euo pipefail

cd "$(dirname "$0")/.."
SUITE=$(realpath "${1:-experiments/smoke.toml}")
JB=${2:-target/release/joulebench}
[ -x "$JB" ] || cargo build --release --quiet
JB=$(realpath "$JB")

die() { echo "slurm-check: $*" >&2; exit 1; }

# merged.csv holds every point of the suite once, all ok, from two shards.
check_merged() { # MERGED_CSV SHARD_DIRS
    local want
    want=$("$JB" run "$SUITE" --dry-run 2>/dev/null | sed -n '1s/.*, \([0-9]*\) point(s)$/\1/p')
    python3 - "$1" "$want" "$2" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
want, shards = int(sys.argv[2] or 0), int(sys.argv[3])
points = [r["point"] for r in rows]
assert shards == 2, f"{shards} shard directories, expected 2"
assert len(points) == len(set(points)), f"duplicate points in {sys.argv[1]}"
assert want > 0 and len(points) == want, f"{len(points)} rows, the suite has {want} points"
assert all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
PY
}

P=$(mktemp -d /tmp/jb-shards.XXXXXX)
"$JB" run "$SUITE" --shard 1/2 --out "$P" --quiet --no-plot &
first=$!
"$JB" run "$SUITE" --shard 2/2 --out "$P" --quiet --no-plot
wait "$first"
"$JB" merge "$P"/*/*/results.csv --out "$P/merged.csv"
check_merged "$P/merged.csv" "$(find "$P" -name results.csv -path '*-shard*of2/*' | wc -l)"
rm -rf "$P"
echo "slurm-check: ok: two --shard processes at once, merged"
[ "$(id -u)" -eq 0 ] || die "needs root (slurmd runs jobs as their user and must be root to do so)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null; then
    echo "installing slurm-wlm with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm </dev/null >/dev/null
fi

D=$(mktemp -d /tmp/jb-slurm.XXXXXX)
export SLURM_CONF=$D/slurm.conf
cleanup() {
    scontrol shutdown >/dev/null 2>&1 || true
    sleep 1
    [ -f "$D/slurmd.pid" ] && kill "$(cat "$D/slurmd.pid")" 2>/dev/null || true
    [ -f "$D/slurmctld.pid" ] && kill "$(cat "$D/slurmctld.pid")" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT

if ! pgrep -x munged >/dev/null; then
    [ -f /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (reinstall munge)"
    mkdir -p /run/munge
    chown munge: /run/munge 2>/dev/null || true
    # As its own user when that user exists, as Debian's service does.
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged
    else
        /usr/sbin/munged --force
    fi
fi

mkdir -p "$D/state" "$D/spool" "$D/work"
NODE=$(slurmd -C | head -1)
HOST=$(hostname -s)
# Ports away from the defaults, so that a cluster already on the machine is
# not disturbed.
cat >"$SLURM_CONF" <<EOF
ClusterName=joulebench-check
SlurmctldHost=$HOST
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=check Nodes=ALL Default=YES MaxTime=30 State=UP
EOF

slurmctld -i
slurmd
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qx idle && break
    sleep 1
done
sinfo -h -o %T | grep -qx idle || {
    tail -20 "$D/slurmctld.log" "$D/slurmd.log" >&2
    die "the node did not come up (logs above)"
}

OUT=$D/work/results
# Two shards; the array's first task queues the merge after both.
ARRAY=$PWD/scripts/slurm-array.sh
JOB=$(cd "$D/work" && JOULEBENCH=$JB OUT=$OUT sbatch --parsable --array=0-1 "$ARRAY" "$SUITE")
echo "submitted array job $JOB ($SUITE, 2 shards)"
for _ in $(seq 600); do
    [ -z "$(squeue -h 2>/dev/null)" ] && [ -f "$OUT/merged.csv" ] && break
    sleep 1
done
[ -z "$(squeue -h)" ] || die "jobs still queued after 10 minutes: $(squeue -h)"
for f in "$D"/work/slurm-*.out; do
    echo "== $(basename "$f")"
    cat "$f"
done
[ -f "$OUT/merged.csv" ] || die "the merge job wrote no $OUT/merged.csv"

check_merged "$OUT/merged.csv" "$(find "$OUT" -name results.csv -path '*-shard*of2/*' | wc -l)"
echo "slurm-check: ok: an array job of 2 shards under SLURM, merged by a dependent job"
