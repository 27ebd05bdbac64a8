# lkh-nas remove against what local users do (issue 16), against the host's nfs-ganesha:
# plain unmount first (nobody signalled when nothing holds the mount), holders named before
# they are ended, never the hook's own ancestors nor a process of another mount namespace,
# unmount by mount identity (a path swapped for a symbolic link on SIGTERM steers nothing), a
# submount with a non-UTF-8 name, an IO-check child holding nothing of its caller's, and
# remove that never waits for a name server. (Log forging: nas_forge.sh.)
T=8

have_bin lkh-nas || fatal "lkh-nas is not in the guest"
nfs_net_up; check net-up $?
mkdir -p /etc/lkhelpers /run
umask 022

# said NAME TEXT: the last nas run NAME said TEXT (fixed string) on stderr
said() { grep -qF -- "$2" /tmp/$1.err; check "$1-says-$(echo "$2" | tr -c 'a-zA-Z0-9\n' '-')" $? "$(cat /tmp/$1.err)"; }
alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! alive "$1"; }
conf s SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/s VERSION=3 TIMEOUT=$T

# --- nothing holds the mount: a plain unmount, nobody signalled -----------------------------
nas restore-idle 0 restore -t s
sleep 1000 &
BYSTANDER=$!
nas remove-idle 0 remove -t s
[ "$(mounted /mnt/s)" = 0 ]; check remove-idle-unmounted $?
! grep -qE 'busy|ended|ending' /tmp/remove-idle.err; check remove-idle-signalled-nobody $? "$(cat /tmp/remove-idle.err)"
alive $BYSTANDER; check bystander-alive $?
kill $BYSTANDER

# --- a holder is named (pid, command, what it holds), then ended -----------------------------
nas restore-busy 0 restore -t s
(cd /mnt/s && exec sleep 1001) &
HOLDER=$!
sleep 0.5
nas remove-busy 0 remove -t s
said remove-busy "/mnt/s is busy; ending the processes holding it: $HOLDER (sleep: cwd)"
gone $HOLDER; check remove-ended-holder $?
[ "$(mounted /mnt/s)" = 0 ]; check remove-busy-unmounted $?

# --- another mount namespace: a same-path tmpfs as working directory is not the mount -------
nas restore-ns 0 restore -t s
unshare -m sh -c 'umount -l /mnt/s && mount -t tmpfs other /mnt/s && cd /mnt/s && exec sleep 1002' &
NSPID=$!
(cd /mnt/s && exec sleep 1003) &
OWN=$!
sleep 0.5
[ "$(readlink /proc/$NSPID/cwd)" = /mnt/s ]; check other-namespace-cwd-same-path $? "$(readlink /proc/$NSPID/cwd)"
nas remove-ns 0 remove -t s
alive $NSPID; check other-namespace-process-not-killed $?
gone $OWN; check own-namespace-holder-ended $?
! grep -q "$NSPID" /tmp/remove-ns.err; check other-namespace-process-not-named $?
kill $NSPID

# --- the hook's own ancestor holding the mount is never signalled: remove fails naming it ----
# --- (issue 24: a lazy detach would leave it writing through the detached mount) -------------
nas restore-anc 0 restore -t s
sh -c 'cd /mnt/s && lkh-nas remove -t s 2> /tmp/remove-anc.err; echo "rc=$? pid=$$" > /tmp/remove-anc.rc'
cat /tmp/remove-anc.err /tmp/remove-anc.rc
ANC=$(sed -n 's/.* pid=//p' /tmp/remove-anc.rc)
grep -q "rc=1 " /tmp/remove-anc.rc; check ancestor-remove-fails $? "$(cat /tmp/remove-anc.rc 2>/dev/null)"
grep -qF "still held by $ANC (sh: cwd), which is never signalled" /tmp/remove-anc.err; check ancestor-named $? "$(cat /tmp/remove-anc.err)"
[ "$(mounted /mnt/s)" = 1 ]; check ancestor-mount-left-mounted $?
nas remove-after-ancestor 0 remove -t s
[ "$(mounted /mnt/s)" = 0 ]; check remove-after-ancestor-unmounted $?

# --- the symlink swap: a tmpfs at u/efi stands in for a user's FUSE mount; its holder, on ----
# --- SIGTERM, renames u and puts u -> /mnt/victim in its place --------------------------------
mkdir -p /mnt/victim && mount -t tmpfs victim /mnt/victim
mkdir -p /mnt/victim/efi && mount -t tmpfs victim-efi /mnt/victim/efi && echo keep > /mnt/victim/efi/precious
nas restore-swap 0 restore -t s
rm -rf /mnt/s/u /mnt/s/u.old
mkdir -p /mnt/s/u/efi && mount -t tmpfs user-efi /mnt/s/u/efi; check user-efi-mounted $?
sh -c 'cd /mnt/s/u/efi || exit 1
trap "mv /mnt/s/u /mnt/s/u.old; ln -s /mnt/victim /mnt/s/u; exit 0" TERM
while :; do sleep 0.1; done' &
SWAPPER=$!
sleep 0.5
nas remove-swap 0 remove -t s
grep ' /mnt/victim\| /mnt/s' /proc/self/mountinfo
[ "$(mounted /mnt/victim/efi)" = 1 ]; check swap-victim-still-mounted $?
[ "$(cat /mnt/victim/efi/precious 2>/dev/null)" = keep ]; check swap-victim-intact $?
[ "$(mounted /mnt/victim)" = 1 ]; check swap-victim-parent-still-mounted $?
[ "$(grep -c ' /mnt/s[ /]' /proc/self/mountinfo)" = 0 ]; check swap-resource-tree-unmounted $?
gone $SWAPPER; check swap-holder-ended $?
said remove-swap "unmounted /mnt/s/u.old/efi"
umount /mnt/victim/efi /mnt/victim

# --- issue 24: a symbolic link anywhere in MOUNTPOINT is refused by validate and every action --
# --- (whoever controls the link would choose where root mounts the export); nothing mounted ---
mkdir -p /mnt/real && ln -sfn /mnt/real /mnt/lnk
conf lnk SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/lnk/data VERSION=3 TIMEOUT=$T
for _a in validate restore quickCheck recover remove status; do
    nas lnk-$_a 2 $_a -t lnk
    said lnk-$_a "MOUNTPOINT=/mnt/lnk/data: /mnt/lnk is a symbolic link (to /mnt/real)"
done
[ "$(grep -c ' /mnt/real' /proc/self/mountinfo)" = 0 ] && [ ! -e /mnt/real/data ]
check lnk-mounted-nothing $? "$(grep ' /mnt/real' /proc/self/mountinfo; ls /mnt/real)"
rm -f /mnt/lnk

# --- a submount with a non-UTF-8 name does not block remove ----------------------------------
nas restore-latin1 0 restore -t s
# the holder did put its link in place (on the export, seen again once mounted)
[ -L /mnt/s/u ] && [ "$(readlink /mnt/s/u)" = /mnt/victim ]; check swap-link-was-in-place $?
rm -rf /mnt/s/u /mnt/s/u.old
N=$(printf 'lat\377n')
rm -rf "/mnt/s/$N"; mkdir -p "/mnt/s/$N" && mount -t tmpfs latin1 "/mnt/s/$N"; check latin1-submount $?
nas remove-latin1 0 remove -t s
[ "$(grep -c ' /mnt/s[ /]' /proc/self/mountinfo)" = 0 ]; check remove-latin1-unmounted-all $?

# --- the IO-check child holds nothing of its caller's (a pipe read to its end) --------------
nas restore-io 0 restore -t s
nfs_server freeze; check server-freeze $?
(out=$(lkh-nas quickCheck -t s 2>&1); echo "$out" > /tmp/qc-pipe.out) &
READER=$!
CHILD=
for _i in $(seq 50); do
    for _p in /proc/[0-9]*; do
        [ "$(cat $_p/comm 2>/dev/null)" = lkh-nas ] || continue
        _pp=$(awk '/^PPid:/{print $2}' $_p/status 2>/dev/null)
        [ "$(cat /proc/$_pp/comm 2>/dev/null)" = lkh-nas ] && CHILD=${_p#/proc/}
    done
    [ -n "$CHILD" ] && break
    sleep 0.05
done
[ -n "$CHILD" ]; check io-child-found $?
FDS=$(ls /proc/$CHILD/fd 2>/dev/null | sort -n | tr '\n' ' ')
note "IO-check child $CHILD descriptors: $FDS"
for _f in /proc/$CHILD/fd/*; do note "  $_f -> $(readlink $_f)"; done
[ "$FDS" = "0 1 2 " ]; check io-child-only-0-1-2 $? "$FDS"
NULLS=0
for _f in 0 1 2; do [ "$(readlink /proc/$CHILD/fd/$_f)" = /dev/null ] && NULLS=$((NULLS + 1)); done
[ $NULLS = 3 ]; check io-child-stdio-dev-null $? "$NULLS of 3"
wait $READER; check io-reader-saw-end-of-file $?
grep -q "mount wedged" /tmp/qc-pipe.out; check io-qc-said-wedged $? "$(cat /tmp/qc-pipe.out)"
nfs_server thaw; check server-thaw $?
nas remove-io 0 remove -t s

# --- issue 24: holders in other mount namespaces, the root mount shared (systemd's default) ---
# remove ends every holder of the share's superblock whatever its namespace, unmounts every
# copy it can reach there and ends the processes of a namespace whose copy it cannot unmount;
# after its exit 0 the server sees no write from this node
mount --make-rshared / ; check root-shared $?
grep -q ' / / .*shared:' /proc/self/mountinfo; check root-is-shared $? "$(grep ' / / ' /proc/self/mountinfo)"
LDSO=$(ls /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 2>/dev/null | head -1)
[ -n "$LDSO" ] && have_bin sg_dd; check map-tools $? "ld.so=$LDSO"
nas restore-slave 0 restore -t s
rm -rf /mnt/s/slave-* /mnt/s/nest
cp "$(command -v sg_dd)" /mnt/s/slave-map-prog
rm -f /tmp/slave-fifo; mkfifo /tmp/slave-fifo
# cwd: appends through its working directory; fd: through a descriptor opened for writing
unshare -m --propagation slave sh -c 'cd /mnt/s && while :; do echo c >> slave-cwd.log; sleep 0.1; done' &
S_CWD=$!
unshare -m --propagation slave sh -c 'exec 3>> /mnt/s/slave-fd.log; cd /; while :; do echo f >&3; sleep 0.1; done' &
S_FD=$!
# map: a program mapped from the share, run by the dynamic loader (no descriptor, no cwd), waiting
# to open a FIFO
unshare -m --propagation slave "$LDSO" /mnt/s/slave-map-prog if=/tmp/slave-fifo of=/dev/null &
S_MAP=$!
# a mount nested in a slave namespace's copy (which then does not go with ours), a private
# namespace's copy (which nothing here propagates to): unmounted there, their processes live on
unshare -m --propagation slave sh -c 'mkdir -p /mnt/s/nest && mount -t tmpfs nest /mnt/s/nest && cd / && exec sleep 1010' &
S_NEST=$!
unshare -m --propagation private sh -c 'cd / && exec sleep 1011' &
S_PRIV=$!
# a user namespace's copy is locked there (not even root can unmount it): its processes are ended
unshare -U -m --propagation private sh -c 'cd / && exec sleep 1012' &
S_USER=$!
sleep 1
[ "$(readlink /proc/$S_CWD/cwd)" = /mnt/s ] && [ "$(readlink /proc/$S_FD/fd/3)" = /mnt/s/slave-fd.log ] && grep -q slave-map-prog /proc/$S_MAP/maps
check slave-holders-in-place $? "cwd=$(readlink /proc/$S_CWD/cwd) fd3=$(readlink /proc/$S_FD/fd/3)"
for _p in $S_NEST $S_PRIV $S_USER; do grep -q ' /mnt/s ' /proc/$_p/mountinfo || echo "no copy in $_p"; done > /tmp/copies.txt
[ ! -s /tmp/copies.txt ]; check copies-in-place $? "$(cat /tmp/copies.txt)"
W1=$(host_request export size slave-cwd.log)
sleep 0.5
W2=$(host_request export size slave-cwd.log)
[ "${W1:-0}" -lt "${W2:-0}" ]; check server-sees-slave-writes $? "$W1 -> $W2"
nas remove-slave 0 remove -t s
C1=$(host_request export size slave-cwd.log) F1=$(host_request export size slave-fd.log)
sleep 1.5
C2=$(host_request export size slave-cwd.log) F2=$(host_request export size slave-fd.log)
[ "$C1" = "$C2" ] && [ "$F1" = "$F2" ] && [ "${F1:-0}" -gt 0 ]
check slave-no-write-after-remove $? "on the server after remove: cwd log $C1 -> $C2 bytes, fd log $F1 -> $F2 bytes"
gone $S_CWD; check slave-cwd-holder-ended $?
gone $S_FD; check slave-fd-holder-ended $?
gone $S_MAP; check slave-map-holder-ended $?
said remove-slave "ending the processes holding it: "
said remove-slave "$S_CWD (sh: cwd, in mount namespace mnt:["
said remove-slave "$S_MAP (ld-linux-x86-64: maps, in mount namespace"
alive $S_NEST && alive $S_PRIV; check copy-only-processes-alive $?
[ "$(grep -c ' /mnt/s[ /]' /proc/$S_NEST/mountinfo)" = 0 ]; check slave-nested-copy-unmounted $? "$(grep ' /mnt/s' /proc/$S_NEST/mountinfo)"
[ "$(grep -c ' /mnt/s ' /proc/$S_PRIV/mountinfo)" = 0 ]; check private-copy-unmounted $? "$(grep ' /mnt/s' /proc/$S_PRIV/mountinfo)"
gone $S_USER; check user-namespace-process-ended $?
said remove-slave "cannot be unmounted there (locked); ending the processes of that namespace: $S_USER (sleep"
[ "$(mounted /mnt/s)" = 0 ]; check remove-slave-unmounted $?
kill $S_NEST $S_PRIV 2>/dev/null
mount --make-rprivate / ; check root-private-again $?

# --- remove never waits for a name server -----------------------------------------------------
cp /etc/resolv.conf /tmp/resolv.conf.saved 2>/dev/null
echo "nameserver 10.0.2.99" > /etc/resolv.conf
conf dns SERVER=nas-nowhere.example EXPORT=/export MOUNTPOINT=/mnt/dns VERSION=3 TIMEOUT=$T
nas remove-dns-never-restored 0 remove -t dns
said remove-dns-never-restored "is not mounted"
# quickCheck and status of the never-restored resource ask no resolver either (a Pacemaker
# probe on a node where it never ran): not mounted, exit 1, the server not probed
nas qc-dns-never-restored 1 quickCheck -t dns
said qc-dns-never-restored "not mounted: nas-nowhere.example:/export is not mounted"
! grep -q -e "does not resolve" -e "name resolution" /tmp/qc-dns-never-restored.err; check qc-dns-asked-no-resolver $?
nas status-dns-never-restored 1 status -t dns
grep -q "not probed: SERVER=nas-nowhere.example" /tmp/status-dns-never-restored.out; check status-dns-not-probed $? "$(cat /tmp/status-dns-never-restored.out)"
nas restore-dns 1 restore -t dns
said restore-dns "SERVER=nas-nowhere.example"
[ "$(mounted /mnt/dns)" = 0 ]; check restore-dns-mounted-nothing $?
echo "10.0.2.2 nas-here" >> /etc/hosts
conf dns2 SERVER=nas-here EXPORT=/export MOUNTPOINT=/mnt/dns2 VERSION=3 TIMEOUT=$T
nas restore-dns2 0 restore -t dns2
rm -f /run/lkhelpers/nas/dns2/addr
sed -i '/ nas-here$/d' /etc/hosts
nas remove-dns2-from-mount 0 remove -t dns2
[ "$(mounted /mnt/dns2)" = 0 ]; check remove-dns2-unmounted $?
[ -f /tmp/resolv.conf.saved ] && cp /tmp/resolv.conf.saved /etc/resolv.conf

[ "$(grep -c ' nfs' /proc/self/mountinfo)" = 0 ]; check all-unmounted $?
