# shellcheck shell=sh
# LIO target side (configfs written directly; no targetcli): fileio backstores in tmpfs,
# exported over iSCSI on the guest loopback. iSCSI rather than tcm_loop because PERSISTENT
# RESERVE OUT / PREEMPT AND ABORT deadlocks the LU on tcm_loop with the 6.1 kernel.

LKH_TGT=/sys/kernel/config/target
LKH_TARGET_PREFIX=iqn.2026-01.test.lkh.target

# lio_init: configfs + target core (idempotent)
lio_init() {
    [ -d $LKH_TGT/core ] && return 0
    mkdir -p /etc/target/pr            # db_root for APTPL files; must exist before the module loads
    modprobe configfs
    grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config
    modprobe target_core_mod && modprobe target_core_file || return 1
    modprobe sd_mod; modprobe sg
    # the iSCSI target needs the crc32c hash at login even without digests
    modprobe crc32c_generic
    modprobe iscsi_target_mod || return 1
}

# lio_fileio NAME SIZE_MB -> prints the backstore directory (a file /tmp/NAME.img)
lio_fileio() {
    _d=$LKH_TGT/core/fileio_0/$1
    if [ ! -d "$_d" ]; then
        truncate -s $(($2 * 1024 * 1024)) "/tmp/$1.img"
        mkdir -p "$_d"
        echo "fd_dev_name=/tmp/$1.img,fd_dev_size=$(($2 * 1024 * 1024))" > "$_d/control"
        echo "lkh-$1" > "$_d/wwn/vpd_unit_serial"       # same serial through every path
        echo 1 > "$_d/enable" || return 1
    fi
    echo "$_d"
}

# target_iqn NAME -> the iSCSI target name that exports backstore NAME
target_iqn() { echo "$LKH_TARGET_PREFIX:$1"; }

# lio_iscsi_export NAME BACKSTORE_DIR PORTAL... : one target, TPG 1, LUN 0, any initiator
# may log in (demo mode ACLs), one network portal per PORTAL (ip:port)
lio_iscsi_export() {
    _name=$1 _bs=$2; shift 2
    _tpg=$LKH_TGT/iscsi/$(target_iqn "$_name")/tpgt_1
    mkdir -p "$_tpg/lun/lun_0" || return 1
    [ -L "$_tpg/lun/lun_0/$_name" ] || ln -s "$_bs" "$_tpg/lun/lun_0/$_name"
    _lio_open_tpg "$_tpg" "$@"
}

# lio_iscsi_export_many NAME COUNT PREFIX PORTAL... : one target NAME with COUNT LUNs of 1 MiB,
# LUN l backed by PREFIX and l as four hex digits (LIO makes the NAA designator from the hex
# digits of the unit serial number: four per LU keep them apart), one network portal per
# PORTAL (ip:port), any initiator may log in
lio_iscsi_export_many() {
    _name=$1 _count=$2 _prefix=$3; shift 3
    _tpg=$LKH_TGT/iscsi/$(target_iqn "$_name")/tpgt_1
    _l=0
    while [ $_l -lt "$_count" ]; do
        _x=$(printf '%s%04x' "$_prefix" $_l)
        _bs=$(lio_fileio "$_x" 1) || return 1
        mkdir -p "$_tpg/lun/lun_$_l" && ln -s "$_bs" "$_tpg/lun/lun_$_l/$_x" || return 1
        _l=$((_l + 1))
    done
    _lio_open_tpg "$_tpg" "$@"
}

# _lio_open_tpg TPG_DIR PORTAL... : the portals, demo mode ACLs (any initiator), enabled
_lio_open_tpg() {
    _tpg=$1; shift
    for _p in "$@"; do
        [ -d "$_tpg/np/$_p" ] || mkdir "$_tpg/np/$_p" || return 1
    done
    echo 1 > "$_tpg/attrib/generate_node_acls"
    echo 1 > "$_tpg/attrib/cache_dynamic_acls"
    echo 0 > "$_tpg/attrib/demo_mode_write_protect"
    echo 0 > "$_tpg/attrib/authentication"
    echo 1 > "$_tpg/enable"
}

# lio_tpg NAME -> the configfs TPG directory of exported LU NAME
lio_tpg() { echo "$LKH_TGT/iscsi/$(target_iqn "$1")/tpgt_1"; }
