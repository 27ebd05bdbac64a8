# Benchmarks of issue 4, side by side in one guest run:
# 1. quickCheck of one disk vs the same check scripted with sg_persist (read keys + read
#    reservation, two processes);
# 2. takeover of 16 disks (restore on B while A holds) vs the register / preempt-and-abort /
#    verify sequence scripted with sg_persist (with sg_turs before each command to absorb the
#    UNIT ATTENTION a preempt leaves, as fence_scsi does).
# Prints "BENCH name value" lines; checks only that every run succeeded.

N=${N:-40}
ROUNDS=${ROUNDS:-3}
now() { cut -d' ' -f1 /proc/uptime; }
ms_per() { echo "$1 $2 $3" | awk '{ printf "%.1f", ($2 - $1) * 1000 / $3 }'; }
bench() { echo "BENCH $*"; say "BENCH $*"; }

shared_disk_setup a b || fatal "shared disk setup failed"
A=$(node_dev a)
export LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a
node_conf a one DEVICE="$A"
lkh-scsipr restore -t one || fatal "restore of one disk failed"
KA=$(cat /etc/lkhelpers/node-a/node.key)

# ---- 0. process start alone, for reference ----
t0=$(now)
i=0; while [ $i -lt "$N" ]; do i=$((i + 1)); lkh-scsipr --version >/dev/null; done
t1=$(now)
i=0; while [ $i -lt "$N" ]; do i=$((i + 1)); sg_persist -V >/dev/null 2>&1; done
t2=$(now)
bench "exec_ms_lkh_version $(ms_per "$t0" "$t1" "$N")"
bench "exec_ms_sg_persist_version $(ms_per "$t1" "$t2" "$N")"

# ---- 1. quickCheck per disk ----
bad=0
t0=$(now)
i=0; while [ $i -lt "$N" ]; do i=$((i + 1)); lkh-scsipr quickCheck -t one 2>/dev/null || bad=$((bad + 1)); done
t1=$(now)
i=0; while [ $i -lt "$N" ]; do
    i=$((i + 1))
    sg_persist -n --in --read-keys "$A" 2>/dev/null | grep -qi "$KA" || bad=$((bad + 1))
    sg_persist -n --in --read-reservation "$A" 2>/dev/null | grep -qi "$KA" || bad=$((bad + 1))
done
t2=$(now)
q_lkh=$(ms_per "$t0" "$t1" "$N"); q_sg=$(ms_per "$t1" "$t2" "$N")
bench "quickcheck_ms_lkh $q_lkh"
bench "quickcheck_ms_sg_persist $q_sg"
bench "quickcheck_ratio $(echo "$q_lkh $q_sg" | awk '{ printf "%.2f", $1 / $2 }')"
[ $bad = 0 ]; check bench-quickcheck-runs-ok $? "$bad failed runs"
lkh-scsipr remove -t one

# ---- 2. takeover of 16 disks ----
T=$LKH_TGT/iscsi/$(target_iqn bench)/tpgt_1
for l in $(seq 0 15); do
    d=$(lio_fileio "bench$l" 4) || fatal "backstore $l"
    mkdir -p "$T/lun/lun_$l" && ln -s "$d" "$T/lun/lun_$l/bench$l" || fatal "lun $l"
done
mkdir "$T/np/$LKH_PORTAL" 2>/dev/null || fatal "portal"
echo 1 > "$T/attrib/generate_node_acls"; echo 1 > "$T/attrib/cache_dynamic_acls"
echo 0 > "$T/attrib/demo_mode_write_protect"; echo 0 > "$T/attrib/authentication"
echo 1 > "$T/enable"
node_login a bench "$LKH_PORTAL" a-bench >/dev/null || fatal "login a-bench"
node_login b bench "$LKH_PORTAL" b-bench >/dev/null || fatal "login b-bench"
# devs IFACE -> the 16 /dev/sdX of that session, in LUN order
devs() {
    for _s in /sys/class/iscsi_session/session*; do
        [ "$(cat "$_s/ifacename")" = "$1" ] || continue
        for _l in "$_s"/device/target*/*:*:*:*; do
            for _b in "$_l"/block/*; do [ -e "$_b" ] && echo "${_l##*:} /dev/${_b##*/}"; done
        done
    done | sort -n | awk '{ print $2 }'
}
i=0; while [ $i -lt 100 ] && { [ "$(devs a-bench | wc -l)" -lt 16 ] || [ "$(devs b-bench | wc -l)" -lt 16 ]; }; do sleep 0.2; i=$((i + 1)); done
DA=$(devs a-bench | tr '\n' ' '); DB=$(devs b-bench | tr '\n' ' ')
note "a: $DA"; note "b: $DB"
[ "$(echo $DB | wc -w)" = 16 ]; check bench-16-disks $? "$(echo $DB | wc -w) disks"
node_conf a bench "DEVICE=\"$DA\""
node_conf b bench "DEVICE=\"$DB\""
run on_node b lkh-scsipr restore -t bench && run on_node b lkh-scsipr remove -t bench
KB=$(cat /etc/lkhelpers/node-b/node.key)

script_takeover() {
    for d in $DB; do
        sg_turs "$d" >/dev/null 2>&1
        sg_persist -n --out --register-ignore --param-sark="$KB" "$d" >/dev/null 2>&1 || return 1
        sg_turs "$d" >/dev/null 2>&1
        h=$(sg_persist -n --in --read-reservation "$d" 2>/dev/null | awk '/Key=/ { sub(/.*Key=/, ""); print; exit }')
        if [ -n "$h" ] && [ "$h" != "$KB" ]; then
            sg_turs "$d" >/dev/null 2>&1
            sg_persist -n --out --preempt-abort --prout-type=5 --param-rk="$KB" --param-sark="$h" "$d" >/dev/null 2>&1 || return 1
        elif [ -z "$h" ]; then
            sg_persist -n --out --reserve --prout-type=5 --param-rk="$KB" "$d" >/dev/null 2>&1 || return 1
        fi
        sg_turs "$d" >/dev/null 2>&1
        sg_persist -n --in --read-keys "$d" 2>/dev/null | grep -qi "$KB" || return 1
        sg_persist -n --in --read-reservation "$d" 2>/dev/null | grep -qi "Key=$KB" || return 1
    done
}

bad=0; tl=0; ts=0
r=0
while [ $r -lt "$ROUNDS" ]; do
    r=$((r + 1))
    on_node a lkh-scsipr restore -t bench >/dev/null 2>&1 || bad=$((bad + 1))
    t0=$(now)
    LKHELPERS_CONF_DIR=/etc/lkhelpers/node-b LKHELPERS_RUN_DIR=/run/lkhelpers/node-b lkh-scsipr restore -t bench >/dev/null 2>&1 || bad=$((bad + 1))
    t1=$(now)
    on_node a lkh-scsipr restore -t bench >/dev/null 2>&1 || bad=$((bad + 1))
    t2=$(now)
    script_takeover || bad=$((bad + 1))
    t3=$(now)
    tl=$(echo "$tl $t0 $t1" | awk '{ print $1 + $3 - $2 }')
    ts=$(echo "$ts $t2 $t3" | awk '{ print $1 + $3 - $2 }')
    note "round $r: lkh $(ms_per "$t0" "$t1" 1) ms, sg_persist script $(ms_per "$t2" "$t3" 1) ms"
done
t_lkh=$(echo "$tl $ROUNDS" | awk '{ printf "%.1f", $1 * 1000 / $2 }')
t_sg=$(echo "$ts $ROUNDS" | awk '{ printf "%.1f", $1 * 1000 / $2 }')
bench "takeover16_ms_lkh $t_lkh"
bench "takeover16_ms_sg_persist $t_sg"
bench "takeover16_ratio $(echo "$t_lkh $t_sg" | awk '{ printf "%.3f", $1 / $2 }')"
[ $bad = 0 ]; check bench-takeover-runs-ok $? "$bad failed runs"
# the last takeover (by the script, with B's key) must have left B holding every disk
n=0; for d in $DA; do sg_turs "$d" >/dev/null 2>&1; sg_persist -n --in --read-reservation "$d" 2>/dev/null | grep -qi "Key=$KB" && n=$((n + 1)); done
[ $n = 16 ]; check bench-b-holds-16 $? "$n of 16"
