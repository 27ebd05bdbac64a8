# All Paths Down with many LUs (issue 30): one resource of 64 LUs, each behind two paths
# (dm-multipath), on LIO. Healthy first; then the target stops serving every LU on every
# portal: quickCheck fails within TIMEOUT by itself (never hangs, never the watchdog),
# `status -t TAG --json` reports each of the 64 LUs as not answering, remove does not block;
# when the target is back, restore takes the disks again and quickCheck is healthy.

N=64
lio_init || fatal "LIO"
ip addr add 127.0.0.2/8 dev lo 2>/dev/null
lio_iscsi_export_many apd $N a "$LKH_PORTAL" "$LKH_PORTAL2" || fatal "target"
for k in 0 1; do
    iscsi_login "a-p$k" "$(node_iqn a)" "$(target_iqn apd)" "127.0.0.$((k + 1)):3260" >/dev/null || fatal "login a-p$k"
    i=0
    while [ "$(iface_devs "a-p$k" | wc -l)" -lt $N ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
done
P0=$(iface_devs a-p0 | tr '\n' ' '); P1=$(iface_devs a-p1 | tr '\n' ' ')
[ "$(echo $P0 | wc -w)" = $N ] && [ "$(echo $P1 | wc -w)" = $N ]; check apd-paths-seen $? "$(echo $P0 | wc -w) + $(echo $P1 | wc -w)"
D=""
l=1
while [ $l -le $N ]; do
    a=$(echo $P0 | cut -d' ' -f$l); b=$(echo $P1 | cut -d' ' -f$l)
    DM_DISABLE_UDEV=1 dmsetup create "apd-$l" --noudevsync --table \
        "0 $(blockdev --getsz "$a") multipath 0 0 1 1 round-robin 0 2 1 $(_majmin "$a") 1000 $(_majmin "$b") 1000" || fatal "map $l"
    D="$D /dev/mapper/apd-$l"
    l=$((l + 1))
done
DM_DISABLE_UDEV=1 dmsetup mknodes >/dev/null 2>&1
node_conf a many DEVICE="\"$D\"" TIMEOUT=20
scsipr() { on_node a lkh-scsipr "$@"; }

expect_rc apd-restore 0 scsipr restore -t many
expect_rc apd-quickcheck 0 scsipr quickCheck -t many

apd_begin apd
t0=$(uptime_s)
out=$(timeout 60 sh -c 'LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a lkh-scsipr quickCheck -t many' 2>&1); rc=$?
t1=$(uptime_s)
echo "$out" | cut -c1-400
took=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }')
note "quickCheck of $N LUs during All Paths Down: rc=$rc after $took s (TIMEOUT=20)"
# exit 1 from the kit itself, well inside TIMEOUT (the watchdog would say "did not finish")
[ $rc = 1 ] && ! echo "$out" | grep -q "did not finish" && echo "$took" | awk '{ exit !($1 < 15) }'
check apd-quickcheck-fails-bounded $? "rc=$rc after $took s (124 = hung until timeout(1))"
out=$(timeout 60 sh -c 'LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a lkh-scsipr status -t many --json' 2>/dev/null); rc=$?
n=$(echo "$out" | grep -o '"verdict":"no answer"' | wc -l)
[ $rc = 1 ] && [ "$n" -ge $N ]; check apd-status-every-lu $? "rc=$rc, $n LU verdicts 'no answer'"
t0=$(uptime_s)
expect_rc apd-remove-does-not-block 0 timeout 60 sh -c 'LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a lkh-scsipr remove -t many'
note "remove of $N LUs during All Paths Down: $(echo "$t0 $(uptime_s)" | awk '{ printf "%.1f", $2 - $1 }') s"
apd_end apd

ok=1
i=0
while [ $i -lt 40 ]; do
    i=$((i + 1))
    scsipr restore -t many >/tmp/apd.log 2>&1 && scsipr quickCheck -t many >>/tmp/apd.log 2>&1 && { ok=0; break; }
    sleep 1
done
tail -c 600 /tmp/apd.log
check apd-back $ok "after $i tries"
expect_rc apd-remove 0 scsipr remove -t many
