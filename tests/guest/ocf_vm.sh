# ocf-tester (resource-agents' own script, copied in with xmllint and ra-api-1.dtd) against
# lkh-nas on the host's nfs-ganesha and lkh-scsipr on the LIO LU, both called as Pacemaker
# calls them: through a link under resource.d, parameters in OCF_RESKEY_*. Then what
# ocf-tester cannot see: the mount and the reservation are really there after start and gone
# after stop, and a second node's probe/start against a held LU (7, then 1).
have_bin lkh-nas || fatal "lkh-nas is not in the guest"
have_bin lkh-scsipr || fatal "lkh-scsipr is not in the guest"
R=/usr/lib/ocf/resource.d/lkhelpers
export PATH="$PATH:/usr/sbin:/usr/bin"
mkdir -p $R /etc/lkhelpers /run
ln -s /opt/lkh/bin/lkh-nas $R/nas
ln -s /opt/lkh/bin/lkh-scsipr $R/scsipr
echo '<a/>' | xmllint --noout -; check xmllint-runs $?

# tester NAME AGENT -o k=v...: ocf-tester's whole sequence, its output in /tmp/NAME.out
tester() {
    _n=$1; shift
    ocf-tester -n "$_n" "$@" > /tmp/$_n.out 2>&1; _rc=$?
    cat /tmp/$_n.out
    check $_n-ocf-tester $_rc "ocf-tester rc=$_rc"
    grep -q ' passed all tests' /tmp/$_n.out; check $_n-ocf-tester-passed $? "$(tail -5 /tmp/$_n.out)"
}
# ocf NAME WANT AGENT ACTION [K=V...]: one agent call as Pacemaker makes it
ocf() {
    _n=$1 _want=$2 _agent=$3 _action=$4; shift 4
    env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=$_agent OCF_RESKEY_CRM_meta_timeout=20000 \
        OCF_RESKEY_crm_feature_set=3.16.2 "$@" $R/$_agent $_action > /tmp/$_n.err 2>&1
    _rc=$?
    cat /tmp/$_n.err
    [ "$_rc" = "$_want" ]; check "$_n" $? "want rc=$_want got rc=$_rc: $(cat /tmp/$_n.err)"
}

# ---- lkh-nas: NFS v3 from 10.0.2.2:/export -------------------------------------------
nfs_net_up; check net-up $?
tester nas -o server=10.0.2.2 -o export=/export -o mountpoint=/mnt/ocf -o version=3 $R/nas
[ "$(mounted /mnt/ocf)" = 0 ]; check nas-ocf-tester-left-nothing $?
NAS="OCF_RESKEY_server=10.0.2.2 OCF_RESKEY_export=/export OCF_RESKEY_mountpoint=/mnt/ocf OCF_RESKEY_version=4.2"
ocf nas-start 0 nas start $NAS
[ "$(mounted /mnt/ocf)" = 1 ] && [ "$(cat /mnt/ocf/hello.txt)" = hello-from-host ]
check nas-mounted-after-start $?
ocf nas-monitor-deep 0 nas monitor $NAS OCF_CHECK_LEVEL=20
ocf nas-stop 0 nas stop $NAS
[ "$(mounted /mnt/ocf)" = 0 ]; check nas-unmounted-after-stop $?
ocf nas-validate-bad-version 6 nas validate-all $NAS OCF_RESKEY_version=5
grep -q 'ocf-exit-reason:parameter version (OCF_RESKEY_version): VERSION=.5. is not one of' /tmp/nas-validate-bad-version.err
check nas-validate-names-the-parameter $? "$(cat /tmp/nas-validate-bad-version.err)"

# ---- lkh-scsipr: one LU, nodes a and b (one I_T nexus each) ---------------------------
shared_disk_setup a b || fatal "shared disk setup failed"
A=$(node_dev a); B=$(node_dev b)
mkdir -p /etc/lkhelpers/node-a /run/lkhelpers/node-a
LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a \
    tester scsipr -o device="$A" $R/scsipr
[ "$(pr_holder "$A")" = none ]; check scsipr-ocf-tester-left-no-holder $? "holder $(pr_holder "$A")"
ocf scsipr-start 0 scsipr start OCF_RESKEY_device="$A" \
    LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a
pr_holder "$A" > /dev/null
[ "$(pr_holder "$A")" = "$(node_iqn a)" ]; check scsipr-holds-after-start $? "holder $(pr_holder "$A")"
mkdir -p /etc/lkhelpers/node-b /run/lkhelpers/node-b
B_ENV="LKHELPERS_CONF_DIR=/etc/lkhelpers/node-b LKHELPERS_RUN_DIR=/run/lkhelpers/node-b"
# node b's probe: not running there (b never started it)
ocf scsipr-b-probe-not-running 7 scsipr monitor OCF_RESKEY_device="$B" $B_ENV OCF_RESKEY_CRM_meta_interval=0
ocf scsipr-a-monitor 0 scsipr monitor OCF_RESKEY_device="$A" \
    LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a
ocf scsipr-stop 0 scsipr stop OCF_RESKEY_device="$A" \
    LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a
pr_holder "$A" > /dev/null
[ "$(pr_holder "$A")" = none ]; check scsipr-free-after-stop $? "holder $(pr_holder "$A")"
[ -z "$(pr_keys "$A")" ]; check scsipr-no-keys-after-stop $? "keys $(pr_keys "$A")"

# ---- a Pacemaker resource fenced on node a is not restarted in place to take the disk back
# (issue 28): node b's start takes it (the cluster moved it there), a's watch judges a's
# resource by the parameters its start stored and finds it fenced, a's monitor says so, and
# after a's stop, a's start (Pacemaker's restart in place) is refused; b keeps the disk ----
A_ENV="LKHELPERS_CONF_DIR=/etc/lkhelpers/node-a LKHELPERS_RUN_DIR=/run/lkhelpers/node-a"
ocf scsipr-a-start-again 0 scsipr start OCF_RESKEY_device="$A" OCF_RESKEY_on_fenced=event $A_ENV
ocf scsipr-b-start-takes-over 0 scsipr start OCF_RESKEY_device="$B" $B_ENV
pr_holder "$A" > /dev/null
[ "$(pr_holder "$A")" = "$(node_iqn b)" ]; check scsipr-b-holds $? "holder $(pr_holder "$A")"
env $A_ENV lkh-scsipr watch --once > /tmp/watch-ocf.log 2>&1; rc=$?
cat /tmp/watch-ocf.log
[ $rc = 3 ] && grep -q "scsipr: .*fenced" /tmp/watch-ocf.log; check scsipr-watch-judges-ocf-resource $? "rc=$rc"
ocf scsipr-a-monitor-fenced 7 scsipr monitor OCF_RESKEY_device="$A" OCF_RESKEY_on_fenced=event $A_ENV
ocf scsipr-a-stop-fenced 0 scsipr stop OCF_RESKEY_device="$A" OCF_RESKEY_on_fenced=event $A_ENV
ocf scsipr-a-restart-refused 1 scsipr start OCF_RESKEY_device="$A" OCF_RESKEY_on_fenced=event $A_ENV
grep -q "lost the disk to another node" /tmp/scsipr-a-restart-refused.err; check scsipr-a-restart-says-why $?
pr_holder "$A" > /dev/null
[ "$(pr_holder "$A")" = "$(node_iqn b)" ] && ! pr_keys "$A" | grep -qix "$(sed 's/^0x0*/0x/' /etc/lkhelpers/node-a/node.key)"
check scsipr-b-keeps-the-disk $? "holder $(pr_holder "$A") keys $(pr_keys "$A" | xargs)"
ocf scsipr-b-stop 0 scsipr stop OCF_RESKEY_device="$B" $B_ENV
pass ocf-done
