# End-to-end failover demo with the project's kits (narrated by tests/src/bin/demo.rs through
# `say` lines). Every sentence that states a result is said only after the check behind it
# passed; a failed check shows as FAIL in the narration and fails the verdict.

have_bin lkh-scsipr && have_bin lkh-nas || fatal "lkh-scsipr and lkh-nas must be in the guest (did they build?)"

# kit NODE CMD...: runs a kit command as cluster node NODE, shows the command and narrates its
# log lines; returns its exit status
kit() {
    local _node=$1 _out _rc; shift
    say "  \$ [node $_node] $*"
    _out=$(on_node "$_node" "$@" 2>&1); _rc=$?
    echo "$_out" | while IFS= read -r _l; do [ -n "$_l" ] && say "      | $_l"; done
    return $_rc
}
# told NAME RC DETAIL SENTENCE: check NAME (passes when RC is 0); SENTENCE is said only if it did
told() { check "$1" "$2" "$3"; [ "$2" = 0 ] && say "$4"; }
# nfs_mounted MOUNTPOINT: whether an NFS file system is mounted there
nfs_mounted() { awk -v m="$1" '$2 == m && $3 ~ /^nfs/ { found = 1 } END { exit !found }' /proc/mounts; }

say "== Setting up: two cluster nodes, A and B, sharing one SCSI disk and one NFS export =="
shared_disk_setup a b >/dev/null || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
IQN_A=$(node_iqn a); IQN_B=$(node_iqn b)
say "Shared disk: one LIO logical unit (serial lkh-shared0) over iSCSI."
say "  node A sees it as $A (initiator $IQN_A)"
say "  node B sees it as $B (initiator $IQN_B)"
nfs_net_up || fatal "guest network for NFS failed"
say "NFS server: nfs-ganesha on the host, exporting /export to the nodes as 10.0.2.2:/export (NFSv3)."
say "Each node runs the kits: lkh-scsipr for the disk reservation, lkh-nas for the NFS mount."
node_conf a demo "DEVICE=$A"
node_conf b demo "DEVICE=$B"
node_conf a share "SERVER=10.0.2.2" "EXPORT=/export" "MOUNTPOINT=/mnt/a-share" "VERSION=3"
node_conf b share "SERVER=10.0.2.2" "EXPORT=/export" "MOUNTPOINT=/mnt/b-share" "VERSION=3"

say ""
say "== 1. Node A brings the resources in service =="
kit a lkh-scsipr restore -t demo; rc=$?
told a-restore-disk $rc "rc=$rc" "Node A restored the disk resource (exit $rc)."
holder=$(pr_holder "$B")
[ "$holder" = "$IQN_A" ]; told a-holds-reservation $? "holder $holder" "The disk reports node A as the reservation holder."
kit a lkh-nas restore -t share; rc=$?
check a-restore-nfs $rc "rc=$rc"
nfs_mounted /mnt/a-share; told a-nfs-mounted $? "" "Node A mounted the NFS export on /mnt/a-share (exit $rc)."

say ""
say "== 2. Node A writes application data =="
printf 'ORDERS-2026 committed by node A' | dd of="$A" bs=512 seek=2048 conv=notrunc oflag=direct 2>/dev/null
told a-writes-disk $? "" "Node A wrote a record to the shared disk."
echo "invoice 42 written by node A" > /mnt/a-share/invoice-42.txt && sync
told a-writes-nfs $? "" "Node A wrote invoice-42.txt to the NFS share."

say ""
say "== 3. Node A fails =="
say "The worst case: node A stops answering LifeKeeper's heartbeats but keeps running, so"
say "without fencing it could go on writing to the shared disk while node B takes over."

say ""
say "== 4. Node B takes over =="
kit b lkh-scsipr restore -t demo; rc=$?
told b-restore-disk $rc "rc=$rc" "Node B restored the disk resource (exit $rc)."
holder=$(pr_holder "$B")
[ "$holder" = "$IQN_B" ]; told b-holds-reservation $? "holder $holder" "The disk reports node B as the reservation holder."
keys=$(pr_keys "$B" | xargs)
key_a=$(cat /etc/lkhelpers/node-a/node.key 2>/dev/null)
[ -n "$key_a" ] && ! pr_keys "$B" | grep -qix "$key_a"
told a-key-preempted $? "A's key ${key_a:-unknown}, keys now: $keys" "Node B preempted node A: A's key ${key_a} is no longer registered (keys now: $keys)."
kit b lkh-nas restore -t share; rc=$?
check b-restore-nfs $rc "rc=$rc"
nfs_mounted /mnt/b-share; told b-nfs-mounted $? "" "Node B mounted the NFS export on /mnt/b-share (exit $rc)."

say ""
say "== 5. Node A is fenced =="
kit a lkh-scsipr quickCheck -t demo; rc=$?
[ $rc = 3 ]; told a-quickcheck-fenced $? "rc=$rc" "Node A's disk quickCheck exits $rc (3 = fenced: another node holds the reservation)."
out=$(sg_dd if=/dev/zero of="$A" bs=512 count=1 seek=2048 oflag=direct blk_sgio=1 2>&1)
echo "$out"
echo "$out" | grep -qi 'reservation conflict'
told a-write-refused $? "" "Node A tries to overwrite the record: the disk answers RESERVATION CONFLICT."
dd if=/dev/zero of="$A" bs=512 count=1 seek=2048 oflag=direct 2>/dev/null; [ $? -ne 0 ]
told a-dd-write-fails $? "" "A plain write from node A fails as well."

say ""
say "== 6. Node B sees node A's data intact =="
got=$(dd if="$B" bs=512 skip=2048 count=1 iflag=direct 2>/dev/null | head -c 31)
[ "$got" = "ORDERS-2026 committed by node A" ]; told b-reads-a-data $? "read '$got'" "Node B reads the record: '$got'"
got=$(cat /mnt/b-share/invoice-42.txt 2>/dev/null)
[ "$got" = "invoice 42 written by node A" ]; told b-reads-a-nfs-file $? "read '$got'" "Node B reads invoice-42.txt from the NFS share: '$got'"
