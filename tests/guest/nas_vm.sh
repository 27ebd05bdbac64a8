# lkh-nas in a real guest kernel against the host's nfs-ganesha (10.0.2.2, v3 + v4):
# restore/quickCheck/remove/recover (VERSION=3, 4.2 and 4), bad input, a server stopped and
# frozen under hard mounts, a process holding the mount, and remove on a dead server's mount.
# Each timed action is bounded by TIMEOUT (the issue's proof: exit within TIMEOUT + 1 s).
T=5

have_bin lkh-nas || fatal "lkh-nas is not in the guest"
nfs_net_up; check net-up $?
mkdir -p /etc/lkhelpers /run
umask 022

conf v3 SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/v3 VERSION=3 TIMEOUT=$T
conf v4 SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/v4 VERSION=4.2 TIMEOUT=$T IO_CHECK=read

# said NAME TEXT: the last nas run NAME said TEXT on stderr
said() { grep -q "$2" /tmp/$1.err; check "$1-says-$(echo "$2" | tr ' ' '-')" $? "$(cat /tmp/$1.err)"; }
# agree NAME WANT TAG: quickCheck exits WANT, and status --json exits WANT too and shows it
agree() {
    nas $1-qc $2 quickCheck -t $3
    nas $1-status $2 status -t $3 --json
    grep -q "\"exit\":$2," /tmp/$1-status.out; check $1 $? "$(cat /tmp/$1-status.out)"
}
nas_procs() { for _p in /proc/[0-9]*; do cat "$_p/comm" 2>/dev/null; done | grep -c '^lkh-nas$'; }

# --- healthy v3 and v4 ---------------------------------------------------------------
nas restore-v3 0 restore -t v3
nas restore-v3-again 0 restore -t v3
said restore-v3-again "already mounted"
nas restore-v4 0 restore -t v4
note "mountinfo of the kit's mounts:"
grep ' nfs' /proc/self/mountinfo
grep ' /mnt/v3 .* - nfs 10.0.2.2:/export .*vers=3,' /proc/self/mountinfo >/dev/null; check mountinfo-v3 $?
grep ' /mnt/v4 .* - nfs4 10.0.2.2:/export .*vers=4.2,' /proc/self/mountinfo >/dev/null; check mountinfo-v4 $?
[ "$(mounted /mnt/v3)" = 1 ]; check v3-mounted-once $?
[ "$(cat /mnt/v3/hello.txt)" = hello-from-host ]; check read-v3 $?
[ "$(cat /mnt/v4/hello.txt)" = hello-from-host ]; check read-v4 $?
nas qc-v3-healthy 0 quickCheck -t v3
nas qc-v4-healthy 0 quickCheck -t v4
nas status-v3 0 status -t v3 --json
grep -q '"healthy":true' /tmp/status-v3.out; check status-v3-healthy $?
agree agree-v3-healthy 0 v3
grep -q '"verdict":"healthy"' /tmp/agree-v3-healthy-status.out; check status-v3-verdict-healthy $?
nas probe-server 0 probe 10.0.2.2 /export
for i in 1 2 3 4 5; do lkh-nas quickCheck -t v3 2>/dev/null; done
note "five quickChecks done"

# --- VERSION=4: the highest minor version ganesha and this kernel share ----------------
conf v4n SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/v4n VERSION=4 TIMEOUT=$T
nas restore-v4n 0 restore -t v4n
said restore-v4n "negotiated from VERSION=4"
V4N=$(grep ' /mnt/v4n ' /proc/self/mountinfo | sed -n 's/.*[ ,]vers=\(4\.[0-9]\).*/\1/p')
note "VERSION=4 against nfs-ganesha negotiated NFS $V4N"
[ -n "$V4N" ] && grep -q "(NFS $V4N, negotiated from VERSION=4" /tmp/restore-v4n.err
check restore-v4n-logs-negotiated-version $? "mountinfo vers=$V4N; $(cat /tmp/restore-v4n.err)"
nas qc-v4n 0 quickCheck -t v4n
nas remove-v4n 0 remove -t v4n
[ "$(mounted /mnt/v4n)" = 0 ]; check remove-v4n-unmounted $?

# --- SERVER by name: resolved once at restore, the address is used from then on ------
echo "10.0.2.2 nas-by-name" >> /etc/hosts
conf named SERVER=nas-by-name EXPORT=/export MOUNTPOINT=/mnt/named VERSION=3 TIMEOUT=$T
nas restore-named 0 restore -t named
grep -q ' /mnt/named .* 10.0.2.2:/export ' /proc/self/mountinfo; check named-mounted-by-address $?
sed -i 's/^10.0.2.2 nas-by-name$/192.0.2.99 nas-by-name/' /etc/hosts
nas qc-named-after-dns-change 0 quickCheck -t named
nas remove-named 0 remove -t named

# --- bad input: exit 2, nothing mounted ----------------------------------------------
conf bad1 SERVER=10.0.2.2 EXPORT=export MOUNTPOINT=/mnt/bad VERSION=3
conf bad2 SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=mnt/bad VERSION=3
conf bad3 SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/bad VERSION=5
conf bad4 SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/bad VERSION=3 OPTIONS=vers=4,hard
conf bad5 SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/bad VERSION=4.2 OPTIONS=mountport=20048
conf bad6 SERVER=999.1.1.1 EXPORT=/export MOUNTPOINT=/mnt/bad VERSION=3
conf bad7 EXPORT=/export MOUNTPOINT=/mnt/bad VERSION=3
for b in bad1 bad2 bad3 bad4 bad5 bad6 bad7; do
    nas restore-$b 2 restore -t $b
done
[ "$(mounted /mnt/bad)" = 0 ]; check bad-input-mounted-nothing $?
mkdir -p /mnt/busy && mount -t tmpfs busy /mnt/busy
conf busy SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/busy VERSION=3
nas restore-busy 2 restore -t busy
said restore-busy "already in use"
umount /mnt/busy

# --- a process holding the mount: remove ends it and unmounts ------------------------
(cd /mnt/v3 && exec sleep 1000) &
CWD_PID=$!
sleep 1000 < /mnt/v3/hello.txt &
FD_PID=$!
sleep 0.5
nas remove-v3-busy 0 remove -t v3
kill -0 $CWD_PID 2>/dev/null; [ $? != 0 ]; check remove-ended-cwd-user $?
kill -0 $FD_PID 2>/dev/null; [ $? != 0 ]; check remove-ended-fd-user $?
[ "$(mounted /mnt/v3)" = 0 ]; check remove-unmounted-v3 $?
nas remove-v3-again 0 remove -t v3

# --- a mount below the mount point, covered by the NFS mount: remove leaves it alone -----
mkdir -p /mnt/v3/under && mount -t tmpfs under /mnt/v3/under
nas restore-v3-over 0 restore -t v3
# ...and the export stacked on itself (as if mounted twice): remove takes off both copies
mount -o bind /mnt/v3 /mnt/v3; check bind-v3-on-itself $?
[ "$(mounted /mnt/v3)" = 2 ]; check v3-stacked-twice $?
nas remove-v3-over 0 remove -t v3
[ "$(mounted /mnt/v3)" = 0 ]; check remove-over-unmounted-v3 $?
[ "$(mounted /mnt/v3/under)" = 1 ]; check remove-left-covered-mount $?
umount /mnt/v3/under
nas qc-v3-removed 1 quickCheck -t v3
said qc-v3-removed "not mounted"
agree agree-v3-not-mounted 1 v3
grep -q '"verdict":"not mounted"' /tmp/agree-v3-not-mounted-status.out; check status-v3-verdict-not-mounted $?
nas restore-v3-back 0 restore -t v3

# --- server stopped ------------------------------------------------------------------
nfs_server stop; check server-stop $?
nas qc-v3-stopped 1 quickCheck -t v3; bounded qc-v3-stopped
said qc-v3-stopped "server not answering"
nas qc-v4-stopped 1 quickCheck -t v4; bounded qc-v4-stopped
said qc-v4-stopped "server not answering"
agree agree-v3-stopped 1 v3; bounded agree-v3-stopped
grep -q '"verdict":"server not answering' /tmp/agree-v3-stopped-status.out; check status-v3-verdict-stopped $?
nas recover-v3-stopped 1 recover -t v3; bounded recover-v3-stopped
said recover-v3-stopped "server not answering"
nfs_server start; check server-start $?
nas recover-v3-back 0 recover -t v3
nas qc-v3-back 0 quickCheck -t v3
nas recover-v4-back 0 recover -t v4
nas qc-v4-back 0 quickCheck -t v4
[ "$(mounted /mnt/v3)" = 1 ]; check v3-mounted-once-after-recover $?

# --- mount lost while the server answers: recover remounts ---------------------------
umount -l /mnt/v3
nas qc-v3-lost 1 quickCheck -t v3
said qc-v3-lost "not mounted"
nas recover-v3-lost 0 recover -t v3
said recover-v3-lost "mounted 10.0.2.2:/export on /mnt/v3"
[ "$(mounted /mnt/v3)" = 1 ]; check recover-remounted-v3 $?
[ "$(cat /mnt/v3/hello.txt)" = hello-from-host ]; check read-v3-after-recover $?

# --- server frozen (SIGSTOP): bounded verdicts, no checker left behind ---------------
nfs_server freeze; check server-freeze $?
nas qc-v3-frozen 1 quickCheck -t v3; bounded qc-v3-frozen
said qc-v3-frozen "server not answering"
said qc-v3-frozen "mount wedged"
nas qc-v3-frozen-again 1 quickCheck -t v3; bounded qc-v3-frozen-again
[ "$(nas_procs)" = 0 ]; check no-stuck-checkers $? "lkh-nas processes: $(nas_procs)"
nas qc-v4-frozen 1 quickCheck -t v4; bounded qc-v4-frozen
said qc-v4-frozen "server not answering"
conf v5 SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/v5 VERSION=3 TIMEOUT=$T
nas restore-v5-frozen 1 restore -t v5; bounded restore-v5-frozen
said restore-v5-frozen "nothing was mounted"
[ "$(mounted /mnt/v5)" = 0 ]; check restore-on-frozen-server-mounted-nothing $?
(cat /mnt/v4/hello.txt > /dev/null 2>&1) &
HUNG_PID=$!
nas remove-v4-dead 0 remove -t v4; bounded remove-v4-dead
[ "$(mounted /mnt/v4)" = 0 ]; check remove-on-dead-server-unmounted $?
kill -0 $HUNG_PID 2>/dev/null; [ $? != 0 ]; check remove-ended-hung-reader $?
[ "$(nas_procs)" = 0 ]; check no-stuck-processes-after-remove $? "lkh-nas processes: $(nas_procs)"
nfs_server thaw; check server-thaw $?
nas recover-v3-thawed 0 recover -t v3
nas qc-v3-thawed 0 quickCheck -t v3
nas restore-v4-thawed 0 restore -t v4
nas qc-v4-thawed 0 quickCheck -t v4

# --- issue 24: the export again under another id (re-created, or another NAS at the same
# --- address): quickCheck says the handle is stale, recover mounts afresh
nfs_server reexport; check server-reexport $?
nas qc-v3-stale 1 quickCheck -t v3
said qc-v3-stale "file handle is stale"
nas qc-v4-stale 1 quickCheck -t v4
said qc-v4-stale "file handle is stale"
nas recover-v3-stale 0 recover -t v3
nas recover-v4-stale 0 recover -t v4
said recover-v4-stale "recover: unmounted /mnt/v4"
[ "$(cat /mnt/v3/hello.txt)" = hello-from-host ]; check read-v3-after-stale-recover $?
[ "$(cat /mnt/v4/hello.txt)" = hello-from-host ]; check read-v4-after-stale-recover $?
nas qc-v3-after-stale 0 quickCheck -t v3

# --- clean up --------------------------------------------------------------------------
nas remove-v3-end 0 remove -t v3
nas remove-v4-end 0 remove -t v4
[ "$(grep -c ' nfs' /proc/self/mountinfo)" = 0 ]; check all-unmounted $?
