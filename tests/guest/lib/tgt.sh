# shellcheck shell=sh
# tgt target side (the second SCSI target beside LIO, selected with lkh.target=tgt on the
# kernel command line, see `lkh_target`): the userspace iSCSI target tgtd, configured with
# tgtadm; the disk is LUN 1 (LUN 0 is tgt's controller). Each daemon has its own control
# port (`tgtadm -C N`). Deviations from LIO the kit has to handle: no PREEMPT AND ABORT, no
# READ FULL STATUS, VPD 0x83 designators built from target id and LUN only (two daemons give
# two different LUs the same ones), both missing commands claimed by REPORT SUPPORTED
# OPERATION CODES, some UNIT ATTENTIONs sent to the wrong nexus.

# lkh_target -> lio or tgt (kernel command line lkh.target=, default lio)
lkh_target() { cmdline_arg lkh.target || echo lio; }

# tgt_start CTL PORTAL... : starts tgtd number CTL (control port CTL) listening on PORTAL...
# The daemon is started from a subshell, so it is not a child of the scenario's shell (like
# iscsid): a scenario's plain `wait` would otherwise wait for tgtd forever.
tgt_start() {
    local _c=$1 _p; shift
    mkdir -p /var/run/tgtd /run/lkh
    [ -f "/run/lkh/tgtd-$_c.pid" ] && return 0
    (
        tgtd -f -C "$_c" --iscsi "portal=$1" >"/tmp/tgtd-$_c.log" 2>&1 &
        echo $! > "/run/lkh/tgtd-$_c.pid"
    )
    retry 50 tgtadm -C "$_c" --lld iscsi --op show --mode sys >/dev/null || return 1
    shift
    for _p in "$@"; do
        tgtadm -C "$_c" --lld iscsi --op new --mode portal --param "portal=$_p" || return 1
    done
    modprobe sd_mod; modprobe sg
    return 0
}

# tgt_export CTL NAME SIZE_MB [SERIAL]: target tid 1 of daemon CTL named target_iqn NAME,
# a file /tmp/NAME.img as LUN 1, unit serial SERIAL (default lkh-NAME), any initiator
tgt_export() {
    local _c=$1 _n=$2 _sz=$3 _sn=${4:-lkh-$2}
    truncate -s $((_sz * 1024 * 1024)) "/tmp/$_n.img"
    tgtadm -C "$_c" --lld iscsi --op new --mode target --tid 1 -T "$(target_iqn "$_n")" || return 1
    tgtadm -C "$_c" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "/tmp/$_n.img" || return 1
    tgtadm -C "$_c" --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 \
        --params "scsi_sn=$_sn" || return 1
    tgtadm -C "$_c" --lld iscsi --op bind --mode target --tid 1 -I ALL
}

# tgt_freeze CTL / tgt_thaw CTL: stops / continues daemon CTL (SIGSTOP: a frozen target that
# keeps its TCP connections but answers nothing)
tgt_freeze() { kill -STOP "$(cat "/run/lkh/tgtd-$1.pid")"; }
tgt_thaw() { kill -CONT "$(cat "/run/lkh/tgtd-$1.pid")"; }
