# Issue 30's benchmark, in one guest run: the floor probes (sg_floor: T0 = a static binary
# that does nothing, L = one PR IN at queue depth 1, s = guest CPU per command with n in
# flight), lkh-scsipr, the sg_persist script and mpathpersist (multipath-tools, which
# registers on the paths in parallel threads), at N LUs x P paths.
# Kernel command line: lkh.ns=1,16,64,128 lkh.ps=1,2,4 lkh.rounds=10 lkh.aslr=0|2.
# Prints "BENCH name value" lines (times in ms); checks only that every run worked.
# LIO over iSCSI on the guest loopback; one target with NMAX LUNs (sparse 1 MiB files) and
# four portals 127.0.0.1-4; node a and node b log in through P portals each (ifaces
# a-p0..., b-p0...); for P >= 2 every LU gets a dm-multipath map per node (dmsetup; node
# b's with the "mpath-<wwid>" uuid multipath-tools looks for).

NS=$(cmdline_arg lkh.ns | tr , ' '); NS=${NS:-1 16 64 128}
PS=$(cmdline_arg lkh.ps | tr , ' '); PS=${PS:-1 2 4}
R=$(cmdline_arg lkh.rounds); R=${R:-10}
echo "$(cmdline_arg lkh.aslr || echo 0)" > /proc/sys/kernel/randomize_va_space
NMAX=0; for n in $NS; do [ "$n" -gt $NMAX ] && NMAX=$n; done
F=/opt/floor/sg_floor
bench() { echo "BENCH $*"; }
# floor NAME ARGS...: runs sg_floor ARGS, prints its figures as "BENCH NAME_<field> value"
floor() {
    local _n=$1 _out; shift
    _out=$("$@" 2>/tmp/floor.err) || { cat /tmp/floor.err; echo "$_out"; return 1; }
    echo "$_out" | awk -v n="$_n" '/^FLOOR/ { for (i = 3; i <= NF; i++) { split($i, kv, "="); print "BENCH " n "_" kv[1] " " kv[2] } }'
}
note "N in {$NS}, P in {$PS}, $R rounds, randomize_va_space=$(cat /proc/sys/kernel/randomize_va_space), $(grep -c ^processor /proc/cpuinfo) vCPU, $(awk '/MemTotal/ { print $2 / 1024 " MiB" }' /proc/meminfo)"

# ---- the target ----
lio_init || fatal "LIO"
for i in 1 2 3 4; do ip addr add "127.0.0.$i/8" dev lo 2>/dev/null; done
lio_iscsi_export_many scale $NMAX s 127.0.0.1:3260 127.0.0.2:3260 127.0.0.3:3260 127.0.0.4:3260 || fatal "target"
# login NODE K: node NODE's path K (iface NODE-pK, portal 127.0.0.K+1), all NMAX LUs seen
login() {
    iscsi_login "$1-p$2" "$(node_iqn "$1")" "$(target_iqn scale)" "127.0.0.$(($2 + 1)):3260" >/dev/null ||
        fatal "login $1-p$2"
    _i=0
    while [ "$(iface_devs "$1-p$2" | wc -l)" -lt $NMAX ] && [ $_i -lt 600 ]; do sleep 0.2; _i=$((_i + 1)); done
    [ "$(iface_devs "$1-p$2" | wc -l)" -ge $NMAX ] || fatal "$1-p$2: $(iface_devs "$1-p$2" | wc -l) of $NMAX LUs"
}
# first N WORDS...: the first N words
first() { _n=$1; shift; echo "$@" | tr ' ' '\n' | head -n "$_n" | tr '\n' ' ' | sed 's/ *$//'; }
# wwid DEV -> multipath's WWID of the LU behind DEV (3 + the NAA designator)
wwid() { sed -n 's/^naa\./3/p' "/sys/block/${1#/dev/}/device/wwid"; }
# maps NODE P: one dm-multipath map per LU over the node's P paths, /dev/mapper/NODE<P>-<l>;
# prints them in LUN order
maps() {
    local _k _l=0 _m _t _uuid
    for _k in $(seq 0 $(($2 - 1))); do eval "_p$_k=\"$(iface_devs "$1-p$_k" | tr '\n' ' ')\""; done
    while [ $_l -lt $NMAX ]; do
        _l1=$((_l + 1)); _t=""
        for _k in $(seq 0 $(($2 - 1))); do
            eval "_d=\$(echo \$_p$_k | cut -d' ' -f$_l1)"
            _t="$_t $(_majmin "$_d") 1000"
        done
        _m="$1$2-$_l"
        _uuid=""
        [ "$1" = b ] && _uuid="--uuid mpath-$(wwid "$_d")"
        # shellcheck disable=SC2086
        DM_DISABLE_UDEV=1 dmsetup create "$_m" $_uuid --noudevsync \
            --table "0 $(blockdev --getsz "$_d") multipath 0 0 1 1 round-robin 0 $2 1$_t" >/dev/null 2>&1 ||
            fatal "map $_m"
        echo "/dev/mapper/$_m"
        _l=$((_l + 1))
    done
    DM_DISABLE_UDEV=1 dmsetup mknodes >/dev/null 2>&1
}

# ---- T0: a start of a static binary that does nothing ----
floor t0 "$F" run $((R * 3)) "$F" nop || fatal "floor t0"
floor t0_busybox "$F" run $((R * 3)) /bin/true

# mpathpersist from Debian's multipath-tools, unpacked into /opt/mpath by the harness
MP=""
if [ -x /opt/mpath/sbin/mpathpersist ]; then
    MP="env LD_LIBRARY_PATH=/opt/mpath/lib:/opt/mpath/usr/lib/x86_64-linux-gnu /opt/mpath/sbin/mpathpersist"
    mkdir -p /etc/multipath
    printf 'defaults {\n    user_friendly_names no\n    find_multipaths no\n}\n' > /etc/multipath.conf
fi

P_DONE=0
KA=""; KB=""
for P in $PS; do
    while [ $P_DONE -lt "$P" ]; do login a $P_DONE; login b $P_DONE; P_DONE=$((P_DONE + 1)); done
    note "P=$P: $(ls /sys/block | grep -c ^sd) sd devices, $(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo) MiB available"
    if [ "$P" = 1 ]; then
        DA=$(iface_devs a-p0 | tr '\n' ' '); DB=$(iface_devs b-p0 | tr '\n' ' ')
    else
        DA=$(maps a "$P" | tr '\n' ' '); DB=$(maps b "$P" | tr '\n' ' ')
    fi
    PATHS_B=$(for k in $(seq 0 $((P - 1))); do iface_devs "b-p$k"; done | tr '\n' ' ')
    SD_B=$(iface_devs b-p0 | tr '\n' ' ')
    # mpathpersist needs multipath maps: with one path, one-path maps of node b's
    if [ "$P" = 1 ] && [ -n "$MP" ]; then MB=$(maps b 1 | tr '\n' ' '); else MB=$DB; fi

    # ---- floor: L, and s from one READ KEYS on each of n paths in flight ----
    floor "p${P}_lat" "$F" lat $((R * 5)) "$(first 1 $SD_B)" || fatal "floor lat"
    for n in $NS; do
        floor "p${P}_batch$n" "$F" batch "$R" $(first "$n" $SD_B) || fatal "floor batch $n"
        # the same n commands, one thread each (the alternative to one thread and epoll)
        floor "p${P}_threads$n" "$F" threads "$R" $(first "$n" $SD_B)
        [ "$P" -gt 1 ] && floor "p${P}_batch$((n * P))" "$F" batch "$R" $(first $((n * P)) $PATHS_B)
    done

    for N in $NS; do
        q="q${N}p$P"; t="t${N}p$P"
        node_conf a "$q" DEVICE="\"$(first "$N" $DA)\""
        node_conf b "$t" DEVICE="\"$(first "$N" $DB)\"" FAILFASTTIMER=1
        node_conf a "$t" DEVICE="\"$(first "$N" $DA)\""
        # ---- lkh-scsipr quickCheck (node a holds the N LUs) ----
        on_node a lkh-scsipr restore -t "$q" >/dev/null 2>&1 || fatal "restore $q"
        [ -z "$KA" ] && KA=$(cat /etc/lkhelpers/node-a/node.key)
        floor "lkh_quickcheck_n${N}_p$P" on_node a "$F" run "$R" lkh-scsipr quickCheck -t "$q" || fail "lkh-quickcheck-$q" "runs failed"
        on_node a lkh-scsipr remove -t "$q" >/dev/null 2>&1
        # ---- lkh-scsipr restore of free disks (node b), remove between rounds ----
        bad=0
        for r in $(seq 1 "$R"); do
            on_node b lkh-scsipr remove -t "$t" >/dev/null 2>&1
            floor "lkh_restore_free_n${N}_p${P}_r$r" on_node b "$F" run 1 lkh-scsipr restore -t "$t" || bad=1
        done
        [ $bad = 0 ]; check "lkh-restore-free-$t" $?
        [ -z "$KB" ] && KB=$(cat /etc/lkhelpers/node-b/node.key)
        # ---- takeover under Pacemaker (no challenge window): a holds, b's OCF start ----
        bad=0
        for r in $(seq 1 "$R"); do
            on_node a lkh-scsipr restore -t "$t" >/dev/null 2>&1 || bad=1
            floor "lkh_takeover_ocf_n${N}_p${P}_r$r" on_node b env OCF_ROOT=/usr/lib/ocf \
                OCF_RESOURCE_INSTANCE="$t" OCF_RESKEY_device="$(first "$N" $DB)" \
                "$F" run 1 lkh-scsipr start || bad=1
            on_node b env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE="$t" \
                OCF_RESKEY_device="$(first "$N" $DB)" lkh-scsipr stop >/dev/null 2>&1
        done
        [ $bad = 0 ]; check "lkh-takeover-ocf-$t" $?
        # ---- takeover by LifeKeeper's restore from a dead owner: the challenge window ----
        on_node a lkh-scsipr restore -t "$t" >/dev/null 2>&1
        floor "lkh_takeover_lk_n${N}_p$P" on_node b "$F" run 1 lkh-scsipr restore -t "$t" ||
            fail "lkh-takeover-lk-$t"
        on_node b lkh-scsipr remove -t "$t" >/dev/null 2>&1
        on_node a lkh-scsipr remove -t "$t" >/dev/null 2>&1

        # ---- the sg_persist script (fence_scsi's way), path 0 of node a / every path of b ----
        QS=$(first "$N" $(iface_devs a-p0 | tr '\n' ' '))
        cat > /tmp/sg_qc.sh <<EOF
for d in $QS; do
    sg_persist -n --in --read-keys "\$d" | grep -qi "$KA" || exit 1
    sg_persist -n --in --read-reservation "\$d" | grep -qi "$KA" || exit 1
done
EOF
        on_node a lkh-scsipr restore -t "$q" >/dev/null 2>&1
        floor "sg_persist_quickcheck_n${N}_p$P" "$F" run 1 sh /tmp/sg_qc.sh || fail "sg-quickcheck-$q"
        # takeover: b registers on every path, preempts-and-aborts a, verifies
        {
            echo "set -- $(first "$N" $SD_B)"
            echo 'l=0; for d0 in "$@"; do l=$((l + 1))'
            k=0
            while [ $k -lt "$P" ]; do
                echo "  d=\$(echo '$(iface_devs "b-p$k" | tr '\n' ' ')' | cut -d' ' -f\$l)"
                echo "  sg_turs \"\$d\" >/dev/null 2>&1; sg_persist -n --out --register-ignore --param-sark=$KB \"\$d\" >/dev/null 2>&1 || exit 1"
                k=$((k + 1))
            done
            cat <<'EOF'
  sg_turs "$d0" >/dev/null 2>&1
  h=$(sg_persist -n --in --read-reservation "$d0" 2>/dev/null | awk '/Key=/ { sub(/.*Key=/, ""); print; exit }')
  if [ -n "$h" ] && [ "$h" != "$KB" ]; then
    sg_turs "$d0" >/dev/null 2>&1
    sg_persist -n --out --preempt-abort --prout-type=5 --param-rk="$KB" --param-sark="$h" "$d0" >/dev/null 2>&1 || exit 1
  elif [ -z "$h" ]; then
    sg_persist -n --out --reserve --prout-type=5 --param-rk="$KB" "$d0" >/dev/null 2>&1 || exit 1
  fi
  sg_turs "$d0" >/dev/null 2>&1
  sg_persist -n --in --read-keys "$d0" 2>/dev/null | grep -qi "$KB" || exit 1
  sg_persist -n --in --read-reservation "$d0" 2>/dev/null | grep -qi "Key=$KB" || exit 1
done
EOF
        } > /tmp/sg_to.sh
        floor "sg_persist_takeover_n${N}_p$P" env KB="$KB" "$F" run 1 sh /tmp/sg_to.sh || fail "sg-takeover-$t"
        # clean: b's key off every LU (b held them through the script)
        on_node b lkh-scsipr restore -t "$t" >/dev/null 2>&1; on_node b lkh-scsipr remove -t "$t" >/dev/null 2>&1
        on_node a lkh-scsipr remove -t "$q" >/dev/null 2>&1

        # ---- mpathpersist: the same reads and the same takeover on node b's maps ----
        if [ -n "$MP" ]; then
            MBN=$(first "$N" $MB)
            # mpathpersist acts only with the key multipath.conf gives (as fence_mpath sets it)
            printf 'defaults {\n    user_friendly_names no\n    find_multipaths no\n    reservation_key %s\n}\n' "$KB" > /etc/multipath.conf
            on_node a lkh-scsipr restore -t "$q" >/dev/null 2>&1
            cat > /tmp/mp_qc.sh <<EOF
for d in $MBN; do
    $MP --in -k "\$d" | grep -qi "$KA" || exit 1
    $MP --in -r "\$d" | grep -qi "$KA" || exit 1
done
EOF
            floor "mpathpersist_quickcheck_n${N}_p$P" "$F" run 1 sh /tmp/mp_qc.sh || fail "mp-quickcheck-$q"
            cat > /tmp/mp_to.sh <<EOF
for d in $MBN; do
    $MP --out --register-ignore --param-sark=$KB "\$d" >/dev/null 2>&1 || exit 1
    $MP --out --preempt-abort --prout-type=5 --param-rk=$KB --param-sark=$KA "\$d" >/dev/null 2>&1 || exit 1
    $MP --in -k "\$d" 2>/dev/null | grep -qi "$KB" || exit 1
    $MP --in -r "\$d" 2>/dev/null | grep -qi "$KB" || exit 1
done
EOF
            floor "mpathpersist_takeover_n${N}_p$P" "$F" run 1 sh /tmp/mp_to.sh || fail "mp-takeover-$t"
            on_node b lkh-scsipr restore -t "$t" >/dev/null 2>&1; on_node b lkh-scsipr remove -t "$t" >/dev/null 2>&1
            on_node a lkh-scsipr remove -t "$q" >/dev/null 2>&1
        fi
    done
    # the next P builds maps of its own
    [ "$P" -gt 1 ] && for m in $DA $DB; do DM_DISABLE_UDEV=1 dmsetup remove --noudevsync "${m##*/}" >/dev/null 2>&1; done
    [ "$P" = 1 ] && [ -n "$MP" ] && for m in $MB; do DM_DISABLE_UDEV=1 dmsetup remove --noudevsync "${m##*/}" >/dev/null 2>&1; done
done
pass bench-done
