# fence_lkhscsipr (the Pacemaker fence agent of lkh-scsipr) on one LU seen by two nodes (one
# iSCSI I_T nexus each): unfencing (on) through stdin as the fencer passes it, status, monitor,
# list, validate-all; typos in the key map and unknown plugs refused with registrations
# unchanged; a node that is not registered cannot fence; off of A from B (delay honoured, A's
# writes refused, A's quickCheck fenced, status 2); A, fenced and not rebooted, cannot fence B
# back; on brings A back; monitor fails, bounded, when the disk is gone.
# No Pacemaker in the guest: the agent is called as the fencer calls it.

shared_disk_setup a b || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
ln -s lkh-scsipr /opt/lkh/bin/fence_lkhscsipr || fatal "cannot link fence_lkhscsipr"
fence() { local _node=$1; shift; on_node "$_node" fence_lkhscsipr "$@"; }
# the state a refusal must leave alone: keys, holder, and the PR generation (which every
# successful REGISTER or PREEMPT increments, so it shows that nothing was sent)
gen() { _prin "$B" --read-keys | sed -n 's/.*generation=\(0x[0-9a-fA-F]*\).*/\1/p'; }
snapshot() { pr_keys "$B" >/dev/null; echo "keys=$(pr_keys "$B" | sort | xargs) holder=$(pr_holder "$B")"; }
short() { echo "$1" | sed 's/^0x0*/0x/'; }
has_key() { pr_keys "$B" >/dev/null; pr_keys "$B" | grep -qix "$(short "$1")"; }
now() { awk '{ print $1 }' /proc/uptime; }

# ---- each node's key, the map ----
KA=$(on_node a lkh-scsipr node-key); check key-a $? "$KA"
KB=$(on_node b lkh-scsipr node-key); check key-b $? "$KB"
[ "$(on_node a lkh-scsipr node-key)" = "$KA" ] && [ "$KA" != "$KB" ]; check node-key-stable $? "$KA $KB"
KEYS="node-a:$KA,node-b:$KB"
note "keys=$KEYS"

# ---- metadata, list, validate-all ----
fence a -o metadata > /tmp/meta.xml; check metadata $? "$(head -c 200 /tmp/meta.xml)"
grep -q '<action name="on" on_target="1" automatic="1"/>' /tmp/meta.xml && ! grep -q '"reboot"' /tmp/meta.xml
check metadata-actions $?
out=$(fence a -o list --keys "$KEYS"); echo "$out"
[ "$(echo "$out" | cut -d, -f1 | xargs)" = "node-a node-b" ]; check list $? "$out"
expect_rc validate-all 0 fence b -o validate-all --devices "$B" --keys "$KEYS"
expect_rc validate-bad-device 1 fence b -o validate-all --devices /dev/nonexistent --keys "$KEYS"

# ---- on (unfencing), as the fencer runs it: key=value lines on stdin, on the node itself ----
out=$(printf '# from the fencer\naction=on\nnodename=node-a\nport=node-a\ndevices=%s\nkeys=%s\npcmk_host_list=node-a node-b\n' "$A" "$KEYS" | fence a 2>&1); rc=$?
echo "$out"
[ $rc = 0 ]; check a-on-stdin $? "rc=$rc"
has_key "$KA"; check a-registered $? "$(pr_keys "$B" | xargs)"
[ "$(pr_holder "$B")" = "$(node_iqn a)" ]; check a-reserved $? "holder $(pr_holder "$B")"
# on for another node's plug is refused: on runs on the node it unfences
out=$(fence a -o on -n node-b --devices "$A" --keys "$KEYS" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "run it on node-b"; check on-wrong-node-refused $? "rc=$rc"
expect_rc b-on 0 fence b -o on -n node-b --devices "$B" --keys "$KEYS"
has_key "$KB"; check b-registered $?
expect_rc a-on-idempotent 0 fence a -o on -n node-a --devices "$A" --keys "$KEYS"
expect_rc a-status-on 0 fence b -o status -n node-a --devices "$B" --keys "$KEYS"
expect_rc b-status-on 0 fence a -o status -n node-b --devices "$A" --keys "$KEYS"
expect_rc monitor 0 fence b -o monitor --devices "$B" --keys "$KEYS"
sg_dd if=/dev/zero of="$A" bs=512 count=1 seek=3000 oflag=direct blk_sgio=1 >/dev/null 2>&1; check a-write-works $?

# ---- typos fence nobody: refused with a clear message, registrations unchanged ----
before="$(snapshot) gen=$(gen)"; note "before typos: $before"
case "$before" in *gen=0x*) pass gen-readable ;; *) fail gen-readable "$before" ;; esac
# A's key mistyped (last digit): A's real key is on the disk but in no entry
bad=$(echo "$KA" | sed 's/.$//')f; [ "$bad" = "$KA" ] && bad=$(echo "$KA" | sed 's/.$//')e
TYPO="node-a:$bad,node-b:$KB"
out=$(fence b -o off -n node-a --devices "$B" --keys "$TYPO" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "registered but in no entry of keys=" && echo "$out" | grep -qi "$(short "$KA")"
check typo-off-refused $? "rc=$rc"
out=$(fence b -o status -n node-a --devices "$B" --keys "$TYPO" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ]; check typo-status-not-off $? "rc=$rc (2 would claim node-a is off)"
expect_rc typo-monitor-fails 1 fence b -o monitor --devices "$B" --keys "$TYPO"
out=$(fence b -o off -n node-c --devices "$B" --keys "$KEYS" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q 'plug "node-c" is not in keys= (nodes: node-a, node-b)'; check unknown-plug-refused $? "rc=$rc"
out=$(fence b -o off -n node-a --devices "$B" --keys "node-a:$KB,node-b:$KB" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "have the same key"; check duplicate-key-refused $? "rc=$rc"
out=$(fence b -o off -n node-b --devices "$B" --keys "$KEYS" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "never fences itself"; check self-fence-refused $? "rc=$rc"
out=$(fence b -o off -n node-a --devices "$B" --keys "node-a:$KA,node-b:0x4c4b00000000beef" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "this node's key .* is not in keys="; check off-needs-own-key-in-map $? "rc=$rc"
out=$(fence b -o reboot -n node-a --devices "$B" --keys "$KEYS" 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "reboot is not supported"; check reboot-refused $? "rc=$rc"
out=$(fence b -o off -n node-a --devcies "$B" --keys "$KEYS" 2>&1); rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "unknown option --devcies"; check unknown-option-refused $? "rc=$rc"
after="$(snapshot) gen=$(gen)"; note "after typos: $after"
[ "$after" = "$before" ]; check typos-changed-nothing $? "before: $before; after: $after"
has_key "$KA"; check a-still-registered $?

# ---- only a registered node can fence: B unregistered (as if fenced) is refused ----
sg_persist -n --out --register --param-rk="$KB" --param-sark=0 "$B" >/dev/null 2>&1
! has_key "$KB"; check b-unregistered-before-off $? "$(pr_keys "$B" | xargs)"
before="$(snapshot) gen=$(gen)"
out=$(fence b -o off -n node-a --devices "$B" --keys "$KEYS" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "has been fenced itself"; check unregistered-off-refused $? "rc=$rc"
[ "$(snapshot) gen=$(gen)" = "$before" ]; check unregistered-off-changed-nothing $? "$before -> $(snapshot) gen=$(gen)"
expect_rc b-on-again 0 fence b -o on -n node-b --devices "$B" --keys "$KEYS"

# ---- off: B fences A (with --delay) ----
t0=$(now)
expect_rc b-off-a 0 fence b -o off -n node-a --devices "$B" --keys "$KEYS" --delay 2
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 2) }'; check delay-honoured $? "took $t0 -> $t1"
! has_key "$KA"; check a-key-gone $? "$(pr_keys "$B" | xargs)"
has_key "$KB"; check b-key-kept $?
[ "$(pr_holder "$B")" = "$(node_iqn b)" ]; check b-holds $? "holder $(pr_holder "$B")"
sg_turs "$A" >/dev/null 2>&1; sg_turs "$A" >/dev/null 2>&1
out=$(sg_dd if=/dev/zero of="$A" bs=512 count=1 seek=3000 oflag=direct blk_sgio=1 2>&1)
echo "$out"
echo "$out" | grep -qi 'reservation conflict'; check a-write-refused $?
sg_dd if=/dev/zero of="$B" bs=512 count=1 seek=3001 oflag=direct blk_sgio=1 >/dev/null 2>&1; check b-write-works $?
node_conf a disk DEVICE="$A" TIMEOUT=15
expect_rc a-quickcheck-fenced 3 on_node a lkh-scsipr quickCheck -t disk
out=$(fence b -o status -n node-a --devices "$B" --keys "$KEYS"); rc=$?
[ $rc = 2 ] && [ "$out" = "Status: OFF" ]; check a-status-off $? "rc=$rc out=$out"
expect_rc b-status-still-on 0 fence a -o status -n node-b --devices "$A" --keys "$KEYS"
before=$(snapshot)
expect_rc b-off-a-again 0 fence b -o off -n node-a --devices "$B" --keys "$KEYS"
[ "$(snapshot)" = "$before" ]; check off-again-changed-nothing $? "$before -> $(snapshot)"

# ---- A, fenced but not rebooted (fabric fencing), fences B back, as both sides of a split
# do: its key is gone from the LU, so its off fails and changes nothing; B keeps the disk ----
before="$(snapshot) gen=$(gen)"
out=$(fence a -o off -n node-b --devices "$A" --keys "$KEYS" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "has been fenced itself"; check fenced-a-off-b-refused $? "rc=$rc"
[ "$(snapshot) gen=$(gen)" = "$before" ]; check fenced-a-off-changed-nothing $? "$before -> $(snapshot) gen=$(gen)"
sg_dd if=/dev/zero of="$B" bs=512 count=1 seek=3001 oflag=direct blk_sgio=1 >/dev/null 2>&1; check b-write-works-after-a-off $?

# ---- on: A comes back ----
expect_rc a-on-back 0 fence a -o on -n node-a --devices "$A" --keys "$KEYS"
has_key "$KA"; check a-registered-again $?
expect_rc a-status-on-again 0 fence b -o status -n node-a --devices "$B" --keys "$KEYS"
sg_dd if=/dev/zero of="$A" bs=512 count=1 seek=3002 oflag=direct blk_sgio=1 >/dev/null 2>&1; check a-write-works-again $?

# ---- monitor when the disk is gone: a failure, bounded ----
path_down a 0
t0=$(now)
out=$(fence a -o monitor --devices "$A" --keys "$KEYS" 2>&1); rc=$?
t1=$(now)
echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "$A"; check monitor-path-down-fails $? "rc=$rc, $t0 -> $t1"
path_up a 0
expect_rc monitor-path-up 0 fence a -o monitor --devices "$A" --keys "$KEYS"
# All Paths Down: commands queue in the initiator; power_timeout still ends the action
apd_begin
sleep 1
t0=$(now)
out=$(fence b -o monitor --devices "$B" --keys "$KEYS" --power-timeout 3 2>&1); rc=$?
t1=$(now)
echo "$out"
[ $rc = 1 ]; check monitor-apd-fails $? "rc=$rc, $t0 -> $t1"
apd_end
pass fence-done
