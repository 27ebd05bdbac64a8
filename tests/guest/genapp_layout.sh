# The kits as LifeKeeper's Generic Application kit runs them, in a real guest kernel: only
# through gen/app's copies (lib/lk.sh) - of the genapp wrappers and, belt and braces, of the
# binaries themselves - called with `-t TAG -i ID` from / with a minimal environment.
# The fenced path (quickCheck 3 -> recover 3, never steals), NFS local recovery, a node whose
# configuration file is missing, and lkh-platform check-lifekeeper on the node's tree.

have_bin lkh-scsipr && have_bin lkh-nas || fatal "lkh-scsipr and lkh-nas must be in the guest"
shared_disk_setup a b >/dev/null || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
nfs_net_up; check net-up $?
holder() { pr_holder "$B" >/dev/null; pr_holder "$B"; }

lk_wrappers scsipr && lk_wrappers nas; check genapp-wrappers $?
lk_wrappers scsipr; check genapp-idempotent $?
# node A was given the wrappers, node B the binary itself (a copy of it per action)
lk_create a scsipr disk && lk_create b scsipr disk "$(command -v lkh-scsipr)"; check layout-disk $?
node_conf a disk "DEVICE=$A" TIMEOUT=10
node_conf b disk "DEVICE=$B" TIMEOUT=10
find /opt/lk -type f | sort

# ---- the disk: A in service, B takes it over, A is fenced ----
expect_rc ga-a-restore 0 lk_call a restore disk
[ "$(holder)" = "$(node_iqn a)" ]; check ga-a-holds $? "holder $(holder)"
expect_rc ga-a-quickcheck 0 lk_call a quickCheck disk
expect_rc ga-b-restore-binary-copy 0 lk_call b restore disk
[ "$(holder)" = "$(node_iqn b)" ]; check ga-b-holds $? "holder $(holder)"
expect_rc ga-a-quickcheck-fenced 3 lk_call a quickCheck disk
expect_rc ga-a-recover-fenced 3 lk_call a recover disk
[ "$(holder)" = "$(node_iqn b)" ]; check ga-recover-did-not-steal $? "holder $(holder)"
expect_rc ga-b-quickcheck-binary-copy 0 lk_call b quickCheck disk
expect_rc ga-b-remove-binary-copy 0 lk_call b remove disk
[ "$(holder)" = none ]; check ga-b-released $? "holder $(holder)"

# ---- the NFS mount from a copy of the binary: local recovery after the server froze ----
lk_create a nas share "$(command -v lkh-nas)"; check layout-share $?
node_conf a share SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/ga VERSION=3 TIMEOUT=8
mounted() { grep -q ' /mnt/ga .* - nfs ' /proc/self/mountinfo; }
expect_rc ga-nas-restore 0 lk_call a restore share
mounted; check ga-nas-mounted $?
expect_rc ga-nas-quickcheck 0 lk_call a quickCheck share
nfs_server freeze; check server-frozen $?
expect_rc ga-nas-quickcheck-frozen 1 lk_call a quickCheck share
expect_rc ga-nas-recover-frozen 1 lk_call a recover share
nfs_server thaw; check server-thawed $?
retry 50 timeout -s KILL 5 stat /mnt/ga >/dev/null 2>&1
expect_rc ga-nas-recover-back 0 lk_call a recover share
expect_rc ga-nas-quickcheck-back 0 lk_call a quickCheck share

# ---- extended to node B under another tag without its file: exit 2, says what to create ----
lk_create b nas share-b; check layout-share-b $?
out=$(lk_call b restore share-b 2>&1); rc=$?
echo "$out"
[ $rc = 2 ]; check ga-missing-conf-exit-2 $? "rc=$rc"
echo "$out" | grep -q "share-b.conf: no such file: create it on this node"; check ga-missing-conf-says-so $? "$out"

# ---- the wiring check on node A's tree: disk from the wrappers, share from a binary copy ----
if have_bin lkh-platform; then
    # not in /tmp: the kits refuse a defaults file in a directory others can write to
    mkdir -p /etc/lkh-test && echo "LKCHECKINTERVAL=120" > /etc/lkh-test/LifeKeeper-a
    out=$(on_node a lkh-platform check-lifekeeper --lkroot "$(lk_root a)" --defaults /etc/lkh-test/LifeKeeper-a 2>&1); rc=$?
    echo "$out"
    [ $rc = 0 ]; check ga-check-lifekeeper-ok $? "rc=$rc"
    echo "$out" | grep -q "^ok: .*resource disk: lkh-scsipr scripts .* are wired right" &&
        echo "$out" | grep -q "^warning: .*!restore/share: is a copy of the lkh-nas binary"
    check ga-check-lifekeeper-lists-resources $? "$out"
fi

expect_rc ga-nas-remove 0 lk_call a remove share
! mounted; check ga-nas-unmounted $?
