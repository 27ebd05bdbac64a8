# shellcheck shell=sh
# open-iscsi initiator side: each cluster "node" is one iscsiadm iface with its own initiator
# name (IQN), so its session is its own I_T nexus and its own /dev/sdX. A second path of a
# node (multipath) is a second iface "NODE-p1" with the same IQN to another portal.

LKH_PORTAL=127.0.0.1:3260

# node_iqn NODE -> the node's current initiator name
node_iqn() {
    if [ -f "/run/lkh/iqn-$1" ]; then cat "/run/lkh/iqn-$1"; else echo "iqn.2026-01.test.lkh:node-$1"; fi
}

# iscsi_start: iscsi_tcp + iscsid (idempotent)
iscsi_start() {
    grep -q ISCSIADM_ABSTRACT /proc/net/unix && return 0
    modprobe iscsi_tcp || return 1
    mkdir -p /run/lock/iscsi /var/lib/iscsi/ifaces /run/lkh
    iscsid -f -n >/tmp/iscsid.log 2>&1 &
    retry 50 grep -q ISCSIADM_ABSTRACT /proc/net/unix
}

# _iface_sessions IFACE -> the sysfs directories of the sessions logged in through IFACE
_iface_sessions() {
    for _s in /sys/class/iscsi_session/session*; do
        [ "$(cat "$_s/ifacename" 2>/dev/null)" = "$1" ] && echo "$_s"
    done
    return 0
}

# iface_devs IFACE -> every /dev/sdX of the sessions logged in through IFACE, in LUN order
iface_devs() {
    for _s in $(_iface_sessions "$1"); do
        for _l in "$_s"/device/target*/*:*:*:*; do
            for _b in "$_l"/block/*; do [ -b "/dev/${_b##*/}" ] && echo "${_l##*:} /dev/${_b##*/}"; done
        done
    done | sort -n | awk '{ print $2 }'
}

# iface_dev IFACE -> /dev/sdX of the (first) session logged in through IFACE
iface_dev() {
    for _s in $(_iface_sessions "$1"); do
        for _b in "$_s"/device/target*/*/block/*; do
            [ -e "$_b" ] && [ -b "/dev/${_b##*/}" ] && { echo "/dev/${_b##*/}"; return 0; }
        done
    done
    return 1
}

# iface_sg IFACE -> /dev/sgN of that session's disk (not of tgt's controller LUN 0)
iface_sg() {
    for _s in $(_iface_sessions "$1"); do
        for _b in "$_s"/device/target*/*/block; do
            for _g in "${_b%/block}"/scsi_generic/*; do
                [ -e "$_g" ] && { echo "/dev/${_g##*/}"; return 0; }
            done
        done
    done
    return 1
}

# iscsi_login IFACE INITIATOR_IQN TARGET_IQN [PORTAL] -> prints the new /dev/sdX
iscsi_login() {
    _if=$1 _ini=$2 _tiqn=$3 _portal=${4:-$LKH_PORTAL}
    iscsi_start || return 1
    iscsiadm -m iface -I "$_if" -o new >/dev/null 2>&1
    iscsiadm -m iface -I "$_if" -o update -n iface.initiatorname -v "$_ini" >/dev/null || return 1
    iscsiadm -m discovery -t st -p "$_portal" -I "$_if" -o new >/dev/null || return 1
    iscsiadm -m node -T "$_tiqn" -p "$_portal" -I "$_if" --login >/dev/null || return 1
    retry 100 iface_dev "$_if"
}

# iscsi_logout IFACE: ends the iface's sessions (its /dev/sdX disappears, within 5 s)
iscsi_logout() {
    for _s in $(_iface_sessions "$1"); do
        iscsiadm -m session -r "${_s##*/session}" --logout >/dev/null 2>&1
    done
    retry 25 _no_iface_dev "$1"
}
_no_iface_dev() { ! iface_dev "$1" >/dev/null; }

# node_dev NODE -> the node's /dev/sdX (its primary path);  node_sg NODE -> its /dev/sgN
node_dev() { iface_dev "$1"; }
node_sg() { iface_sg "$1"; }

# node_login NODE [LU_NAME] [PORTAL] [IFACE]: logs NODE in to exported LU (default shared0)
node_login() {
    iscsi_login "${4:-$1}" "$(node_iqn "$1")" "$(target_iqn "${2:-shared0}")" "${3:-$LKH_PORTAL}"
}
