# lkh-nas against the Linux kernel NFS server (knfsd) in the guest itself: v3, 4.0, 4.1, 4.2
# and VERSION=4 (and a mount that is not what VERSION=4 negotiated); one server mounted by
# two addresses; the learnt record lost, with a wrong NFS port or a stale handle; rpc.mountd
# dead under a working v3 mount and back on another port; server stopped, silent (frozen)
# and restarted; remove with a user; a v4-only, a 4.1+-only and a v3-only server. The server
# is 192.0.2.1 (and 127.0.0.1), see lib/knfsd.sh.
T=5
S=$KNFSD_ADDR

have_bin lkh-nas || fatal "lkh-nas is not in the guest"
mkdir -p /etc/lkhelpers /run
umask 022
knfsd_start all; check knfsd-start $?

said() { grep -q "$2" /tmp/$1.err; check "$1-says-$(echo "$2" | tr ' =/' '---')" $? "$(cat /tmp/$1.err)"; }
vers_at() { grep " $1 " /proc/self/mountinfo | sed -n 's/.*[ ,]vers=\([0-9.]*\).*/\1/p' | tail -1; }
nas_procs() { for _p in /proc/[0-9]*; do cat "$_p/comm" 2>/dev/null; done | grep -c '^lkh-nas$'; }
# what k3's hooks learnt about the server (settings::Learnt), and one value of it
R=/run/lkhelpers/nas/k3/server
learnt() { sed -n "s/^$1=//p" $R 2>/dev/null; }

# --- every version, restore / quickCheck / remove ---------------------------------------
for v in 3 4.0 4.1 4.2 4; do
    t=k$(echo $v | tr -d .)
    conf $t SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/$t VERSION=$v TIMEOUT=$T
    nas restore-$t 0 restore -t $t
    nas qc-$t 0 quickCheck -t $t
    note "$t: $(grep " /mnt/$t " /proc/self/mountinfo)"
done
[ "$(cat /mnt/k3/hello.txt)" = hello-from-host ]; check read-k3 $?
[ "$(vers_at /mnt/k40)" = 4.0 ]; check mountinfo-k40 $? "vers=$(vers_at /mnt/k40)"
[ "$(vers_at /mnt/k41)" = 4.1 ]; check mountinfo-k41 $? "vers=$(vers_at /mnt/k41)"
[ "$(vers_at /mnt/k42)" = 4.2 ]; check mountinfo-k42 $? "vers=$(vers_at /mnt/k42)"
# VERSION=4 is the highest minor version both sides offer (issue 17, defect 2)
[ "$(vers_at /mnt/k4)" = 4.2 ]; check version-4-negotiates-4.2 $? "vers=$(vers_at /mnt/k4)"
said restore-k4 "NFS 4.2"
for t in k40 k41 k42 k4; do nas remove-$t 0 remove -t $t; done

# --- issue 24: a restore that fails after mounting takes exactly its mount off again -------
# rpc.mountd stopped and the kernel's export caches flushed (not the client address cache):
# an NFSv4 mount waits for nfsd's export upcall, while the probe, which needs no export,
# answers. Meanwhile the mount point is renamed: the mount lands on the renamed directory, not
# at MOUNTPOINT. restore fails and unmounts that mount by its identity; nothing is left.
conf kr SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/kr/data VERSION=4.2 TIMEOUT=20
rm -rf /mnt/kr; mkdir -p /mnt/kr/data
kill -STOP "$KNFSD_MOUNTD"
for _c in nfsd.fh nfsd.export; do echo $(($(date +%s) + 1)) > /proc/net/rpc/$_c/flush; done
lkh-nas restore -t kr > /tmp/restore-kr.out 2> /tmp/restore-kr.err &
RPID=$!
M=
for _i in $(seq 150); do
    for _p in /proc/[0-9]*; do
        [ "$(awk '/^PPid:/{print $2}' $_p/status 2>/dev/null)" = "$RPID" ] || continue
        # x86_64 mount(2) is system call 165
        [ "$(cut -d' ' -f1 $_p/syscall 2>/dev/null)" = 165 ] && M=${_p#/proc/}
    done
    [ -n "$M" ] && break
    sleep 0.1
done
[ -n "$M" ]; check restore-kr-mount-waits $? "no child of $RPID in mount(2)"
mv /mnt/kr/data /mnt/kr/moved
kill -CONT "$KNFSD_MOUNTD"
wait $RPID; RC=$?
cat /tmp/restore-kr.err
[ "$RC" = 1 ]; check restore-kr-fails $? "rc=$RC"
said restore-kr "the mount appeared at /mnt/kr/moved instead"
said restore-kr "nothing is left mounted"
[ "$(grep -c ' /mnt/kr' /proc/self/mountinfo)" = 0 ]; check restore-kr-left-nothing $? "$(grep ' /mnt/kr' /proc/self/mountinfo)"
rm -rf /mnt/kr

# --- VERSION=4 held to what restore negotiated: 4.2, remounted as 4.1 by hand -------------
nas restore-k4-neg 0 restore -t k4
umount /mnt/k4; check umount-k4-by-hand $?
mount -t nfs4 -o vers=4.1,hard,proto=tcp,port=2049,addr=$S $S:/export /mnt/k4; check mount-k4-41-by-hand $?
[ "$(vers_at /mnt/k4)" = 4.1 ]; check k4-by-hand-is-4.1 $? "vers=$(vers_at /mnt/k4)"
nas qc-k4-as-41 1 quickCheck -t k4
said qc-k4-as-41 "not mounted as negotiated"
nas remove-k4-as-41 0 remove -t k4
[ "$(mounted /mnt/k4)" = 0 ]; check k4-by-hand-removed $?

# --- a process holding the mount: remove ends it ----------------------------------------
(cd /mnt/k3 && exec sleep 1000) &
CWD_PID=$!
sleep 0.5
nas remove-k3-busy 0 remove -t k3
kill -0 $CWD_PID 2>/dev/null; [ $? != 0 ]; check remove-ended-cwd-user $?
[ "$(mounted /mnt/k3)" = 0 ]; check remove-unmounted-k3 $?
nas restore-k3-back 0 restore -t k3

# --- issue 24: holders in slave mount namespaces (root shared): after remove's exit 0 the
# --- export (this guest's own /export: the server side) sees no write from them
mount --make-rshared /; check knfsd-root-shared $?
for v in 3 4.2; do
    t=ks$(echo $v | tr -d .)
    # room for the looks at every process on a loaded host (a look takes 0.1-0.2 s here)
    conf $t SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/$t VERSION=$v TIMEOUT=10
    nas restore-$t 0 restore -t $t
    rm -f /export/$t-*.log
    unshare -m --propagation slave sh -c "cd /mnt/$t && while :; do echo c >> $t-cwd.log; sleep 0.1; done" &
    W_CWD=$!
    unshare -m --propagation slave sh -c "exec 3>> /mnt/$t/$t-fd.log; cd /; while :; do echo f >&3; sleep 0.1; done" &
    W_FD=$!
    unshare -m --propagation private sh -c 'cd / && exec sleep 1020' &
    W_PRIV=$!
    # NFSv4 opens wait out the server's grace period after a (re)start: the writers must be
    # seen writing on the server before remove is asked to stop them
    for _i in $(seq 300); do
        [ -s /export/$t-cwd.log ] && [ -s /export/$t-fd.log ] && break
        sleep 0.1
    done
    [ -s /export/$t-cwd.log ] && [ -s /export/$t-fd.log ]
    check $t-server-sees-slave-writes $? "$(ls -l /export/$t-*.log 2>&1 | tr '\n' ' ')"
    sleep 0.5
    nas remove-$t-slave 0 remove -t $t
    C1=$(wc -c < /export/$t-cwd.log) F1=$(wc -c < /export/$t-fd.log)
    sleep 1.5
    C2=$(wc -c < /export/$t-cwd.log) F2=$(wc -c < /export/$t-fd.log)
    [ "$C1" = "$C2" ] && [ "$F1" = "$F2" ] && [ "$F1" -gt 0 ]
    check $t-no-write-after-remove $? "on the server after remove: cwd log $C1 -> $C2 bytes, fd log $F1 -> $F2 bytes"
    ! kill -0 $W_CWD 2>/dev/null && ! kill -0 $W_FD 2>/dev/null; check $t-slave-holders-ended $?
    kill -0 $W_PRIV && ! grep -q " /mnt/$t " /proc/$W_PRIV/mountinfo; check $t-private-copy-unmounted $?
    kill $W_PRIV
done
mount --make-rprivate /

# --- one server, two addresses (defect 1) ----------------------------------------------
# The same minor version: the kernel merges B onto A's connection (SUNRPC "reached max
# allowed number (1)"): B is refused with exit 2 and nothing of B is left.
conf ka SERVER=127.0.0.1 EXPORT=/export MOUNTPOINT=/mnt/ka VERSION=4.2 TIMEOUT=$T
conf kb SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/kb VERSION=4.2 TIMEOUT=$T
nas restore-ka 0 restore -t ka
nas restore-kb-merged 2 restore -t kb
said restore-kb-merged "merged this mount onto the existing connection to the same server at 127.0.0.1"
[ "$(mounted /mnt/kb)" = 0 ]; check merged-mount-undone $? "$(grep ' /mnt/kb ' /proc/self/mountinfo)"
[ "$(mounted /mnt/ka)" = 1 ]; check merged-left-a-alone $?
nas qc-ka-after-kb 0 quickCheck -t ka
nas qc-kb-merged 1 quickCheck -t kb
nas remove-kb-merged 0 remove -t kb
# A 4.1 client is another client (minor versions are not merged): B gets its own connection
conf kb SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/kb VERSION=4.1 TIMEOUT=$T
nas restore-kb41 0 restore -t kb
grep -q ' /mnt/kb .*,addr=192.0.2.1$' /proc/self/mountinfo; check kb41-own-connection $? "$(grep ' /mnt/kb ' /proc/self/mountinfo)"
nas qc-kb41 0 quickCheck -t kb
nas remove-ka 0 remove -t ka
nas remove-kb41 0 remove -t kb

# --- what restore learnt, lost or out of date -------------------------------------------
# The record gone (an upgrade, a cleared run directory): a restore that finds the share
# mounted records nothing, the first quickCheck's full chain records it.
[ -n "$(learnt root_fh)" ]; check k3-recorded-at-restore $? "$(cat $R 2>&1)"
rm -f $R
nas restore-k3-already 0 restore -t k3
nas qc-k3-no-record 0 quickCheck -t k3
[ -n "$(learnt root_fh)" ] && [ "$(learnt nfs_port)" = 2049 ] && [ "$(learnt mount_port)" = 20048 ]
check qc-records-what-it-learnt $? "$(cat $R 2>&1)"
FH=$(learnt root_fh)
# a changed NFS port: the check on the recorded port fails, the full chain runs once
sed -i 's/^nfs_port=.*/nfs_port=1/' $R
nas qc-k3-nfs-port-changed 0 quickCheck -t k3
[ "$(learnt nfs_port)" = 2049 ]; check record-nfs-port-rewritten $? "$(cat $R)"
# a stale root handle (the server restarted with another file system)
sed -i "s/^root_fh=.*/root_fh=$(echo "$FH" | tr 0-9a-f f)/" $R
nas qc-k3-stale-handle 0 quickCheck -t k3
[ "$(learnt root_fh)" = "$FH" ]; check record-root-handle-rewritten $? "$(cat $R)"

# --- rpc.mountd dead, NFS answers (defect 3): a warning, not a failover ------------------
knfsd_mountd_kill
[ "$(cat /mnt/k3/hello.txt)" = hello-from-host ]; check read-k3-mountd-dead $?
nas qc-k3-mountd-dead 0 quickCheck -t k3
said qc-k3-mountd-dead "new mounts would fail"
nas recover-k3-mountd-dead 0 recover -t k3
nas status-k3-mountd-dead 0 status -t k3
grep -q "new mounts would fail" /tmp/status-k3-mountd-dead.out /tmp/status-k3-mountd-dead.err; check status-warns-mountd-dead $?
nas status-k3-mountd-dead-json 0 status -t k3 --json
grep -q '"warning":"the MOUNT service of .*new mounts would fail' /tmp/status-k3-mountd-dead-json.out; check status-json-warns-mountd-dead $?
grep -q '"verdict":"healthy","exit":0,' /tmp/status-k3-mountd-dead-json.out; check status-json-mountd-dead-healthy $?
conf k3b SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/k3b VERSION=3 TIMEOUT=$T
nas restore-k3b-mountd-dead 1 restore -t k3b
[ "$(mounted /mnt/k3b)" = 0 ]; check mountd-dead-restore-mounted-nothing $?
# rpc.mountd back on another port (Linux's takes a new one at each start): the recorded
# port does not answer, the full chain runs once and finds the new one; no warning
knfsd_mountd_start 20049; check mountd-restart-new-port $?
# rpc.mountd listens before it registers with rpcbind: wait until the portmapper knows the port
mountd_registered() { lkh-nas probe $S /export 2>&1 | grep -q "GETPORT mount .* port $1"; }
retry 50 mountd_registered 20049; check mountd-registered-new-port $?
nas qc-k3-mountd-moved 0 quickCheck -t k3
! grep -q "new mounts would fail" /tmp/qc-k3-mountd-moved.err; check qc-k3-mountd-moved-no-warning $? "$(cat /tmp/qc-k3-mountd-moved.err)"
[ "$(learnt mount_port)" = 20049 ]; check record-mount-port-moved $? "$(cat $R)"
nas qc-k3-mountd-back 0 quickCheck -t k3
! grep -q "new mounts would fail" /tmp/qc-k3-mountd-back.err; check qc-k3-mountd-back-no-warning $? "$(cat /tmp/qc-k3-mountd-back.err)"

# --- server stopped and started; frozen and thawed ---------------------------------------
conf k42 SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/k42 VERSION=4.2 TIMEOUT=$T
nas restore-k42-again 0 restore -t k42
knfsd_stop; check knfsd-stop $?
nas qc-k3-stopped 1 quickCheck -t k3; bounded qc-k3-stopped
said qc-k3-stopped "server not answering"
nas qc-k42-stopped 1 quickCheck -t k42; bounded qc-k42-stopped
said qc-k42-stopped "server not answering"
nas recover-k3-stopped 1 recover -t k3; bounded recover-k3-stopped
knfsd_nfsd_start; check knfsd-restart $?
retry 50 lkh-nas quickCheck -t k3 2>/dev/null; check qc-k3-after-restart $?
retry 100 lkh-nas quickCheck -t k42 2>/dev/null; check qc-k42-after-restart $?
# frozen: the address routed into a device that drops everything (lib/knfsd.sh), so
# nothing answers and nothing refuses
knfsd_freeze; check knfsd-freeze $?
nas qc-k3-frozen 1 quickCheck -t k3; bounded qc-k3-frozen
said qc-k3-frozen "server not answering"
said qc-k3-frozen "mount wedged"
# MOUNT is silent too, but "this one works" would be false: no MOUNT warning
! grep -q "this one works" /tmp/qc-k3-frozen.err; check qc-k3-frozen-no-mount-warning $? "$(cat /tmp/qc-k3-frozen.err)"
nas qc-k3-frozen-again 1 quickCheck -t k3; bounded qc-k3-frozen-again
[ "$(nas_procs)" = 0 ]; check no-stuck-checkers $? "lkh-nas processes: $(nas_procs)"
nas qc-k42-frozen 1 quickCheck -t k42; bounded qc-k42-frozen
said qc-k42-frozen "server not answering"
conf k3c SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/k3c VERSION=3 TIMEOUT=$T
nas restore-k3c-frozen 1 restore -t k3c; bounded restore-k3c-frozen
said restore-k3c-frozen "nothing was mounted"
[ "$(mounted /mnt/k3c)" = 0 ]; check restore-on-frozen-server-mounted-nothing $?
(cat /mnt/k42/hello.txt > /dev/null 2>&1) &
HUNG_PID=$!
nas remove-k42-frozen 0 remove -t k42; bounded remove-k42-frozen
[ "$(mounted /mnt/k42)" = 0 ]; check remove-on-frozen-unmounted $?
kill -0 $HUNG_PID 2>/dev/null; [ $? != 0 ]; check remove-ended-hung-reader $?
[ "$(nas_procs)" = 0 ]; check no-stuck-processes-after-remove $? "lkh-nas processes: $(nas_procs)"
knfsd_thaw; check knfsd-thaw $?
retry 50 lkh-nas quickCheck -t k3 2>/dev/null; check qc-k3-thawed $?
nas remove-k3-end 0 remove -t k3
nas probe-all 0 probe $S /export

# --- issue 24: the export re-created under another fsid: quickCheck says the handle is stale,
# --- recover unmounts and mounts afresh (no remount: the stale root handle would stay)
nas restore-k3-fsid 0 restore -t k3
nas restore-k42-fsid 0 restore -t k42
knfsd_reexport 2; check knfsd-reexport-fsid-2 $?
for t in k3 k42; do
    nas qc-$t-stale 1 quickCheck -t $t
    said qc-$t-stale "the export's file handle is stale"
    nas status-$t-stale 1 status -t $t --json
    grep -q '"verdict":"file handle stale"' /tmp/status-$t-stale.out; check status-$t-stale-verdict $? "$(cat /tmp/status-$t-stale.out)"
    nas recover-$t-stale 0 recover -t $t
    [ "$(cat /mnt/$t/hello.txt)" = hello-from-host ]; check read-$t-after-stale-recover $?
    nas qc-$t-after-stale 0 quickCheck -t $t
    nas remove-$t-fsid 0 remove -t $t
done
knfsd_reexport 1

# --- a v4-only server: no rpcbind, no MOUNT on the network (defect 4) -------------------
knfsd_stop_all
knfsd_start v4only; check knfsd-start-v4only $?
nas restore-k3-v4only 1 restore -t k3
said restore-k3-v4only "offers only NFSv4"
# the hooks that judge a mount say it too (defect 4), not "server not answering"
nas qc-k3-v4only 1 quickCheck -t k3
said qc-k3-v4only "offers only NFSv4"
! grep -q "server not answering" /tmp/qc-k3-v4only.err; check qc-k3-v4only-not-silent $? "$(cat /tmp/qc-k3-v4only.err)"
nas status-k3-v4only 1 status -t k3 --json
grep -q '"verdict":"[^"]*server offers only NFSv4' /tmp/status-k3-v4only.out; check status-k3-v4only-verdict $? "$(cat /tmp/status-k3-v4only.out)"
[ "$(mounted /mnt/k3)" = 0 ]; check v4only-v3-mounted-nothing $?
for t in k41 k42 k4; do
    nas restore-$t-v4only 0 restore -t $t
    nas qc-$t-v4only 0 quickCheck -t $t
    nas remove-$t-v4only 0 remove -t $t
done
nas probe-v4only 0 probe $S

# --- a 4.1+-only server (defects 2 and 5) -------------------------------------------------
knfsd_stop_all
knfsd_start v41only; check knfsd-start-v41only $?
nas restore-k4-v41only 0 restore -t k4
[ "$(vers_at /mnt/k4)" = 4.2 ]; check v41only-version-4-is-4.2 $? "vers=$(vers_at /mnt/k4)"
nas qc-k4-v41only 0 quickCheck -t k4
nas remove-k4-v41only 0 remove -t k4
nas restore-k40-v41only 1 restore -t k40
said restore-k40-v41only "offers only NFSv4.1"
[ "$(mounted /mnt/k40)" = 0 ]; check v41only-40-mounted-nothing $?
nas probe-v41only 0 probe $S
grep -q "4.1" /tmp/probe-v41only.out; check probe-v41only-names-minor $? "$(cat /tmp/probe-v41only.out)"
# NFS NULL answers, but a 4.0 COMPOUND gets NFS4ERR_MINOR_VERS_MISMATCH: not proven (defect 5)
nas probe-v41only-as-40 1 probe $S --version 4.0
said probe-v41only-as-40 "offers NFS 4.1, 4.2 but not 4.0"

# --- 4.0 and 4.1 only: VERSION=4 falls back to 4.1 ----------------------------------------
knfsd_stop_all
knfsd_start no42; check knfsd-start-no42 $?
nas restore-k4-no42 0 restore -t k4
[ "$(vers_at /mnt/k4)" = 4.1 ]; check no42-version-4-is-4.1 $? "vers=$(vers_at /mnt/k4)"
nas qc-k4-no42 0 quickCheck -t k4
nas remove-k4-no42 0 remove -t k4

# --- a v3-only server: probe without an export says NFSv3 answered ------------------------
knfsd_stop_all
knfsd_start v3only; check knfsd-start-v3only $?
nas probe-v3only 1 probe $S
said probe-v3only "answers NFS v3 NULL"
! grep -q "does not answer NFS" /tmp/probe-v3only.err; check probe-v3only-not-silent $? "$(cat /tmp/probe-v3only.err)"
nas probe-v3only-export 0 probe $S /export

# --- issue 24: a server answering every call with a record of 2 GiB - 1 bytes ----------------
# (a broken or hostile server; the guest has 512 MB): a verdict within TIMEOUT, no abort,
# nothing mounted
knfsd_stop_all
printf '#!/bin/sh\nprintf "\\377\\377\\377\\377\\000\\000\\000\\001"\nsleep 30\n' > /tmp/absurd.sh
chmod +x /tmp/absurd.sh
nc -ll -p 111 -e /tmp/absurd.sh &
ABSURD_PMAP=$!
nc -ll -p 2049 -e /tmp/absurd.sh &
ABSURD_NFS=$!
retry 50 knfsd_listening 111 && retry 50 knfsd_listening 2049; check absurd-server-listening $?
conf kx SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/kx VERSION=3 TIMEOUT=$T
conf kx4 SERVER=$S EXPORT=/export MOUNTPOINT=/mnt/kx4 VERSION=4.2 TIMEOUT=$T
nas probe-absurd 1 probe $S /export; bounded probe-absurd
said probe-absurd "malformed reply"
nas restore-kx-absurd 1 restore -t kx; bounded restore-kx-absurd
said restore-kx-absurd "server sent a malformed reply"
nas restore-kx4-absurd 1 restore -t kx4; bounded restore-kx4-absurd
said restore-kx4-absurd "server sent a malformed reply"
[ "$(grep -cE ' /mnt/kx4? ' /proc/self/mountinfo)" = 0 ]; check absurd-mounted-nothing $?
kill $ABSURD_PMAP $ABSURD_NFS 2>/dev/null

[ "$(grep -cE ' - nfs4? ' /proc/self/mountinfo)" = 0 ]; check all-unmounted $? "$(grep -E ' - nfs4? ' /proc/self/mountinfo)"
