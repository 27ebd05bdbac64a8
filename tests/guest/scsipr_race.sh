# lkh-scsipr under races (issue 15, issue 18 item 2), three cluster nodes a b c on one LU of
# LIO, or of tgt with lkh.target=tgt (one iSCSI I_T nexus each; node a also gets a second path
# with dm-multipath for the re-registration race). On tgt every PREEMPT AND ABORT is refused
# and the kit falls back to PREEMPT; `holder` knows the holder by its key there.
# 1. three restores released at the same instant, ROUNDS rounds from a free disk and
#    ROUNDS_TAKEOVER rounds from a disk held by a fourth node d: exactly one exits 0, it is
#    the holder, the others exit 3 and are not registered;
# 2. a restore frozen right before its PREEMPT AND ABORT while another node takes over (the
#    key it observed vanishes): it exits 3 and leaves no registration;
# 3. the re-registration race: quickCheck frozen right after re-registering a new nexus
#    while another node takes over: it removes what it added and exits 3;
# 4. healthy quickCheck and recover leave the PR generation unchanged;
# 5. the LU loses its PR state (the target restarted: tgtd restarted, the LIO backstore
#    re-created): watch with ON_FENCED=halt does not halt, quickCheck says so (exit 1),
#    recover registers and reserves again;
# 6. a resource of two disks (a second LU added to the same target), TWO_ROUNDS rounds of
#    three restores at the same instant, node b listing the disks in the other order: one
#    exits 0 and holds both disks, the others exit 3 and are registered on neither.
# Freezing uses the kit's own debug log: every CDB is logged before it is sent and every
# completion after it; the process runs at nice 19 and its log reader at 0, so on the one vCPU
# the reader preempts it at each line and can SIGSTOP it right there (before the command a
# "cdb" line announces, after the one a "status" line reports).

ROUNDS=${ROUNDS:-100}
ROUNDS_TAKEOVER=${ROUNDS_TAKEOVER:-30}
TWO_ROUNDS=${TWO_ROUNDS:-20}

shared_disk_setup a b c d || fatal "shared disk setup failed"
OBS=$(node_dev d)
scsipr() { local _node=$1; shift; on_node "$_node" lkh-scsipr "$@"; }
key_of() { cat "/etc/lkhelpers/node-$1/node.key"; }
# keys [DEV]: the registered keys, lower case, 0x without leading zeros (one read absorbs a
# UA); DEV defaults to node d's path to the LU, the observer
keys() { pr_keys "${1:-$OBS}" >/dev/null; pr_keys "${1:-$OBS}" | tr 'A-F' 'a-f' | sort; }
norm() { echo "$1" | tr 'A-F' 'a-f' | sed 's/^0x0*/0x/'; }
registered() { keys "$2" | grep -qx "$(norm "$(key_of "$1")")"; }
holder() { pr_holder "${1:-$OBS}" >/dev/null; pr_holder "${1:-$OBS}"; }
gen() { _prin "$OBS" --read-keys | sed -n 's/.*generation=\(0x[0-9a-fA-F]*\).*/\1/p'; }
now() { cut -d' ' -f1 /proc/uptime; }

# TIMEOUT=60: a racer waits, stopped, for the other two; its deadline keeps running meanwhile
for n in a b c d; do
    node_conf "$n" race DEVICE="$(node_dev "$n")" ON_FENCED=none FAILFASTTIMER=1 TIMEOUT=60
done
# every node gets its key once (restore creates it), then leaves the disk clean
for n in a b c d; do scsipr "$n" restore -t race >/dev/null 2>&1; done
for n in a b c d; do scsipr "$n" remove -t race >/dev/null 2>&1; done
[ -z "$(keys)" ] || fatal "disk not clean: $(keys | tr '\n' ' ')"

# "At the same instant" means: every racer has read who holds the disk before any of them
# reserves or preempts. Process start-up (exec, configuration, sysfs) takes longer than a
# whole restore on this one-vCPU guest, so a plain simultaneous start only produces
# back-to-back restores, where a later one rightly takes over. Each racer therefore runs with
# `-v` (every command is logged, its completion too) and is stopped (SIGSTOP) right after its
# first READ RESERVATION completes; once all three are stopped they are continued with one
# kill(1). The racers run at nice 19 and their watchers at 0: on the one vCPU each log line
# wakes the watcher, which preempts the racer at once, so a racer is stopped before it sends
# its next command (a watcher that lagged behind would let it run on: counted as "acted
# early").
# racer NODE: starts restore of RACE_TAG as NODE in the background, stderr into a FIFO read
# by a watcher that stops it after its observation (RACE_READS READ RESERVATIONs: one per
# disk); sets RPID
RACE_TAG=race RACE_READS=1
racer() {
    rm -f "/tmp/r-$1.fifo" "/tmp/r-$1.stopped"; mkfifo "/tmp/r-$1.fifo"; : > "/tmp/r-$1.log"
    LKHELPERS_CONF_DIR="/etc/lkhelpers/node-$1" LKHELPERS_RUN_DIR="/run/lkhelpers/node-$1" \
        unshare -u sh -c 'renice -n 19 -p $$ >/dev/null; hostname "$0"; exec "$@"' "node-$1" lkh-scsipr restore -t "$RACE_TAG" -v \
        2>"/tmp/r-$1.fifo" &
    RPID=$!
    (
        _seen=0
        while IFS= read -r _l; do
            echo "$_l" >> "/tmp/r-$1.log"
            case $_l in *"READ RESERVATION: GOOD"*) _seen=$((_seen + 1)) ;; esac
            [ $_seen -ge $RACE_READS ] && { kill -STOP "$RPID"; : > "/tmp/r-$1.stopped"; break; }
        done
        cat >> "/tmp/r-$1.log"
    ) < "/tmp/r-$1.fifo" &
    WATCHERS="$WATCHERS $!"
}
# acted NODE: whether the racer sent a RESERVE or PREEMPT before it was stopped
acted() { grep -q -e "RESERVE: cdb" -e "PREEMPT" -e "PREEMPT AND ABORT: cdb" "/tmp/r-$1.log"; }

# race_round OLD: one round of RACE_TAG, judged on each of RACE_OBS (node d's paths to the
# resource's disks); OLD=d first lets node d hold the disk. Prints a verdict line and
# returns 0 when the round met the rules.
RACE_OBS=$OBS
race_round() {
    if [ "$1" = d ]; then
        scsipr d restore -t "$RACE_TAG" >/dev/null 2>&1 || { echo "d restore failed"; return 1; }
    fi
    WATCHERS=""
    racer a; pa=$RPID
    racer b; pb=$RPID
    racer c; pc=$RPID
    _t0=$(now)
    until [ -e /tmp/r-a.stopped ] && [ -e /tmp/r-b.stopped ] && [ -e /tmp/r-c.stopped ]; do
        sleep 0.02
        if [ "$(echo "$_t0 $(now)" | awk '{ print ($2 - $1 > 20) }')" = 1 ]; then
            for _x in a b c; do [ -e "/tmp/r-$_x.stopped" ] || { echo "racer $_x not stopped after 20 s:"; grep -v "data-in" "/tmp/r-$_x.log"; }; done
            break
        fi
    done
    for _x in a b c; do acted $_x && late=$((late + 1)); done
    kill -CONT $pa $pb $pc
    wait $pa; ra=$?; wait $pb; rb=$?; wait $pc; rc=$?
    # the watchers by name: a plain `wait` would also wait for every other child of this
    # shell, such as a daemon a setup started in the background
    # shellcheck disable=SC2086
    wait $WATCHERS
    _w=""; _zero=0; _ok=1; _seen=""
    for _x in a:$ra b:$rb c:$rc; do
        case ${_x#*:} in
        0) _zero=$((_zero + 1)); _w=${_x%:*} ;;
        3) ;;
        *) _ok=0 ;;
        esac
    done
    [ $_zero = 1 ] || _ok=0
    for _o in $RACE_OBS; do
        _h=$(holder "$_o"); _k=$(keys "$_o" | tr '\n' ' ')
        _seen="$_seen ${_o##*/}: holder=$_h keys=$_k"
        for _x in a:$ra b:$rb c:$rc; do
            [ "${_x#*:}" = 3 ] && registered "${_x%:*}" "$_o" && _ok=0
        done
        [ -n "$_w" ] && [ "$_h" = "$(node_iqn "$_w")" ] && [ "$_k" = "$(norm "$(key_of "$_w")") " ] || _ok=0
        [ "$1" = d ] && registered d "$_o" && _ok=0
    done
    echo "round from=${1:-free}: rc a=$ra b=$rb c=$rc;$_seen"
    [ $_ok = 1 ] || grep -h -v "data-in" /tmp/r-a.log /tmp/r-b.log /tmp/r-c.log
    # the losers were checked to be unregistered: only the winner (and d) need a remove
    if [ $_ok = 1 ]; then
        scsipr "$_w" remove -t "$RACE_TAG" >/dev/null 2>&1
    else
        for _n2 in a b c d; do scsipr "$_n2" remove -t "$RACE_TAG" >/dev/null 2>&1; done
    fi
    [ $_ok = 1 ]
}

# ---- 1. three restores at the same instant ----
bad=0; late=0; i=0
t0=$(now)
while [ $i -lt "$ROUNDS" ]; do
    i=$((i + 1))
    race_round || bad=$((bad + 1))
done
t1=$(now)
note "BENCH race_round_ms $(echo "$t0 $t1 $ROUNDS" | awk '{ printf "%.0f", ($2 - $1) * 1000 / $3 }') (3 restores with -v + checks + removes, $ROUNDS rounds)"
[ $bad = 0 ]; check race-free-one-winner $? "$bad of $ROUNDS bad rounds; $late racers had reserved or preempted before all were stopped"
bad=0; i=0
while [ $i -lt "$ROUNDS_TAKEOVER" ]; do
    i=$((i + 1))
    race_round d || bad=$((bad + 1))
done
[ $bad = 0 ]; check race-takeover-one-winner $? "$bad of $ROUNDS_TAKEOVER bad rounds; $late racers had reserved or preempted before all were stopped"
# the barrier worked: (almost) no racer got as far as reserving before the others observed
[ $late -le $(( (ROUNDS + ROUNDS_TAKEOVER) / 20 )) ]; check race-barrier-held $? "$late racers acted early"

# freeze NODE PATTERN CMD...: runs `lkh-scsipr CMD -v` as NODE in the background and stops it
# (SIGSTOP) right after it logs a line matching PATTERN; sets FPID; returns when stopped
# (1 if the pattern never came). The log is /tmp/freeze.log.
freeze() {
    local _node=$1 _pat=$2; shift 2
    rm -f /tmp/freeze.fifo; mkfifo /tmp/freeze.fifo
    # a simple command, not a function: $! is then the kit's own process (unshare and sh exec)
    LKHELPERS_CONF_DIR="/etc/lkhelpers/node-$_node" LKHELPERS_RUN_DIR="/run/lkhelpers/node-$_node" \
        unshare -u sh -c 'renice -n 19 -p $$ >/dev/null; hostname "$0"; exec "$@"' "node-$_node" lkh-scsipr "$@" -v 2>/tmp/freeze.fifo &
    FPID=$!
    while IFS= read -r _l; do
        echo "$_l" >> /tmp/freeze.log
        case $_l in *$_pat*) kill -STOP "$FPID"; echo "FROZEN at: $_l" >> /tmp/freeze.log; break ;; esac
    done < /tmp/freeze.fifo
    # keep draining the log so the process never blocks on a full pipe
    cat /tmp/freeze.fifo >> /tmp/freeze.log &
    grep -q "^FROZEN" /tmp/freeze.log
}
thaw() { kill -CONT "$FPID"; wait "$FPID"; }

# ---- 2. B observed holder A; C takes over while B is frozen after registering ----
: > /tmp/freeze.log
expect_rc vanish-a-restore 0 scsipr a restore -t race
freeze b "REGISTER AND IGNORE EXISTING KEY: cdb" restore -t race
check vanish-b-frozen-after-observing $?
# B is frozen after observing A, right before it registers: C takes over from A; B then sees
# a holder it did not observe
expect_rc vanish-c-takeover 0 scsipr c restore -t race
thaw; rc=$?
cat /tmp/freeze.log | grep -v "cdb \[" | tail -5
[ $rc = 3 ]; check vanish-b-exits-3 $? "rc=$rc"
! registered b; check vanish-b-not-registered $? "keys: $(keys | tr '\n' ' ')"
[ "$(holder)" = "$(node_iqn c)" ]; check vanish-c-holds $? "holder $(holder)"
for n in a b c; do scsipr "$n" remove -t race >/dev/null 2>&1; done

# the same with B frozen on its PREEMPT AND ABORT itself (sent, not yet answered)
expect_rc vanish2-a-restore 0 scsipr a restore -t race
: > /tmp/freeze.log
freeze b "PREEMPT AND ABORT: cdb" restore -t race
check vanish2-b-frozen-at-preempt $?
expect_rc vanish2-c-takeover 0 scsipr c restore -t race
thaw; rc=$?
grep -v "cdb \[" /tmp/freeze.log | tail -5
# B was frozen right before sending its PREEMPT AND ABORT of A: C took over from A and removed
# B's registration; B's PREEMPT AND ABORT then conflicts (A's key is gone), B reads the disk,
# exits 3 (before: exit 3 without reading, or 1) and is left unregistered
[ $rc = 3 ]; check vanish2-b-exits-3 $? "rc=$rc"
! registered b; check vanish2-b-not-registered $? "keys: $(keys | tr '\n' ' ')"
[ "$(holder)" = "$(node_iqn c)" ]; check vanish2-c-holds $? "holder $(holder)"
for n in a b c; do scsipr "$n" remove -t race >/dev/null 2>&1; done

# ---- 3. the re-registration race: a quickCheck re-registering new nexuses after a WWPN flip
MA=$(mpath_setup a) || fatal "multipath of node a failed"
node_conf a mp DEVICE="$MA" ON_FENCED=none FAILFASTTIMER=1 TIMEOUT=15
node_conf b mp DEVICE="$(node_dev b)" ON_FENCED=none FAILFASTTIMER=1 TIMEOUT=15
expect_rc rereg-a-restore 0 scsipr a restore -t mp
node_flip a iqn.2026-01.test.lkh:node-a-flipped >/dev/null || fatal "flip of a failed"
: > /tmp/freeze.log
freeze a "REGISTER AND IGNORE EXISTING KEY: cdb" quickCheck -t mp
check rereg-a-frozen-at-reregistration $?
expect_rc rereg-b-takeover 0 scsipr b restore -t mp
thaw; rc=$?
grep -v "cdb \[" /tmp/freeze.log | tail -5
[ $rc = 3 ]; check rereg-a-exits-3 $? "rc=$rc"
! registered a; check rereg-a-not-registered $? "keys: $(keys | tr '\n' ' ')"
[ "$(holder)" = "$(node_iqn b)" ]; check rereg-b-holds $? "holder $(holder)"
grep -q "was removed again" /tmp/freeze.log; check rereg-a-says-removed $?
dd if=/dev/zero of="$MA" bs=4096 count=1 oflag=direct 2>/dev/null
[ $? -ne 0 ]; check rereg-a-write-refused $?
scsipr b remove -t mp >/dev/null 2>&1
scsipr a remove -t mp >/dev/null 2>&1
# node a's path 0 has a new name after the flip
node_conf a race DEVICE="$(node_dev a)" ON_FENCED=none FAILFASTTIMER=1 TIMEOUT=15

# ---- 4. a healthy check sends no PR OUT ----
expect_rc gen-a-restore 0 scsipr a restore -t race
g0=$(gen)
expect_rc gen-a-quickcheck 0 scsipr a quickCheck -t race
expect_rc gen-a-quickcheck-2 0 scsipr a quickCheck -t race
expect_rc gen-a-recover 0 scsipr a recover -t race
g1=$(gen)
[ -n "$g0" ] && [ "$g0" = "$g1" ]; check gen-healthy-check-unchanged $? "generation $g0 -> $g1"
# APTPL is not set (README): the LU reports persist-through-power-loss not activated
out=$(sg_persist -n --in --report-capabilities "$OBS" 2>&1); echo "$out"
echo "$out" | grep -q "PTPL_A): 0"; check aptpl-not-set $?

# ---- 5. the LU loses its PR state (a real target restart: PR generation back to 0) ----
node_conf a race DEVICE="$(node_dev a)" ON_FENCED=halt FAILFASTTIMER=1 TIMEOUT=15
LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a \
    lkh-scsipr watch > /tmp/watch-a.log 2>&1 &
WPID=$!
sleep 1.5
lu_power_cycle; wait_answers "$OBS" 60; wait_answers "$(node_dev a)" 60
[ -z "$(keys)" ] && [ "$(holder)" = none ]; check lost-cleared $? "keys: $(keys | tr '\n' ' ')"
sleep 3
kill -0 $WPID 2>/dev/null; check lost-watch-still-running $?
grep -q "lost its persistent-reservation state" /tmp/watch-a.log; check lost-watch-says-lost $? "$(cat /tmp/watch-a.log)"
out=$(scsipr a quickCheck -t race 2>&1); rc=$?; echo "$out"
[ $rc = 1 ] && echo "$out" | grep -q "not a takeover"; check lost-quickcheck-1 $? "rc=$rc"
# node b lost its race earlier: no record of holding the disk, so its recover takes nothing
expect_rc lost-b-recover-takes-nothing 1 scsipr b recover -t race
[ -z "$(keys)" ]; check lost-b-not-registered $? "keys: $(keys | tr '\n' ' ')"
expect_rc lost-recover-restores 0 scsipr a recover -t race
[ "$(holder)" = "$(node_iqn a)" ] && registered a; check lost-a-holds-again $? "holder $(holder)"
expect_rc lost-quickcheck-after 0 scsipr a quickCheck -t race
kill $WPID; wait $WPID 2>/dev/null
cat /tmp/watch-a.log
node_conf a race DEVICE="$(node_dev a)" ON_FENCED=none FAILFASTTIMER=1 TIMEOUT=15
expect_rc lost-a-remove 0 scsipr a remove -t race

# ---- 6. a resource of two disks ----
second_lu; check two-second-lu $?
for n in a b c d; do
    d0=$(node_dev "$n"); d1=$(retry 100 lu1_dev "$n") || fatal "node $n does not see the second LU"
    echo "node $n: $d0 $d1"
    # node b lists the disks the other way round: every node still takes them in one order
    if [ "$n" = b ]; then devs="$d1 $d0"; else devs="$d0 $d1"; fi
    node_conf "$n" two "DEVICE=\"$devs\"" ON_FENCED=none FAILFASTTIMER=1 TIMEOUT=60
    [ "$n" = d ] && RACE_OBS="$d0 $d1"
done
RACE_TAG=two RACE_READS=2
bad=0; late=0; i=0
while [ $i -lt "$TWO_ROUNDS" ]; do
    i=$((i + 1))
    race_round || bad=$((bad + 1))
done
[ $bad = 0 ]; check two-one-winner $? "$bad of $TWO_ROUNDS bad rounds; $late racers had reserved or preempted before all were stopped"
[ $late -le $((TWO_ROUNDS / 10)) ]; check two-barrier-held $? "$late racers acted early"
pass race-done
