# End-to-end failover demo with the project's kits (narrated by tests/src/bin/demo.rs through
# `say` lines), driven the way LifeKeeper drives them: every kit call is gen/app's copy of a
# wrapper, run with `-t TAG -i ID` from / with a minimal environment (lib/lk.sh). Every
# sentence that states a result is said only after the check behind it passed; a failed
# check shows as FAIL in the narration and fails the verdict.

have_bin lkh-scsipr && have_bin lkh-nas && have_bin lkh-ip || fatal "lkh-scsipr, lkh-nas and lkh-ip must be in the guest (did they build?)"

# lk NODE ACTION TAG: LifeKeeper on NODE runs gen/app's ACTION script of TAG; shows the call
# and narrates its log lines; returns its exit status
lk() {
    local _out _rc
    say "  LifeKeeper on node $(echo "$1" | tr a-z A-Z): $(lk_path "$1" "$2" "$3") -t $3 -i $3"
    _out=$(lk_call "$@" 2>&1); _rc=$?
    echo "$_out" | while IFS= read -r _l; do [ -n "$_l" ] && say "      | $_l"; done
    say "      -> exit $_rc"
    return $_rc
}
# told NAME RC DETAIL SENTENCE: check NAME (passes when RC is 0); SENTENCE is said only if it did
told() { check "$1" "$2" "$3"; [ "$2" = 0 ] && say "$4"; }
# nfs_mounted MOUNTPOINT: whether an NFS file system is mounted there
nfs_mounted() { awk -v m="$1" '$2 == m && $3 ~ /^nfs/ { found = 1 } END { exit !found }' /proc/mounts; }
vip_up() { ip -o addr show dev eth0 | grep -q " $VIP/"; }
VIP=10.0.2.50

say "== Setting up: two cluster nodes, A and B, sharing one SCSI disk and one NFS export =="
shared_disk_setup a b >/dev/null || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
IQN_A=$(node_iqn a); IQN_B=$(node_iqn b)
say "Shared disk: one LIO logical unit (serial lkh-shared0) over iSCSI."
say "  node A sees it as $A (initiator $IQN_A)"
say "  node B sees it as $B (initiator $IQN_B)"
nfs_net_up || fatal "guest network for NFS failed"
say "NFS server: nfs-ganesha on the host, exporting /export to the nodes as 10.0.2.2:/export (NFSv3)."
node_conf a disk "DEVICE=$A" TIMEOUT=10 ON_FENCED=event
node_conf b disk "DEVICE=$B" TIMEOUT=10
node_conf a share "SERVER=10.0.2.2" "EXPORT=/export" "MOUNTPOINT=/mnt/a-share" "VERSION=3"
node_conf b share "SERVER=10.0.2.2" "EXPORT=/export" "MOUNTPOINT=/mnt/b-share" "VERSION=3"
node_conf a vip "ADDRESS=$VIP/24" INTERFACE=eth0
node_conf b vip "ADDRESS=$VIP/24" INTERFACE=eth0

say ""
say "== LifeKeeper's side: three Generic Application resources on each node =="
for k in scsipr nas ip; do lk_wrappers $k || fatal "lkh-$k genapp failed"; done
for n in a b; do
    lk_create $n scsipr disk && lk_create $n nas share && lk_create $n ip vip || fatal "gen/app layout on node $n"
done
say "The kits' gen/app wrappers ($GENAPP_DIR/<kit>/{restore,remove,quickCheck,recover}, written by"
say "'lkh-<kit> genapp') were given to the wizard, which copied them into each node's LifeKeeper tree, e.g."
say "  $(lk_path a restore share)  (exec's $(sed -n 3p "$GENAPP_DIR/nas/restore" | cut -d' ' -f2))"
say "The hierarchy, top to bottom: vip (lkh-ip, $VIP) -> share (lkh-nas) -> disk (lkh-scsipr)."
say "LifeKeeper brings it in service bottom-up and takes it out of service top-down."

say ""
say "== 1. Node A brings the hierarchy in service (bottom-up) =="
lk a restore disk; rc=$?
told a-restore-disk $rc "rc=$rc" "Node A restored the disk resource."
holder=$(pr_holder "$B")
[ "$holder" = "$IQN_A" ]; told a-holds-reservation $? "holder $holder" "The disk reports node A as the reservation holder."
lk a restore share; rc=$?
check a-restore-nfs $rc "rc=$rc"
nfs_mounted /mnt/a-share; told a-nfs-mounted $? "" "Node A mounted the NFS export on /mnt/a-share."
lk a restore vip; rc=$?
check a-restore-ip $rc "rc=$rc"
vip_up; told a-ip-up $? "$(ip -o addr show dev eth0)" "Node A holds the virtual IP $VIP on eth0."
rc=0
for t in disk share vip; do lk a quickCheck $t || rc=1; done
told a-quickcheck-healthy $rc "" "LifeKeeper's quickChecks on node A all pass (exit 0)."

say ""
say "== 2. Node A writes application data =="
printf 'ORDERS-2026 committed by node A' | dd of="$A" bs=512 seek=2048 conv=notrunc oflag=direct 2>/dev/null
told a-writes-disk $? "" "Node A wrote a record to the shared disk."
echo "invoice 42 written by node A" > /mnt/a-share/invoice-42.txt && sync
told a-writes-nfs $? "" "Node A wrote invoice-42.txt to the NFS share."

say ""
say "== 3. The cluster network is cut: node B stops hearing node A, which is alive and serving =="
say "Node A's lkh-scsipr watch (the packaged daemon, lkh-scsipr-watch.service) defends the disk A holds."
LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a \
    lkh-scsipr watch > /tmp/watch-a.log 2>&1 &
WATCH_A=$!
sleep 1
say "LifeKeeper on node B, no longer hearing A, brings the disk in service on B."
lk b restore disk; rc=$?
[ $rc = 3 ]; told partition-b-restore-refused $? "rc=$rc" "Node B's restore challenged the holder, node A defended its disk (it removed B's registration), and B's restore exits 3: B does not take the disk from a live owner."
holder=$(pr_holder "$B")
[ "$holder" = "$IQN_A" ]; told partition-a-keeps-disk $? "holder $holder" "The disk still reports node A as the reservation holder."
printf 'ORDERS-2026 committed by node A' | dd of="$A" bs=512 seek=2048 conv=notrunc oflag=direct 2>/dev/null
told partition-a-still-writes $? "" "Node A's writes still work: its service never stopped."

say ""
say "== 4. A fault on node A: its path to the shared disk dies =="
say "Node A's SCSI path goes offline (a failed HBA or virtual FC port); node B's path is fine."
path_down a 0
lk a quickCheck disk; rc=$?
[ $rc != 0 ]; told a-quickcheck-fails $? "rc=$rc" "Node A's disk quickCheck fails (exit $rc): LifeKeeper runs the local recovery script."
lk a recover disk; rc=$?
[ $rc != 0 ]; told a-recover-fails $? "rc=$rc" "Local recovery cannot bring the path back (exit $rc): LifeKeeper fails the hierarchy over to node B."

say ""
say "== 5. LifeKeeper takes the hierarchy out of service on node A (top-down) =="
lk a remove vip; rc=$?
vip_up; up=$?
[ $rc = 0 ] && [ $up != 0 ]; told a-remove-ip $? "rc=$rc" "Node A released the virtual IP."
lk a remove share; rc=$?
nfs_mounted /mnt/a-share; mounted=$?
[ $rc = 0 ] && [ $mounted != 0 ]; told a-remove-nfs $? "rc=$rc" "Node A unmounted the NFS export."
lk a remove disk; rc=$?
told a-remove-disk $rc "rc=$rc" "The disk's remove succeeds without releasing anything: node A cannot reach the disk (nor write to it), and node B's restore will preempt A's registration once nobody defends it."

say ""
say "== 6. Node B brings the hierarchy in service (bottom-up) =="
lk b restore disk; rc=$?
told b-restore-disk $rc "rc=$rc" "Node B restored the disk resource."
holder=$(pr_holder "$B")
[ "$holder" = "$IQN_B" ]; told b-holds-reservation $? "holder $holder" "The disk reports node B as the reservation holder."
keys=$(pr_keys "$B" | xargs)
key_a=$(cat /etc/lkhelpers/node-a/node.key 2>/dev/null)
[ -n "$key_a" ] && ! pr_keys "$B" | grep -qix "$key_a"
told a-key-preempted $? "A's key ${key_a:-unknown}, keys now: $keys" "Node B preempted node A: A's key ${key_a} is no longer registered (keys now: $keys)."
lk b restore share; rc=$?
check b-restore-nfs $rc "rc=$rc"
nfs_mounted /mnt/b-share; told b-nfs-mounted $? "" "Node B mounted the NFS export on /mnt/b-share."
lk b restore vip; rc=$?
check b-restore-ip $rc "rc=$rc"
vip_up; told b-ip-up $? "" "Node B holds the virtual IP $VIP."

say ""
say "== 7. Node A's path comes back: node A is fenced =="
path_up a 0
lk a quickCheck disk; rc=$?
[ $rc = 3 ]; told a-quickcheck-fenced $? "rc=$rc" "Checked on node A now, the disk's quickCheck exits $rc (3 = fenced: another node holds the reservation)."
out=$(sg_dd if=/dev/zero of="$A" bs=512 count=1 seek=2048 oflag=direct blk_sgio=1 2>&1)
echo "$out"
echo "$out" | grep -qi 'reservation conflict'
told a-write-refused $? "" "Node A tries to overwrite the record: the disk answers RESERVATION CONFLICT."
dd if=/dev/zero of="$A" bs=512 count=1 seek=2048 oflag=direct 2>/dev/null; [ $? -ne 0 ]
told a-dd-write-fails $? "" "A plain write from node A fails as well."

say ""
say "== 8. Node B sees node A's data intact =="
got=$(dd if="$B" bs=512 skip=2048 count=1 iflag=direct 2>/dev/null | head -c 31)
[ "$got" = "ORDERS-2026 committed by node A" ]; told b-reads-a-data $? "read '$got'" "Node B reads the record: '$got'"
got=$(cat /mnt/b-share/invoice-42.txt 2>/dev/null)
[ "$got" = "invoice 42 written by node A" ]; told b-reads-a-nfs-file $? "read '$got'" "Node B reads invoice-42.txt from the NFS share: '$got'"
