# Test-bed self-test: disks without PR, two paths per node with dm-multipath, a WWPN flip,
# All Paths Down and recovery.

# --- disks without persistent reservations
V=$(nopr_disk virtio); check nopr-virtio-found $? "$V"
sg_persist -n --in --read-keys "$V" >/dev/null 2>&1; [ $? -ne 0 ]; check nopr-virtio-no-pr $?
S=$(nopr_disk scsi); check nopr-scsi-found $? "$S"
out=$(sg_persist -n --in --read-keys "$S" 2>&1); rc=$?; echo "$out"
[ $rc -ne 0 ]; check nopr-scsi-pr-rejected $? "rc=$rc"

# --- shared LU, node a with two paths
shared_disk_setup a b; check setup $?
M=$(mpath_setup a); check mpath-setup $? "$M"
set -- $(node_paths a); P0=$1 P1=$2
note "node a paths: $P0 $P1 -> $M; node b: $(node_dev b)"
[ -n "$P0" ] && [ -n "$P1" ] && [ "$P0" != "$P1" ]; check mpath-two-paths $?
mpath_status a
printf 'via-multipath' | dd of="$M" bs=512 seek=10 conv=notrunc oflag=direct 2>/dev/null; check mpath-write $?
got=$(dd if="$(node_dev b)" bs=512 skip=10 count=1 iflag=direct 2>/dev/null | head -c 13)
[ "$got" = via-multipath ]; check mpath-data-seen-by-b $? "got '$got'"
expect_rc mpath-pr-read-keys 0 sg_persist -n --in --read-keys "$M"

path_down a 0; check path0-down $?
dd if="$M" of=/dev/null bs=4096 count=4 iflag=direct 2>/dev/null; check mpath-io-with-one-path $?
mpath_status a
mpath_status a | grep -q ' F '; check mpath-path-failed $?
path_up a 0; check path0-up $?
mpath_status a | grep -q ' F '; [ $? -ne 0 ]; check mpath-path-reinstated $?

# --- WWPN flip of node b: new nexus, old registration gone with the old name
B=$(node_dev b)
expect_rc b-register-old 0 sg_persist -n --out --register --param-sark=0xb1 "$B"
old=$(node_iqn b)
NB=$(node_flip b iqn.2026-01.test.lkh:node-b-flipped); check flip $? "$NB"
[ "$(node_iqn b)" = iqn.2026-01.test.lkh:node-b-flipped ] && [ "$(node_iqn b)" != "$old" ]; check flip-new-iqn $?
grep -l node-b-flipped /sys/class/iscsi_session/session*/initiatorname >/dev/null; check flip-session-uses-new-iqn $?
sg_turs "$NB" >/dev/null 2>&1
out=$(sg_persist -n --out --register --param-rk=0xb1 --param-sark=0xb2 "$NB" 2>&1); rc=$?; echo "$out"
[ $rc = 24 ]; check flip-old-key-not-registered-on-new-nexus $? "rc=$rc"
expect_rc flip-reregister 0 sg_persist -n --out --register-ignore --param-sark=0xb2 "$NB"
sg_persist -n --in --read-full-status "$NB" | grep -i -A3 'key=0xb'

# --- flip of the multipath node a: dm table reloaded with the new paths
NA=$(node_flip a iqn.2026-01.test.lkh:node-a-flipped); check flip-mpath $? "$NA"
dd if="$M" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; check flip-mpath-io $?

# --- All Paths Down
apd_begin; check apd-begin $?
t0=$(uptime_s)
timeout -s KILL 30 dd if="$NB" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; rc=$?
note "read during APD: rc=$rc after $(awk "BEGIN{print $(uptime_s)-$t0}") s"
[ $rc -ne 0 ] && [ $rc -ne 137 ]; check apd-io-fails $? "rc=$rc"
timeout -s KILL 30 dd if="$M" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 137 ]; check apd-mpath-io-fails $? "rc=$rc"
apd_end; check apd-end $?
retry 100 dd if="$NB" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; check apd-recovered $?
