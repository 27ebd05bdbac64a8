# lkh-platform doctor on node A of the test bed, with a disk (lkh-scsipr), a share (lkh-nas)
# and an address (lkh-ip) in service through gen/app's copies (lib/lk.sh): healthy (exit 0,
# every row and the JSON say so), then with the NFS server frozen (exit 1; the table and the
# JSON name the share, the others stay healthy), then thawed.

have_bin lkh-platform && have_bin lkh-scsipr && have_bin lkh-nas && have_bin lkh-ip ||
    fatal "lkh-platform, lkh-scsipr, lkh-nas and lkh-ip must be in the guest"
# the network first: the share is mounted a few seconds later, as in nas_vm.sh (mounted at once
# after the network came up, nfs-ganesha refused the first MOUNTs with MNT3ERR_ACCES)
nfs_net_up; check net-up $?
shared_disk_setup a b >/dev/null || fatal "shared disk setup failed"
A=$(node_dev a)
VIP=10.0.2.50

node_conf a disk "DEVICE=$A" TIMEOUT=10
node_conf a share SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/doctor VERSION=3 TIMEOUT=8
node_conf a vip "ADDRESS=$VIP/24" INTERFACE=eth0
for k in scsipr nas ip; do lk_wrappers $k || fatal "lkh-$k genapp failed"; done
lk_create a scsipr disk && lk_create a nas share && lk_create a ip vip; check layout $?
for t in disk share vip; do expect_rc restore-$t 0 lk_call a restore $t; done
# node a's defender, as the package's lkh-scsipr-watch.service runs it
LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a \
    lkh-scsipr watch > /tmp/watch-a.log 2>&1 &
sleep 1.5

# not in /tmp: the kits refuse a defaults file in a directory others can write to
mkdir -p /etc/lkh-test && echo "LKCHECKINTERVAL=120" > /etc/lkh-test/LifeKeeper-a
doctor() {
    on_node a lkh-platform doctor --no-network --timeout 20 --lkroot "$(lk_root a)" \
        --defaults /etc/lkh-test/LifeKeeper-a "$@"
}
# has_row OUT KIT TAG STATE EXIT: the table has that row
has_row() { echo "$1" | grep -Eq "^  lkh-$2 +$3 +$4 +$5 "; }

out=$(doctor 2>&1); rc=$?
echo "$out"
[ $rc = 0 ]; check doctor-healthy-exit-0 $? "rc=$rc"
echo "$out" | grep -qx "result: healthy"; check doctor-healthy-result $?
has_row "$out" scsipr disk healthy 0 && has_row "$out" nas share healthy 0 && has_row "$out" ip vip healthy 0
check doctor-healthy-rows $?
echo "$out" | grep -q "^lifekeeper: platform record matches this node; 3 gen/app resources using lkhelpers"
check doctor-lifekeeper-wiring $?
json=$(doctor --json 2>/dev/null); rc=$?
echo "$json"
[ $rc = 0 ] && echo "$json" | grep -q '"healthy":true,"exit":0'; check doctor-json-healthy $? "rc=$rc"
echo "$json" | grep -q '"kit":"nas","tag":"share","found_in":\["conf","gen/app","run state"\],"state":"healthy"'
check doctor-json-share-healthy $?
echo "$json" | grep -q '"defender":{"state":"running","running":true'; check doctor-json-defender $?

nfs_server freeze; check server-frozen $?
out=$(doctor 2>&1); rc=$?
echo "$out"
[ $rc = 1 ]; check doctor-broken-exit-1 $? "rc=$rc"
has_row "$out" nas share FAILED 1; check doctor-broken-names-share $?
has_row "$out" scsipr disk healthy 0 && has_row "$out" ip vip healthy 0; check doctor-broken-others-healthy $?
echo "$out" | grep -q "^  - share (lkh-nas): failed: "; check doctor-broken-result $?
json=$(doctor --json 2>/dev/null); rc=$?
echo "$json"
[ $rc = 1 ] && echo "$json" | grep -q '"healthy":false,"exit":1' &&
    echo "$json" | grep -q '"tag":"share","found_in":\[[^]]*\],"state":"failed","healthy":false,"problem":true,"exit":1'
check doctor-json-names-share $? "rc=$rc"
nfs_server thaw; check server-thawed $?
