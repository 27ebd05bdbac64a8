# NFS test-bed self-test: v3 and v4.2 mounts of the host's ganesha, outage and recovery.
nfs_net_up; check net-up $?
nfs_mount 3 /mnt/v3; check mount-v3 $?
nfs_mount 4 /mnt/v4; check mount-v4 $?
grep ' nfs' /proc/mounts
[ "$(cat /mnt/v3/hello.txt)" = hello-from-host ]; check read-v3 $?
[ "$(cat /mnt/v4/hello.txt)" = hello-from-host ]; check read-v4 $?
echo from-guest > /mnt/v3/guest.txt && [ "$(cat /mnt/v4/guest.txt)" = from-guest ]; check write-v3-read-v4 $?

for how in stop freeze; do
    nfs_server $how; check server-$how $?
    # both mounts at once: each stat must be killed by its 5 s timeout
    timeout -s KILL 5 stat /mnt/v3/hello.txt >/dev/null 2>&1 & p3=$!
    timeout -s KILL 5 stat /mnt/v4/hello.txt >/dev/null 2>&1 & p4=$!
    wait $p3; rc3=$?; wait $p4; rc4=$?
    note "stat with server $how: v3 rc=$rc3, v4 rc=$rc4"
    [ $rc3 -ne 0 ]; check stat-v3-fails-after-$how $? "rc=$rc3"
    [ $rc4 -ne 0 ]; check stat-v4-fails-after-$how $? "rc=$rc4"
    if [ $how = stop ]; then nfs_server start; else nfs_server thaw; fi; check server-back-after-$how $?
    for v in v3 v4; do
        t0=$(uptime_s)
        retry 50 timeout -s KILL 5 stat /mnt/$v/hello.txt >/dev/null 2>&1; rc=$?
        note "stat /mnt/$v recovered after $(awk "BEGIN{print $(uptime_s)-$t0}") s"
        check stat-$v-recovers-after-$how $rc
    done
done
nfs_server restart; check server-restart $?
retry 50 timeout -s KILL 5 stat /mnt/v4/guest.txt >/dev/null 2>&1; check stat-after-restart $?
umount /mnt/v3 && umount /mnt/v4; check umount $?
