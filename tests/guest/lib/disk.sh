# shellcheck shell=sh
# High-level shared-disk setups for scenarios.

# shared_disk_setup NODE... : one 64 MiB LU "shared0" (unit serial lkh-shared0) exported over
# iSCSI on two portals, 127.0.0.1:3260 and 127.0.0.2:3260 (the second one is for multipath);
# each NODE logs in through the first portal with its own initiator name, so each node has its
# own I_T nexus and /dev/sdX to the same LU. Prints "node NODE = /dev/sdX (IQN)" lines.
# Default nodes: a b. The target is LIO, or tgt (LUN 1 of tgtd 0) with lkh.target=tgt.
shared_disk_setup() {
    [ $# -gt 0 ] || set -- a b
    if [ "$(lkh_target)" = tgt ]; then
        tgt_start 0 "$LKH_PORTAL" "$LKH_PORTAL2" || { echo "shared_disk_setup: tgtd failed" >&2; return 1; }
        tgt_export 0 shared0 64 || return 1
    else
        lio_init || { echo "shared_disk_setup: LIO modules failed" >&2; return 1; }
        _bs=$(lio_fileio shared0 64) || return 1
        lio_iscsi_export shared0 "$_bs" "$LKH_PORTAL" "$LKH_PORTAL2" || return 1
    fi
    for _node in "$@"; do
        _dev=$(node_login "$_node") || { echo "shared_disk_setup: login of node $_node failed" >&2; return 1; }
        echo "node $_node = $_dev ($(node_iqn "$_node"))"
    done
}

# ---- multipath: two paths per node, joined with dmsetup (no multipathd) ----
LKH_PORTAL2=127.0.0.2:3260

# mpath_setup NODE: logs NODE in a second time through the second portal (iface NODE-p1,
# same initiator name: a second I_T nexus of the same node) and creates the dm-multipath
# device /dev/mapper/mpath-NODE over both paths (round-robin, no queue_if_no_path, so I/O
# fails when every path is down). Prints the device. Needs shared_disk_setup first.
mpath_setup() {
    modprobe dm_multipath && modprobe dm_round_robin || return 1
    _p0=$(node_dev "$1") || { echo "mpath_setup: node $1 not logged in" >&2; return 1; }
    _p1=$(node_login "$1" shared0 "$LKH_PORTAL2" "$1-p1") || return 1
    DM_DISABLE_UDEV=1 dmsetup create "mpath-$1" --noudevsync --table "$(_mpath_table "$1")" || return 1
    DM_DISABLE_UDEV=1 dmsetup mknodes "mpath-$1" >/dev/null 2>&1
    retry 50 test -b "/dev/mapper/mpath-$1" && echo "/dev/mapper/mpath-$1"
}

_mpath_table() {
    local _p0 _p1
    _p0=$(iface_dev "$1") && _p1=$(iface_dev "$1-p1") || return 1
    echo "0 $(blockdev --getsz "$_p0") multipath 0 0 1 1 round-robin 0 2 1 $(_majmin "$_p0") 1000 $(_majmin "$_p1") 1000"
}

# node_paths NODE -> the node's path devices (path 0 first)
node_paths() { iface_dev "$1"; iface_dev "$1-p1"; }

_majmin() { _x=$(basename "$(readlink -f "$1")"); cat "/sys/class/block/$_x/dev"; }

# mpath_status NODE -> `dmsetup status` of the node's multipath device (path states A/F)
mpath_status() { dmsetup status "mpath-$1"; }

# path_down NODE IDX: takes path IDX (0 or 1) of NODE offline (the SCSI device refuses every
# command, like a dead link); path_up NODE IDX brings it back and reinstates it in dm.
path_down() { _d=$(_path "$1" "$2") || return 1; echo offline > "/sys/block/${_d#/dev/}/device/state"; }
path_up() {
    _d=$(_path "$1" "$2") || return 1
    echo running > "/sys/block/${_d#/dev/}/device/state"
    dmsetup message "mpath-$1" 0 reinstate_path "$(_majmin "$_d")" 2>/dev/null
    return 0
}
_path() { if [ "$2" = 0 ]; then iface_dev "$1"; else iface_dev "$1-p$2"; fi; }

# ---- WWPN flip: the node's nexus replaced by one with a new initiator name ----

# node_flip NODE NEW_IQN: logs out every path of NODE, gives its ifaces the initiator name
# NEW_IQN and logs in again (what a virtual-FC WWPN flip at live migration does: same node,
# same LU, a new I_T nexus without the old registrations). A multipath device of the node is
# reloaded with the new paths. Prints the node's new /dev/sdX.
node_flip() {
    local _had_p1=0 _if
    iface_dev "$1-p1" >/dev/null 2>&1 && _had_p1=1
    for _if in "$1" "$1-p1"; do
        iscsi_logout "$_if" || return 1
        iscsiadm -m node -I "$_if" -o delete >/dev/null 2>&1
    done
    echo "$2" > "/run/lkh/iqn-$1"
    node_login "$1" >/dev/null || return 1
    if [ $_had_p1 = 1 ]; then
        node_login "$1" shared0 "$LKH_PORTAL2" "$1-p1" >/dev/null || return 1
        if dmsetup info "mpath-$1" >/dev/null 2>&1; then
            DM_DISABLE_UDEV=1 dmsetup reload "mpath-$1" --table "$(_mpath_table "$1")" &&
                DM_DISABLE_UDEV=1 dmsetup resume "mpath-$1" --noudevsync || return 1
        fi
    fi
    node_dev "$1"
}

# ---- All Paths Down ----

# apd_begin [LU]: the target stops serving LU (default shared0) on every portal (its TPG is
# disabled: sessions drop, logins are refused); after the initiator's replacement timeout
# (5 s) every command on every node's device fails. apd_end [LU] re-enables it; the
# initiators log back in by themselves within a few seconds.
# (Removing the LUN 0 mapping instead does not make the LU vanish: LIO then answers LUN 0
# from a virtual read-only LUN, so TEST UNIT READY and reads still succeed.)
# On tgt the daemon is frozen instead (SIGSTOP): commands time out, then the sessions fail.
apd_begin() {
    if [ "$(lkh_target)" = tgt ]; then tgt_freeze 0; else echo 0 > "$(lio_tpg "${1:-shared0}")/enable"; fi
}
apd_end() {
    if [ "$(lkh_target)" = tgt ]; then tgt_thaw 0; else echo 1 > "$(lio_tpg "${1:-shared0}")/enable"; fi
}

# ---- a second LU; a target that loses its PR state ----

# second_lu: a second LU (serial lkh-shared1) on the target every node is logged in to, seen
# by every session after a rescan
second_lu() {
    if [ "$(lkh_target)" = tgt ]; then
        truncate -s $((16 * 1024 * 1024)) /tmp/shared1.img
        tgtadm -C 0 --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 -b /tmp/shared1.img || return 1
        tgtadm -C 0 --lld iscsi --op update --mode logicalunit --tid 1 --lun 2 --params scsi_sn=lkh-shared1 || return 1
    else
        _bs=$(lio_fileio shared1 16) || return 1
        _tpg=$LKH_TGT/iscsi/$(target_iqn shared0)/tpgt_1
        mkdir -p "$_tpg/lun/lun_1" && ln -s "$_bs" "$_tpg/lun/lun_1/shared1" || return 1
    fi
    iscsiadm -m session --rescan >/dev/null
}
# lu1_dev NODE -> the node's /dev/sdX of the second LU (through its primary iface)
lu1_dev() {
    for _s in $(_iface_sessions "$1"); do
        for _b in "$_s"/device/target*/*/block/*; do
            [ -e "$_b" ] && grep -q lkh-shared1 "${_b%/block/*}/vpd_pg80" 2>/dev/null &&
                { echo "/dev/${_b##*/}"; return 0; }
        done
    done
    return 1
}

# lu_power_cycle: the LU loses its persistent-reservation state the way a target restart
# does (PRgeneration back to 0): tgt's daemon is killed and started again (it holds PR state
# in memory only); LIO's backstore is re-created (its PR state goes with it) with the same
# file, serial and LUN. The initiators log back in by themselves (wait_answers).
lu_power_cycle() {
    if [ "$(lkh_target)" = tgt ]; then
        kill -9 "$(cat /run/lkh/tgtd-0.pid)" 2>/dev/null; rm -f /run/lkh/tgtd-0.pid
        sleep 0.5
        tgt_start 0 "$LKH_PORTAL" "$LKH_PORTAL2" && tgt_export 0 shared0 64
    else
        _tpg=$(lio_tpg shared0); _bs=$LKH_TGT/core/fileio_0/shared0
        echo 0 > "$_tpg/enable"
        rm "$_tpg/lun/lun_0/shared0" && rmdir "$_tpg/lun/lun_0" && rmdir "$_bs" || return 1
        lio_fileio shared0 64 >/dev/null || return 1
        mkdir "$_tpg/lun/lun_0" && ln -s "$_bs" "$_tpg/lun/lun_0/shared0" || return 1
        echo 1 > "$_tpg/enable"
    fi
}

# ---- a disk without persistent reservations ----

# nopr_disk virtio|scsi -> the extra disk attached with Disk::VirtioBlk (/dev/vdX, no SCSI at
# all) or Disk::ScsiHd (QEMU's emulated SCSI disk: PR commands are rejected)
nopr_disk() {
    modprobe virtio_pci
    case $1 in
    virtio)
        modprobe virtio_blk
        retry 50 _first_block vd ;;
    scsi)
        modprobe virtio_scsi; modprobe sd_mod
        retry 50 _qemu_sd ;;
    *) echo "nopr_disk: virtio|scsi" >&2; return 1 ;;
    esac
}
_first_block() { for _b in /sys/block/"$1"*; do [ -e "$_b" ] && [ -b "/dev/${_b##*/}" ] && { echo "/dev/${_b##*/}"; return 0; }; done; return 1; }
_qemu_sd() {
    for _b in /sys/block/sd*; do
        [ "$(cat "$_b/device/vendor" 2>/dev/null | tr -d ' ')" = QEMU ] && [ -b "/dev/${_b##*/}" ] &&
            { echo "/dev/${_b##*/}"; return 0; }
    done
    return 1
}
