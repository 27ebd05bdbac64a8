# lkh-scsipr on one LU seen by two nodes (one iSCSI I_T nexus each): bad input, restore,
# takeover with PREEMPT AND ABORT, the fenced node's writes, quickCheck/recover/watch on the
# fenced node, `status -t TAG --json` agreeing with quickCheck (healthy, nobody holds, fenced,
# lost PR state), UNIT ATTENTION after a preempt, remove, and concurrent restores.
# The last step arms `watch` with ON_FENCED=halt and lets it reboot the guest.
# Target: LIO, or tgt with lkh.target=tgt (no READ FULL STATUS there: checks that need to
# know which nexus holds are LIO-only and say so).

T=$(lkh_target)
note "target: $T"
shared_disk_setup a b || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
KEYA() { cat /etc/lkhelpers/node-a/node.key; }
KEYB() { cat /etc/lkhelpers/node-b/node.key; }
# gen: the PR generation ("PR generation=0x5, ..."); empty when it cannot be read, which the
# comparison below treats as a failure
gen() { _prin "$B" --read-keys | sed -n 's/.*generation=\(0x[0-9a-fA-F]*\).*/\1/p'; }
has_key() { pr_keys "$1" >/dev/null; pr_keys "$1" | grep -qi "^$(echo "$2" | sed 's/^0x0*/0x/')\$"; }
scsipr() { local _node=$1; shift; on_node "$_node" lkh-scsipr "$@"; }
# holder DEV: like pr_holder, after a first read that absorbs a pending UNIT ATTENTION
holder() { pr_holder "$1" >/dev/null; pr_holder "$1"; }
# agree NAME NODE TAG VERDICT: `status -t TAG --json` on NODE exits with the code quickCheck
# exits with right after it, its JSON starts with that "exit" and VERDICT and carries each
# disk's device diagnostic, and status sent no PR OUT (PR generation unchanged)
agree() {
    local g1 g2 src qrc
    g1=$(gen)
    scsipr "$2" status -t "$3" --json >/tmp/agree.json 2>/tmp/agree.err; src=$?
    g2=$(gen)
    scsipr "$2" quickCheck -t "$3" >/dev/null 2>&1; qrc=$?
    [ "$src" = "$qrc" ] && [ -n "$g1" ] && [ "$g1" = "$g2" ] &&
        grep -q "^{\"tag\":\"$3\",\"healthy\":[a-z]*,\"verdict\":\"$4\",\"exit\":$qrc," /tmp/agree.json &&
        grep -q '"disk":{"device":' /tmp/agree.json
    check "$1" $? "status rc=$src, quickCheck rc=$qrc, generation $g1 -> $g2: $(cat /tmp/agree.json /tmp/agree.err)"
}

# ---- bad input: exit 2, nothing sent to the disk (PR generation unchanged) ----
g0=$(gen)
node_conf a bad DEVICE=/dev/nonexistent
expect_rc bad-missing-device 2 scsipr a restore -t bad
node_conf a bad DEVICE=/dev/null
expect_rc bad-not-block 2 scsipr a restore -t bad
node_conf a bad DEVICE="$A" KEY=0
expect_rc bad-key-zero 2 scsipr a restore -t bad
node_conf a bad DEVICE="$A" KEY=0x112233445566778899
expect_rc bad-key-long 2 scsipr a restore -t bad
node_conf a bad DEVICE="$A" TYPE=exclusive-sometimes
expect_rc bad-type 2 scsipr a restore -t bad
node_conf a bad DEVICE="$A" COLOUR=blue
expect_rc bad-unknown-key 2 scsipr a restore -t bad
expect_rc bad-tag 2 scsipr a restore -t ../etc
# a node.key or configuration directory another user could steer (node x: its own conf dir)
node_conf x bad DEVICE="$A"
echo 0x4c4b0000000000ff > /tmp/peer.key
ln -s /tmp/peer.key /etc/lkhelpers/node-x/node.key
expect_rc bad-key-symlink 2 scsipr x restore -t bad
rm -f /etc/lkhelpers/node-x/node.key; cp /tmp/peer.key /etc/lkhelpers/node-x/node.key
chmod 664 /etc/lkhelpers/node-x/node.key
expect_rc bad-key-group-writable 2 scsipr x restore -t bad
rm -f /etc/lkhelpers/node-x/node.key; chmod 1777 /etc/lkhelpers/node-x
expect_rc bad-conf-dir-1777 2 scsipr x restore -t bad
[ ! -e /etc/lkhelpers/node-x/node.key ]; check bad-conf-dir-no-key-made $?
[ -n "$g0" ] && [ "$(gen)" = "$g0" ]; check bad-input-sent-nothing $? "generation $g0 -> $(gen)"

# ---- restore on A ----
node_conf a fence DEVICE="$A" ON_FENCED=event FAILFASTTIMER=1 TIMEOUT=15
node_conf b fence DEVICE="$B" ON_FENCED=event FAILFASTTIMER=1 TIMEOUT=15
expect_rc a-restore 0 scsipr a restore -t fence
[ "$(holder "$B")" = "$(node_iqn a)" ]; check a-holds $? "holder $(holder "$B")"
case "$(KEYA)" in 0x4c4b*) pass a-key-prefix ;; *) fail a-key-prefix "$(KEYA)" ;; esac
[ "$(stat -c %a /etc/lkhelpers/node-a/node.key)" = 600 ]; check a-key-mode $?
expect_rc a-restore-idempotent 0 scsipr a restore -t fence
expect_rc a-quickcheck 0 scsipr a quickCheck -t fence
run scsipr a status -t fence
agree a-status-agrees-healthy a fence ours
# (the defender's warning is there: no watch runs on node a yet)
scsipr a status -t fence 2>&1 | grep -q 'WARNING: .*registered [0-9]* times'; [ $? != 0 ]; check a-status-no-shared-key-warning $?
scsipr a status "$A" --json > /tmp/status.json 2>&1
if [ "$T" = tgt ]; then
    grep -q '"owner":"this node"' /tmp/status.json && grep -q '"initiators_known":false' /tmp/status.json
else
    grep -q '"owner":"this node"' /tmp/status.json && grep -q '"holder":true' /tmp/status.json
fi
check a-status-json $? "$(cat /tmp/status.json)"
expect_rc a-doctor 0 scsipr a doctor "$A"
dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
dd if=/tmp/blk of="$A" bs=4096 count=1 oflag=direct 2>/dev/null; check a-write-works $?

# ---- reservation released behind our back (key still registered): recover re-takes it ----
sg_persist -n --out --release --prout-type=5 --param-rk="$(KEYA)" "$A" >/dev/null 2>&1
[ "$(holder "$B")" = none ]; check released-externally $?
agree a-status-agrees-free a fence "nobody holds"
expect_rc a-quickcheck-free 1 scsipr a quickCheck -t fence
expect_rc a-recover-retakes 0 scsipr a recover -t fence
[ "$(holder "$B")" = "$(node_iqn a)" ]; check a-holds-after-recover $?

# ---- A's watcher defends A's disk; frozen (a paused VM), A loses it to B's takeover ----
LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a \
    lkh-scsipr watch > /tmp/watch-a.log 2>&1 &
WPID=$!
sleep 1.5
expect_rc b-restore-defended 3 scsipr b restore -t fence
[ "$(holder "$B")" = "$(node_iqn a)" ] && ! has_key "$B" "$(KEYB)"; check a-kept-its-disk $? "holder $(holder "$B")"
kill -STOP "$WPID"
expect_rc b-restore-takeover 0 scsipr b restore -t fence
kill -CONT "$WPID"
[ "$(holder "$B")" = "$(node_iqn b)" ]; check b-holds $? "holder $(holder "$B")"
! has_key "$B" "$(KEYA)"; check a-key-gone $? "keys: $(pr_keys "$B" | tr '\n' ' ')"
dd if=/dev/zero of="$A" bs=4096 count=1 oflag=direct 2>/dev/null
[ $? -ne 0 ]; check a-write-refused $?
dd if=/tmp/blk of="$B" bs=4096 count=1 oflag=direct 2>/dev/null; check b-write-works $?
retry 25 grep -q "ON_FENCED=event" /tmp/watch-a.log; check a-watch-acted $? "$(cat /tmp/watch-a.log)"
kill -0 "$WPID" 2>/dev/null; check a-watch-goes-on-after-event $?
[ "$(cat /run/lkhelpers/node-a/scsipr/fence/watch 2>&1)" = fenced ]
check a-watch-marked-fenced $? "$(ls -laR /run/lkhelpers/node-a 2>&1)"
kill "$WPID"; wait "$WPID" 2>/dev/null
cat /tmp/watch-a.log
expect_rc a-quickcheck-fenced 3 scsipr a quickCheck -t fence
agree a-status-agrees-fenced a fence fenced
expect_rc a-recover-no-steal 3 scsipr a recover -t fence
[ "$(holder "$B")" = "$(node_iqn b)" ]; check b-still-holds $?
expect_rc b-quickcheck 0 scsipr b quickCheck -t fence
agree b-status-agrees-healthy b fence ours

# ---- UNIT ATTENTION after a preempt: A takes back, B's next command meets the UA ----
expect_rc a-restore-back 0 scsipr a restore -t fence
out=$(scsipr b quickCheck -t fence -v 2>&1); rc=$?
echo "$out"
[ $rc = 3 ]; check b-fenced-after-ua $? "rc=$rc"
# tgt sends this attention to the preempting nexus (A's), not to B's: only LIO shows it here
if [ "$T" = lio ]; then echo "$out" | grep -qi "unit attention"; check ua-retried $?; fi
echo "$out" | grep -Eq "/dev/sg[0-9]*: READ (RESERVATION|FULL STATUS): cdb"; check sg-node-used $?

# ---- remove: idempotent, leaves the other node alone ----
expect_rc b-remove-not-holder 0 scsipr b remove -t fence
[ "$(holder "$B")" = "$(node_iqn a)" ]; check remove-left-holder $?
expect_rc a-remove 0 scsipr a remove -t fence
expect_rc a-remove-again 0 scsipr a remove -t fence
[ "$(holder "$B")" = none ]; check no-holder $?
[ -z "$(pr_keys "$B")" ]; check no-keys $? "$(pr_keys "$B")"
# nothing held, nothing registered: not a takeover (exit 1, not 3)
expect_rc a-quickcheck-after-remove 1 scsipr a quickCheck -t fence
agree a-status-agrees-lost a fence "lost PR state"
# a node without a reservation key: status -t TAG fails as quickCheck does, before any look
node_conf y fence DEVICE="$A"
expect_rc y-quickcheck-no-key 1 scsipr y quickCheck -t fence
scsipr y status -t fence --json >/tmp/nokey.json 2>&1; rc=$?
[ $rc = 1 ] && grep -q "no reservation key" /tmp/nokey.json && ! grep -q '^{' /tmp/nokey.json
check y-status-no-key $? "rc=$rc: $(cat /tmp/nokey.json)"

# ---- an all-registrants type: every registrant holds, so a takeover removes the others ----
node_conf a ar DEVICE="$A" TYPE=write-exclusive-all-registrants ON_FENCED=event
node_conf b ar DEVICE="$B" TYPE=write-exclusive-all-registrants ON_FENCED=event
expect_rc ar-a-restore 0 scsipr a restore -t ar
expect_rc ar-b-restore 0 scsipr b restore -t ar
! has_key "$B" "$(KEYA)"; check ar-a-key-gone $? "keys: $(pr_keys "$B" | tr '\n' ' ')"
expect_rc ar-a-quickcheck-fenced 3 scsipr a quickCheck -t ar
expect_rc ar-b-quickcheck 0 scsipr b quickCheck -t ar
expect_rc ar-b-remove 0 scsipr b remove -t ar
expect_rc ar-a-remove 0 scsipr a remove -t ar
[ -z "$(pr_keys "$B")" ] && [ "$(holder "$B")" = none ]; check ar-clean $? "$(pr_keys "$B")"

# ---- without the sg driver the kit refuses (SG_IO on /dev/sdX could not be abandoned) ----
rmmod sg 2>/dev/null
[ ! -e /sys/module/sg ]; check sg-unloaded $?
out=$(scsipr a quickCheck -t fence -v 2>&1); rc=$?; echo "$out" | tail -3
[ $rc = 1 ] && echo "$out" | grep -q "modprobe sg" && ! echo "$out" | grep -q "$A: READ RESERVATION: cdb"
check nosg-refused $? "rc=$rc"
modprobe sg
retry 50 node_sg a >/dev/null && retry 50 node_sg b >/dev/null; check sg-reloaded $?

# ---- both nodes restore at the same moment, 20 times: exactly one holder ----
bad=0
i=0
while [ $i -lt 20 ]; do
    i=$((i + 1))
    scsipr a restore -t fence >/tmp/ra.log 2>&1 &
    pa=$!
    scsipr b restore -t fence >/tmp/rb.log 2>&1 &
    pb=$!
    wait $pa; ra=$?
    wait $pb; rb=$?
    h=$(holder "$B")
    scsipr a quickCheck -t fence >/dev/null 2>&1; qa=$?
    scsipr b quickCheck -t fence >/dev/null 2>&1; qb=$?
    echo "round $i: restore a=$ra b=$rb holder=$h quickCheck a=$qa b=$qb"
    case "$h:$qa:$qb" in
    "$(node_iqn a):0:3" | "$(node_iqn b):3:0") ;;
    *) bad=$((bad + 1)); cat /tmp/ra.log /tmp/rb.log ;;
    esac
    scsipr a remove -t fence >/dev/null 2>&1
    scsipr b remove -t fence >/dev/null 2>&1
done
[ $bad = 0 ]; check race-one-holder-20 $? "$bad bad rounds"

# ---- the same KEY on both nodes: fencing between them is void; restore and status say so ----
node_conf a dup DEVICE="$A" KEY=0x4c4b00000000d0d0
node_conf b dup DEVICE="$B" KEY=0x4c4b00000000d0d0
expect_rc dup-a-restore 0 scsipr a restore -t dup
out=$(scsipr b restore -t dup 2>&1); rc=$?
echo "$out"
[ $rc = 0 ] && echo "$out" | grep -q "registered 2 times but this node has 1 path"
check dup-b-restore-warns $? "rc=$rc"
out=$(scsipr a status -t dup 2>&1); echo "$out"
echo "$out" | grep -q "WARNING: .*another node uses the same key"; check dup-status-warns $?
expect_rc dup-a-remove 0 scsipr a remove -t dup
expect_rc dup-b-remove 0 scsipr b remove -t dup

# ---- TYPE=write-exclusive and a WWPN flip: the reservation moves to the new nexus ----
node_conf b we DEVICE="$B" TYPE=write-exclusive
expect_rc we-b-restore 0 scsipr b restore -t we
NB=$(node_flip b iqn.2026-01.test.lkh:node-b-flipped) || fatal "flip of b failed"
node_conf b we DEVICE="$NB" TYPE=write-exclusive
dd if=/dev/zero of="$NB" bs=4096 count=1 oflag=direct 2>/dev/null
[ $? -ne 0 ]; check we-flip-new-nexus-refused $?
expect_rc we-flip-quickcheck 0 scsipr b quickCheck -t we
dd if=/dev/zero of="$NB" bs=4096 count=1 oflag=direct 2>/dev/null; check we-flip-write-works $?
if [ "$T" = lio ]; then  # which nexus holds: READ FULL STATUS
    [ "$(holder "$A")" = iqn.2026-01.test.lkh:node-b-flipped ]; check we-holder-moved $? "holder $(holder "$A")"
fi
# a second flip, then restore (not quickCheck) first: restore registers the new nexus itself,
# so no path is re-registered later; restore must move the reservation off the old nexus
NB=$(node_flip b iqn.2026-01.test.lkh:node-b-flipped2) || fatal "second flip of b failed"
node_conf b we DEVICE="$NB" TYPE=write-exclusive
expect_rc we-flip-restore 0 scsipr b restore -t we
dd if=/dev/zero of="$NB" bs=4096 count=1 oflag=direct 2>/dev/null; check we-flip-restore-write-works $?
if [ "$T" = lio ]; then
    [ "$(holder "$A")" = iqn.2026-01.test.lkh:node-b-flipped2 ]; check we-flip-restore-holder-moved $? "holder $(holder "$A")"
fi
expect_rc we-b-remove 0 scsipr b remove -t we
B=$NB
node_conf b fence DEVICE="$B" ON_FENCED=event FAILFASTTIMER=1 TIMEOUT=15

# ---- ON_FENCED=halt: the watcher reboots this (QEMU -no-reboot: the guest stops) ----
node_conf a fence DEVICE="$A" ON_FENCED=halt FAILFASTTIMER=1 TIMEOUT=15
expect_rc a-restore-for-halt 0 scsipr a restore -t fence
LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a lkh-scsipr watch &
WPID=$!
sleep 1.5
# A freezes (a paused VM): B takes over; when A resumes, its watch finds its key gone and halts
kill -STOP "$WPID"
expect_rc b-takeover-for-halt 0 scsipr b restore -t fence
kill -CONT "$WPID"
pass halt-armed
sleep 20
fail halt-happened "still running 20 s after the takeover"
