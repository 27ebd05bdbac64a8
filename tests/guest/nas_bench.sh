# Benchmark (issue 5, Performance): healthy lkh-nas quickCheck vs the Pacemaker Filesystem
# agent's monitor on the same NFS v3 mount, and the verdict time with a frozen server.
# Figures are reported as CHECK details "bench-*"; times from /proc/uptime (10 ms ticks),
# averaged over N runs. Guest under TCG: compare ratios, not absolute times.
#
# Address-space randomisation: TCG translates guest code per virtual address, so a
# position-independent binary (lkh-nas, static-pie) loaded at a new random base by every exec
# is translated afresh each run, while busybox (a fixed-address executable, which runs the
# agent here) reuses its translations. Real CPUs have no such cost. The main figures are taken
# with randomisation off (kernel.randomize_va_space=0) so both sides run on equal terms; the
# same pair is then measured with it on, and both are reported.
T=5
N=${N:-40}
have_bin lkh-nas || fatal "lkh-nas is not in the guest"
nfs_net_up; check net-up $?
mkdir -p /etc/lkhelpers /run; umask 022
printf 'SERVER=10.0.2.2\nEXPORT=/export\nMOUNTPOINT=/mnt/v3\nVERSION=3\nTIMEOUT=%s\n' $T > /etc/lkhelpers/v3.conf
lkh-nas restore -t v3; check restore $?

per_run_ms() {  # per_run_ms T0 T1 N
    awk "BEGIN{printf \"%.1f\", ($2 - $1) * 1000 / $3}"
}
# ms_per_run N CMD...: average wall time of N runs of CMD (all must succeed, else "failed")
ms_per_run() {
    _n=$1; shift
    _t0=$(uptime_s); _i=0; _ok=0
    while [ $_i -lt $_n ]; do "$@" >/dev/null 2>&1 && _ok=$((_ok + 1)); _i=$((_i + 1)); done
    _t1=$(uptime_s)
    [ $_ok = $_n ] || { echo failed; return 1; }
    per_run_ms $_t0 $_t1 $_n
}

export OCF_ROOT=/usr/lib/ocf OCF_FUNCTIONS_DIR=/usr/lib/ocf/lib/heartbeat
export OCF_RESOURCE_INSTANCE=nasfs OCF_RESKEY_CRM_meta_interval=20000 OCF_RESKEY_CRM_meta_timeout=40000
export OCF_RESKEY_device=10.0.2.2:/export OCF_RESKEY_directory=/mnt/v3 OCF_RESKEY_fstype=nfs
# depth 0 (parse /proc/mounts) only: depth 20 needs dd oflag=sync, which busybox lacks
export OCF_CHECK_LEVEL=0
FS=/usr/lib/ocf/resource.d/heartbeat/Filesystem
# The agent insists that fuser and fsck exist (not in this busybox guest); monitor never
# runs them, so stubs that fail satisfy its check without changing what monitor does.
mkdir -p /tmp/stub
for c in fuser fsck; do
    have_bin $c || { printf '#!/bin/sh\nexit 1\n' > /tmp/stub/$c; chmod +x /tmp/stub/$c; }
done
export PATH="$PATH:/tmp/stub"
run sh $FS monitor; FS_RC=$?
[ $FS_RC = 0 ]; check filesystem-monitor-runs $? "rc=$FS_RC"

lkh-nas quickCheck -t v3 2>/dev/null; check qc-warm $?
for aslr in 0 2; do
    echo $aslr > /proc/sys/kernel/randomize_va_space
    sfx=""; [ $aslr = 0 ] || sfx="-aslr"
    QC=$(ms_per_run $N lkh-nas quickCheck -t v3)
    [ "$QC" != failed ]; check bench-quickcheck-healthy$sfx $? "n=$N ms_per_run=$QC"
    pass bench-process-start$sfx "n=$N ms_per_run=$(ms_per_run $N lkh-nas --version)"
    pass bench-quickcheck-no-io$sfx "n=$N ms_per_run=$(ms_per_run $N lkh-nas quickCheck -t v3 --io-check none)"
    if [ $FS_RC = 0 ]; then
        FSMS=$(ms_per_run 20 sh $FS monitor)
        [ "$FSMS" != failed ]; check bench-filesystem-monitor-depth0$sfx $? \
            "n=20 ms_per_run=$FSMS ratio_quickcheck=$(awk "BEGIN{printf \"%.3f\", $QC / $FSMS}")"
    fi
done
echo 0 > /proc/sys/kernel/randomize_va_space
lkh-nas quickCheck -t v3 -v  # probe step timings on the console
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
