# lkh-scsipr against what a target does differently (issue 18), run with lkh.target=tgt and,
# as the control, on LIO: doctor proves what restore and takeover need and names what is
# missing; doctor writes nothing while any node is registered; status says when the target
# cannot list initiators; paths over different LUs that share tgt's designators are refused;
# a missing /dev/sgN is made privately, a missing sg driver is refused with the fix.

T=$(lkh_target)
note "target: $T"
shared_disk_setup a b || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
scsipr() { local _node=$1; shift; on_node "$_node" lkh-scsipr "$@"; }
gen() { _prin "$B" --read-keys | sed -n 's/.*generation=\(0x[0-9a-fA-F]*\).*/\1/p'; }
KEYA() { cat /etc/lkhelpers/node-a/node.key; }

# ---- doctor on an unused disk: every write test, the verdict names what is missing ----
out=$(scsipr a doctor "$A" 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && echo "$out" | grep -q "registered and removed test key"; check t-doctor-runs $? "rc=$rc"
pr_keys "$B" >/dev/null; [ -z "$(pr_keys "$B")" ] && [ "$(pr_holder "$B")" = none ]
check t-doctor-left-nothing $? "$(pr_keys "$B" | tr '\n' ' ')"
echo "$out" | grep -q "via\|commands through /dev/sg"; check t-doctor-shows-sg-node $?
if [ "$T" = tgt ]; then
    echo "$out" | grep -q "WARN .*PREEMPT AND ABORT unsupported: takeover falls back to PREEMPT; the fenced node's queued commands are not aborted"
    check t-doctor-names-preempt-abort $?
    echo "$out" | grep -q "WARN .*READ FULL STATUS unsupported"; check t-doctor-names-full-status $?
    echo "$out" | grep -q "REPORT SUPPORTED OPERATION CODES claims PREEMPT AND ABORT"; check t-doctor-rsoc-claim $?
    echo "$out" | grep -q "assigns locally"; check t-doctor-weak-designators $?
    echo "$out" | grep -q "deviation(s) listed as WARN"; check t-doctor-verdict $?
else
    ! echo "$out" | grep -q "^WARN"; check t-doctor-no-warnings $?
    echo "$out" | grep -q "PREEMPT AND ABORT and PREEMPT work"; check t-doctor-preempts-work $?
fi
n=$(echo "$out" | grep -c "^ok    type .*: RESERVE, READ RESERVATION and RELEASE work")
[ "$n" = 6 ]; check t-doctor-six-types $? "$n types work"

# ---- doctor over two paths: the preempts run between two test keys, one per nexus ----
MA=$(mpath_setup a) || fatal "multipath of node a failed"
out=$(scsipr a doctor "$MA" 2>&1); rc=$?; echo "$out"
if [ "$T" = tgt ]; then
    [ $rc = 0 ] && echo "$out" | grep -q "WARN .*PREEMPT AND ABORT unsupported: takeover falls back to PREEMPT.*tried: two test keys on two paths"
else
    [ $rc = 0 ] && echo "$out" | grep -q "PREEMPT AND ABORT and PREEMPT work (tried: two test keys on two paths)"
fi
check t-doctor-two-paths $? "rc=$rc"
pr_keys "$B" >/dev/null; [ -z "$(pr_keys "$B")" ] && [ "$(pr_holder "$B")" = none ]
check t-doctor-two-paths-left-nothing $? "$(pr_keys "$B" | tr '\n' ' ')"
DM_DISABLE_UDEV=1 dmsetup remove mpath-a --noudevsync

# ---- doctor while another node is registered: nothing written at all ----
node_conf b fence DEVICE="$B" ON_FENCED=event TIMEOUT=15
expect_rc t-b-restore 0 scsipr b restore -t fence
g0=$(gen)
out=$(scsipr a doctor "$A" 2>&1); rc=$?; echo "$out"
[ $rc = 0 ] && echo "$out" | grep -q "^skip  write tests"; check t-doctor-skips-when-registered $? "rc=$rc"
[ -n "$g0" ] && [ "$(gen)" = "$g0" ]; check t-doctor-wrote-nothing $? "generation $g0 -> $(gen)"

# ---- status: says when the target cannot list initiators ----
out=$(scsipr a status "$A" 2>&1); echo "$out"
scsipr a status "$A" --json > /tmp/st.json 2>&1; cat /tmp/st.json
grep -q '"node":"/dev/sg' /tmp/st.json; check t-status-json-sg-node $?
if [ "$T" = tgt ]; then
    echo "$out" | grep -q "initiators unknown: the target does not implement READ FULL STATUS"
    check t-status-says-no-initiators $?
    grep -q '"initiators_known":false' /tmp/st.json; check t-status-json-no-initiators $?
    # the shared-key warning does not promise a list status cannot give
    node_conf a dup DEVICE="$A" KEY=0x4c4b00000000d0d0
    node_conf b dup DEVICE="$B" KEY=0x4c4b00000000d0d0
    expect_rc t-dup-b-restore 0 scsipr b restore -t dup
    scsipr a restore -t dup >/dev/null 2>&1
    out=$(scsipr a status -t dup 2>&1); echo "$out"
    echo "$out" | grep -q "WARNING: .*but on this disk status cannot list them"; check t-dup-warning-honest $?
    scsipr a remove -t dup >/dev/null 2>&1; scsipr b remove -t dup >/dev/null 2>&1
else
    grep -q '"initiators_known":true' /tmp/st.json; check t-status-json-initiators $?
fi
expect_rc t-b-remove 0 scsipr b remove -t fence

# ---- a private sg node when /dev lacks it ----
SGA=$(node_sg a)
SGDEV=$(cat "/sys/class/scsi_generic/${SGA#/dev/}/dev")
rm -f "$SGA"
node_conf a fence DEVICE="$A" ON_FENCED=event TIMEOUT=15
out=$(scsipr a restore -t fence -v 2>&1); rc=$?; echo "$out" | tail -5
[ $rc = 0 ] && echo "$out" | grep -q "using a private node"; check t-private-sg-node $? "rc=$rc"
out=$(scsipr a status "$A" 2>&1); echo "$out"
echo "$out" | grep -q "private node"; check t-status-shows-private-node $?
ls -a /dev | grep -q '^\.lkh-sg'; [ $? != 0 ]; check t-private-node-removed $?
mknod "$SGA" c "${SGDEV%:*}" "${SGDEV#*:}"
expect_rc t-a-remove 0 scsipr a remove -t fence

# ---- without the sg driver: refused with the fix, nothing sent ----
g0=$(gen)
rmmod sg 2>/dev/null
[ ! -e /sys/module/sg ]; check t-sg-unloaded $?
out=$(scsipr a restore -t fence 2>&1); rc=$?; echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "modprobe sg"; check t-nosg-refused $? "rc=$rc"
modprobe sg
retry 50 node_sg a >/dev/null; check t-sg-back $?
[ -n "$g0" ] && [ "$(gen)" = "$g0" ]; check t-nosg-sent-nothing $? "generation $g0 -> $(gen)"

# ---- two LUs that share VPD 0x83 designators (two tgt daemons) in one multipath map ----
if [ "$T" = tgt ]; then
    tgt_start 1 127.0.0.1:3262 && tgt_export 1 other 64 lkh-other || fatal "second tgtd failed"
    C=$(iscsi_login c2 "$(node_iqn a)" "$(target_iqn other)" 127.0.0.1:3262) || fatal "login to the second tgtd failed"
    sg_vpd -p 0x83 "$A" | grep -A1 NAA | head -2; sg_vpd -p 0x83 "$C" | grep -A1 NAA | head -2
    DM_DISABLE_UDEV=1 dmsetup create twolu --uuid mpath-twolu --noudevsync \
        --table "0 $(blockdev --getsz "$A") multipath 0 0 1 1 round-robin 0 2 1 $(_majmin "$A") 1000 $(_majmin "$C") 1000" || fatal "dmsetup twolu"
    DM_DISABLE_UDEV=1 dmsetup mknodes twolu >/dev/null 2>&1
    out=$(scsipr a status /dev/mapper/twolu 2>&1); rc=$?; echo "$out"
    [ $rc = 2 ] && echo "$out" | grep -q "different logical units" && echo "$out" | grep -q "unit serial numbers differ"
    check t-twolu-status-refused $? "rc=$rc"
    node_conf a twolu DEVICE=/dev/mapper/twolu
    g0=$(gen)
    expect_rc t-twolu-restore-refused 2 scsipr a restore -t twolu
    [ -n "$g0" ] && [ "$(gen)" = "$g0" ]; check t-twolu-sent-nothing $? "generation $g0 -> $(gen)"
fi
