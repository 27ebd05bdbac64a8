# Benchmark (issue 5, Performance): healthy lkh-nas quickCheck vs the Pacemaker Filesystem
# agent's monitor on the same NFS v3 mount, and the verdict time with a frozen server.
# Figures are reported as CHECK details "bench-*"; times from /proc/uptime (10 ms ticks),
# averaged over N runs. Guest under TCG: compare ratios, not absolute times.
T=5
N=${N:-20}
have_bin lkh-nas || fatal "lkh-nas is not in the guest"
nfs_net_up; check net-up $?
mkdir -p /etc/lkhelpers /run; umask 022
printf 'SERVER=10.0.2.2\nEXPORT=/export\nMOUNTPOINT=/mnt/v3\nVERSION=3\nTIMEOUT=%s\n' $T > /etc/lkhelpers/v3.conf
lkh-nas restore -t v3; check restore $?

per_run_ms() {  # per_run_ms T0 T1 N
    awk "BEGIN{printf \"%.1f\", ($2 - $1) * 1000 / $3}"
}

lkh-nas quickCheck -t v3 2>/dev/null; check qc-warm $?
t0=$(uptime_s); i=0; ok=0
while [ $i -lt $N ]; do lkh-nas quickCheck -t v3 2>/dev/null && ok=$((ok + 1)); i=$((i + 1)); done
t1=$(uptime_s)
QC=$(per_run_ms $t0 $t1 $N)
[ $ok = $N ]; check bench-quickcheck-healthy $? "n=$N ms_per_run=$QC"

# breakdown: process start alone, and quickCheck without the IO check
t0=$(uptime_s); i=0
while [ $i -lt $N ]; do lkh-nas --version >/dev/null; i=$((i + 1)); done
t1=$(uptime_s)
pass bench-process-start "n=$N ms_per_run=$(per_run_ms $t0 $t1 $N)"
t0=$(uptime_s); i=0
while [ $i -lt $N ]; do lkh-nas quickCheck -t v3 --io-check none 2>/dev/null; i=$((i + 1)); done
t1=$(uptime_s)
pass bench-quickcheck-no-io "n=$N ms_per_run=$(per_run_ms $t0 $t1 $N)"
lkh-nas quickCheck -t v3 -v  # probe step timings on the console

export OCF_ROOT=/usr/lib/ocf OCF_FUNCTIONS_DIR=/usr/lib/ocf/lib/heartbeat
export OCF_RESOURCE_INSTANCE=nasfs OCF_RESKEY_CRM_meta_interval=20000 OCF_RESKEY_CRM_meta_timeout=40000
export OCF_RESKEY_device=10.0.2.2:/export OCF_RESKEY_directory=/mnt/v3 OCF_RESKEY_fstype=nfs
FS=/usr/lib/ocf/resource.d/heartbeat/Filesystem
# The agent insists that fuser and fsck exist (not in this busybox guest); monitor never
# runs them, so stubs that fail satisfy its check without changing what monitor does.
mkdir -p /tmp/stub
for c in fuser fsck; do
    have_bin $c || { printf '#!/bin/sh\nexit 1\n' > /tmp/stub/$c; chmod +x /tmp/stub/$c; }
done
export PATH="$PATH:/tmp/stub"
# depth 0 (parse /proc/mounts) only: depth 20 needs dd oflag=sync, which busybox lacks
for depth in 0; do
    export OCF_CHECK_LEVEL=$depth
    run sh $FS monitor; rc=$?
    if [ $rc != 0 ]; then
        fail bench-filesystem-monitor-depth$depth "the agent's monitor does not run here: rc=$rc"
        continue
    fi
    t0=$(uptime_s); i=0; ok=0
    while [ $i -lt $N ]; do sh $FS monitor >/dev/null 2>&1 && ok=$((ok + 1)); i=$((i + 1)); done
    t1=$(uptime_s)
    FSMS=$(per_run_ms $t0 $t1 $N)
    [ $ok = $N ]; check bench-filesystem-monitor-depth$depth $? "n=$N ms_per_run=$FSMS ratio_quickcheck=$(awk "BEGIN{printf \"%.3f\", $QC / $FSMS}")"
done
unset OCF_CHECK_LEVEL

nfs_server freeze; check server-freeze $?
for k in 1 2 3; do
    t0=$(uptime_s)
    lkh-nas quickCheck -t v3 2>/dev/null; rc=$?
    t1=$(uptime_s)
    V=$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")
    [ $rc = 1 ]; check bench-frozen-verdict-$k $? "timeout_s=$T verdict_s=$V ratio_timeout=$(awk "BEGIN{printf \"%.3f\", $V / $T}")"
done
nfs_server thaw; check server-thaw $?
lkh-nas remove -t v3; check remove $?
