# End-to-end failover demo (narrated by tests/src/bin/demo.rs through `say` lines).
# Tools: lkh-scsipr / lkh-nas when they are built and offer the actions, else sg_persist /
# busybox mount, and every step says which one it used. lkh.demo_tool=sg_persist|lkh-scsipr
# and lkh.demo_nas=mount|lkh-nas on the kernel command line force a choice.

kit_usable() { have_bin "$1" && "$1" --help 2>&1 | grep -q restore; }
PR_TOOL=$(cmdline_arg lkh.demo_tool) || { if kit_usable lkh-scsipr; then PR_TOOL=lkh-scsipr; else PR_TOOL=sg_persist; fi; }
NAS_TOOL=$(cmdline_arg lkh.demo_nas) || { if kit_usable lkh-nas; then NAS_TOOL=lkh-nas; else NAS_TOOL=mount; fi; }
KEY_A=0xa1 KEY_B=0xb1

say "== Setting up: two cluster nodes, A and B, sharing one SCSI disk and one NFS export =="
shared_disk_setup a b >/dev/null || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
IQN_A=$(node_iqn a); IQN_B=$(node_iqn b)
say "Shared disk: one LIO logical unit (serial lkh-shared0) over iSCSI."
say "  node A sees it as $A (initiator $IQN_A)"
say "  node B sees it as $B (initiator $IQN_B)"
nfs_net_up || fatal "guest network for NFS failed"
say "NFS server: nfs-ganesha at 10.0.2.2:/export (NFSv3)"
say "Reservation steps use: $PR_TOOL.   NFS steps use: $NAS_TOOL."
[ "$PR_TOOL" = lkh-scsipr ] || say "  (lkh-scsipr is not usable in this build yet, so its steps are shown with sg_persist)"
[ "$NAS_TOOL" = lkh-nas ] || say "  (lkh-nas is not usable in this build yet, so the mount is done with busybox mount)"
node_conf a demo "DEVICE=$A"
node_conf b demo "DEVICE=$B"
node_conf a share "SERVER=10.0.2.2" "EXPORT=/export" "MOUNTPOINT=/mnt/a-share" "VERSION=3"
node_conf b share "SERVER=10.0.2.2" "EXPORT=/export" "MOUNTPOINT=/mnt/b-share" "VERSION=3"

# --- the operations, by tool
# shown CMD...: runs CMD and narrates its output (the kits' log lines), returns its status
shown() {
    local _out _rc
    _out=$("$@" 2>&1); _rc=$?
    echo "$_out" | while IFS= read -r _l; do [ -n "$_l" ] && say "      | $_l"; done
    return $_rc
}
pr_restore() {  # pr_restore NODE DEV KEY OTHER_KEY
    if [ "$PR_TOOL" = lkh-scsipr ]; then
        say "  $ [node $1] lkh-scsipr restore -t demo"
        shown on_node "$1" lkh-scsipr restore -t demo
    else
        say "  $ [node $1] sg_persist register $3 + reserve/preempt-abort type 5 on $2"
        sg_turs "$2" >/dev/null 2>&1
        sg_persist -n --out --register-ignore --param-sark="$3" "$2" || return 1
        if [ "$(pr_holder "$2")" = none ]; then
            sg_persist -n --out --reserve --param-rk="$3" --prout-type=5 "$2"
        else
            sg_persist -n --out --preempt-abort --param-rk="$3" --param-sark="$4" --prout-type=5 "$2"
        fi
    fi
}
pr_quickcheck() {  # pr_quickcheck NODE DEV KEY -> 0 ok, 3 fenced
    if [ "$PR_TOOL" = lkh-scsipr ]; then
        say "  $ [node $1] lkh-scsipr quickCheck -t demo"
        shown on_node "$1" lkh-scsipr quickCheck -t demo
    else
        say "  $ [node $1] sg_persist --read-keys on $2: is $3 still registered?"
        sg_turs "$2" >/dev/null 2>&1
        if pr_keys "$2" | grep -qx "$3"; then return 0; else return 3; fi
    fi
}
nas_restore() {  # nas_restore NODE MOUNTPOINT
    if [ "$NAS_TOOL" = lkh-nas ]; then
        say "  $ [node $1] lkh-nas restore -t share"
        shown on_node "$1" lkh-nas restore -t share
    else
        say "  \$ [node $1] mount -t nfs -o vers=3,hard,... 10.0.2.2:/export $2"
        nfs_mount 3 "$2"
    fi
}

say ""
say "== 1. Node A brings the resources in service =="
pr_restore a "$A" $KEY_A $KEY_B; rc=$?
check a-restore-disk $rc "rc=$rc"
[ "$(pr_holder "$B")" = "$IQN_A" ]; check a-holds-reservation $? "holder $(pr_holder "$B")"
say "Node A restored the disk resource (exit $rc); the reservation holder is now node A."
nas_restore a /mnt/a-share; rc=$?
check a-restore-nfs $rc "rc=$rc"
say "Node A mounted the NFS export on /mnt/a-share (exit $rc)."

say ""
say "== 2. Node A writes application data =="
printf 'ORDERS-2026 committed by node A' | dd of="$A" bs=512 seek=2048 conv=notrunc oflag=direct 2>/dev/null
check a-writes-disk $?
echo "invoice 42 written by node A" > /mnt/a-share/invoice-42.txt && sync
check a-writes-nfs $?
say "Node A wrote a record to the shared disk and invoice-42.txt to the NFS share."

say ""
say "== 3. Node A fails =="
say "Node A stops answering LifeKeeper's heartbeats, but it is still running: without"
say "fencing it could go on writing to the shared disk while node B takes over."

say ""
say "== 4. Node B takes over =="
pr_restore b "$B" $KEY_B $KEY_A; rc=$?
check b-restore-disk $rc "rc=$rc"
[ "$(pr_holder "$B")" = "$IQN_B" ]; check b-holds-reservation $? "holder $(pr_holder "$B")"
say "Node B restored the disk resource (exit $rc): it preempted node A's reservation."
say "  registered keys now: $(pr_keys "$B" | tr '\n' ' ')"
nas_restore b /mnt/b-share; rc=$?
check b-restore-nfs $rc "rc=$rc"
say "Node B mounted the NFS export on /mnt/b-share (exit $rc)."

say ""
say "== 5. Node A is fenced =="
pr_quickcheck a "$A" $KEY_A; rc=$?
[ $rc = 3 ]; check a-quickcheck-fenced $? "rc=$rc"
say "Node A's disk quickCheck exits $rc (3 = fenced: its registration is gone)."
out=$(sg_dd if=/dev/zero of="$A" bs=512 count=1 seek=2048 oflag=direct blk_sgio=1 2>&1)
echo "$out"
echo "$out" | grep -qi 'reservation conflict'; check a-write-refused $?
dd if=/dev/zero of="$A" bs=512 count=1 seek=2048 oflag=direct 2>/dev/null; [ $? -ne 0 ]; check a-dd-write-fails $?
say "Node A tries to overwrite the record: the disk answers RESERVATION CONFLICT and the write fails."

say ""
say "== 6. Node B sees node A's data intact =="
got=$(dd if="$B" bs=512 skip=2048 count=1 iflag=direct 2>/dev/null | head -c 31)
[ "$got" = "ORDERS-2026 committed by node A" ]; check b-reads-a-data $? "read '$got'"
say "Node B reads the record: '$got'"
got=$(cat /mnt/b-share/invoice-42.txt 2>/dev/null)
[ "$got" = "invoice 42 written by node A" ]; check b-reads-a-nfs-file $? "read '$got'"
say "Node B reads invoice-42.txt from the NFS share: '$got'"
