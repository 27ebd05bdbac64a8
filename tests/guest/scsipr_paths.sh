# lkh-scsipr on a two-path dm-multipath LU per node: keys on every path, takeover, a path
# down and back, a virtual-FC-like WWPN flip (new I_T nexus), All Paths Down, disks without
# PR (QEMU scsi-hd, virtio-blk), and a multipath map whose paths are different LUs.
# Target: LIO, or tgt with lkh.target=tgt (there All Paths Down is a frozen tgtd: SIGSTOP).

T=$(lkh_target)
note "target: $T"
shared_disk_setup a b || fatal "shared disk setup failed"
MA=$(mpath_setup a) || fatal "multipath of node a failed"
MB=$(mpath_setup b) || fatal "multipath of node b failed"
scsipr() { local _node=$1; shift; on_node "$_node" lkh-scsipr "$@"; }
KEYA() { cat /etc/lkhelpers/node-a/node.key; }
KEYB() { cat /etc/lkhelpers/node-b/node.key; }
OBS=$(node_dev a)
# count_key KEY: how many I_T nexuses carry KEY (one read first absorbs a pending UA)
count_key() { pr_keys "$OBS" >/dev/null; pr_keys "$OBS" | grep -ci "^$1\$"; }

node_conf a mp DEVICE="$MA" ON_FENCED=event TIMEOUT=20
node_conf b mp DEVICE="$MB" ON_FENCED=event TIMEOUT=20

out=$(scsipr a status "$MA" 2>&1); echo "$out"
[ "$(echo "$out" | grep -c ': answering')" = 2 ]; check mp-status-two-paths $?

expect_rc mp-a-restore 0 scsipr a restore -t mp
[ "$(count_key "$(KEYA)")" = 2 ]; check mp-a-key-on-both-paths $? "$(pr_keys "$OBS" | tr '\n' ' ')"
expect_rc mp-a-quickcheck 0 scsipr a quickCheck -t mp
expect_rc mp-b-restore-takeover 0 scsipr b restore -t mp
[ "$(count_key "$(KEYA)")" = 0 ] && [ "$(count_key "$(KEYB)")" = 2 ]
check mp-takeover-keys $? "$(pr_keys "$OBS" | tr '\n' ' ')"
expect_rc mp-a-quickcheck-fenced 3 scsipr a quickCheck -t mp
dd if=/dev/zero of="$MA" bs=4096 count=1 oflag=direct 2>/dev/null
[ $? -ne 0 ]; check mp-a-write-refused $?
dd if=/dev/zero of="$MB" bs=4096 count=1 oflag=direct 2>/dev/null; check mp-b-write-works $?
expect_rc mp-a-remove 0 scsipr a remove -t mp

# ---- one path down, then back ----
path_down b 1
out=$(scsipr b quickCheck -t mp 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && echo "$out" | grep -q "does not answer"; check mp-path-down-warns $? "rc=$rc"
path_up b 1
expect_rc mp-path-up 0 scsipr b quickCheck -t mp

# ---- WWPN flip: node b's nexuses replaced by ones with a new initiator name ----
NEWB=$(node_flip b iqn.2026-01.test.lkh:node-b-flipped) || fatal "flip failed"
note "node b after the flip: $NEWB"
dd if=/dev/zero of="$MB" bs=4096 count=1 oflag=direct 2>/dev/null
[ $? -ne 0 ]; check mp-flip-new-nexus-refused $?
out=$(scsipr b quickCheck -t mp 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && [ "$(echo "$out" | grep -c "re-registered")" -ge 2 ]; check mp-flip-quickcheck-reregisters $? "rc=$rc"
dd if=/dev/zero of="$MB" bs=4096 count=1 oflag=direct 2>/dev/null; check mp-flip-write-works $?
expect_rc mp-flip-quickcheck-again 0 scsipr b quickCheck -t mp

# ---- All Paths Down: quickCheck fails within TIMEOUT, never hangs ----
apd_begin
t0=$(uptime_s)
out=$(timeout 60 sh -c 'LKHELPERS_CONF_DIR=/etc/lkhelpers/node-b lkh-scsipr quickCheck -t mp' 2>&1); rc=$?
t1=$(uptime_s)
echo "$out"
note "quickCheck during All Paths Down: rc=$rc after $(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }') s (TIMEOUT=20)"
[ $rc = 1 ]; check mp-apd-quickcheck-fails $? "rc=$rc (124 = hung until timeout(1))"
node_conf a mp DEVICE="$MA" ON_FENCED=event TIMEOUT=20
expect_rc mp-apd-remove-does-not-block 0 timeout 60 sh -c 'LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a lkh-scsipr remove -t mp'
apd_end
ok=1
i=0
while [ $i -lt 40 ]; do
    i=$((i + 1))
    scsipr b quickCheck -t mp >/tmp/qc.log 2>&1 && { ok=0; break; }
    scsipr b recover -t mp >/tmp/qc.log 2>&1 && { ok=0; break; }
    sleep 1
done
cat /tmp/qc.log
check mp-apd-back $ok "after $i tries"
# the flip left b's key on the two old nexuses too: remove must clear them all
OBS=$(node_dev b)   # node a's sessions may still be logging back in after the APD
wait_answers "$OBS"; check mp-observer-answers $? "$OBS"
[ "$(count_key "$(KEYB)")" -ge 3 ]; check mp-flip-stale-keys-present $? "$(pr_keys "$OBS" | tr '\n' ' ')"
expect_rc mp-b-remove-after-flip 0 scsipr b remove -t mp
[ "$(count_key "$(KEYB)")" = 0 ]; check mp-b-key-gone $? "$(pr_keys "$OBS" | tr '\n' ' ')"
expect_rc mp-b-remove-again 0 scsipr b remove -t mp

# ---- disks without persistent reservations ----
S=$(nopr_disk scsi) || fatal "no scsi-hd disk"
V=$(nopr_disk virtio) || fatal "no virtio disk"
out=$(lkh-scsipr doctor "$S" 2>&1); rc=$?; echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "does not implement SCSI-3 persistent reservations"; check nopr-doctor-scsi $? "rc=$rc"
node_conf a nopr DEVICE="$S"
out=$(scsipr a restore -t nopr 2>&1); rc=$?; echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "does not support SCSI-3 persistent reservations"; check nopr-restore-scsi $? "rc=$rc"
out=$(lkh-scsipr doctor "$V" 2>&1); rc=$?; echo "$out"
[ $rc = 2 ] && echo "$out" | grep -q "need a SCSI disk"; check nopr-doctor-virtio $? "rc=$rc"
node_conf a nopr DEVICE="$V"
expect_rc nopr-restore-virtio 2 scsipr a restore -t nopr

H=""
for _b in /sys/block/sd*; do
    [ "$(tr -d ' ' < "$_b/device/vendor" 2>/dev/null)" = Msft ] && H=/dev/${_b##*/}
done
out=$(lkh-scsipr doctor "$H" 2>&1); rc=$?; echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "SupportPersistentReservations : True" && echo "$out" | grep -q Get-VMHardDiskDrive
check nopr-doctor-hyperv-hint $? "rc=$rc disk=$H"

# ---- a "multipath" map over two different LUs is refused ----
C=$(node_login c) || fatal "login of node c failed"
out=$(lkh-scsipr doctor "$C" 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && echo "$out" | grep -q "registered and removed test key"; check doctor-proves-pr $? "rc=$rc"
pr_keys "$C" >/dev/null; ! pr_keys "$C" | grep -qi '^0x4c4bd0c0'; check doctor-left-no-key $? "$(pr_keys "$C" | tr '\n' ' ')"
sz=$(blockdev --getsz "$S")
DM_DISABLE_UDEV=1 dmsetup create bogus --uuid mpath-bogus --noudevsync \
    --table "0 $sz multipath 0 0 1 1 round-robin 0 2 1 $(_majmin "$C") 1000 $(_majmin "$S") 1000" || fatal "dmsetup bogus"
DM_DISABLE_UDEV=1 dmsetup mknodes bogus >/dev/null 2>&1
node_conf a bogus DEVICE=/dev/mapper/bogus
out=$(scsipr a restore -t bogus 2>&1); rc=$?; echo "$out"
[ $rc = 2 ] && echo "$out" | grep -q "different logical units"; check bad-different-lus $? "rc=$rc"
