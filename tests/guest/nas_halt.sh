# lkh-nas policies that end the scenario: LKNFSTIMEOUT from /etc/default/LifeKeeper bounds the
# probe and IO check below TIMEOUT; ON_FAILURE=halt powers the node off when recover fails.
have_bin lkh-nas || fatal "lkh-nas is not in the guest"
nfs_net_up; check net-up $?
mkdir -p /etc/lkhelpers /etc/default /run; umask 022
echo 'LKNFSTIMEOUT=2' > /etc/default/LifeKeeper
printf 'SERVER=10.0.2.2\nEXPORT=/export\nMOUNTPOINT=/mnt/h\nVERSION=3\nTIMEOUT=10\nON_FAILURE=halt\n' > /etc/lkhelpers/h.conf
lkh-nas restore -t h; check restore $?
lkh-nas quickCheck -t h; check qc-healthy $?

nfs_server freeze; check server-freeze $?
t0=$(uptime_s)
lkh-nas quickCheck -t h 2> /tmp/qc.err; rc=$?
t1=$(uptime_s); took=$(awk "BEGIN{print $t1-$t0}")
cat /tmp/qc.err
[ $rc = 1 ]; check qc-frozen-fails $? "rc=$rc"
# LKNFSTIMEOUT=2 s, not TIMEOUT=10 s, bounds the verdict
awk "BEGIN{exit !($took <= 3)}"; check qc-frozen-bounded-by-lknfstimeout $? "took $took s"
nfs_server thaw; check server-thaw $?
retry 50 lkh-nas quickCheck -t h 2>/dev/null; check qc-after-thaw $?

nfs_server stop; check server-stop $?
pass before-halt
lkh-nas recover -t h
fail still-running-after-halt "recover with ON_FAILURE=halt returned instead of powering off"
