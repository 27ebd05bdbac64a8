# shellcheck shell=sh
# Cluster nodes inside the one guest, and reading reservations as an observer.

# node_conf NODE TAG KEY=VALUE... : writes the node's /etc/lkhelpers/node-NODE/TAG.conf
node_conf() {
    local _node=$1 _tag=$2; shift 2
    mkdir -p "/etc/lkhelpers/node-$_node"
    : > "/etc/lkhelpers/node-$_node/$_tag.conf"
    for _kv in "$@"; do echo "$_kv" >> "/etc/lkhelpers/node-$_node/$_tag.conf"; done
}

# on_node NODE CMD... : runs CMD as cluster node NODE: its own hostname (node-NODE, in a
# private UTS namespace), LKHELPERS_CONF_DIR=/etc/lkhelpers/node-NODE and
# LKHELPERS_RUN_DIR=/run/lkhelpers/node-NODE. Returns CMD's exit status.
on_node() {
    local _node=$1; shift
    mkdir -p "/etc/lkhelpers/node-$_node" "/run/lkhelpers/node-$_node"
    LKHELPERS_CONF_DIR="/etc/lkhelpers/node-$_node" LKHELPERS_RUN_DIR="/run/lkhelpers/node-$_node" \
        unshare -u sh -c 'hostname "$0"; exec "$@"' "node-$_node" "$@"
}

# _prin DEV OPTION: PERSISTENT RESERVE IN (e.g. --read-keys) through DEV; asked again while the
# answer is a UNIT ATTENTION (sg_persist exit 6, e.g. the first command through a nexus whose
# registration was just preempted), so an observer never mistakes it for an empty answer
_prin() {
    local _n=0 _out _rc
    while :; do
        _out=$(sg_persist -n --in "$2" "$1" 2>/dev/null); _rc=$?
        [ $_rc = 6 ] && [ $_n -lt 3 ] || break
        _n=$((_n + 1))
    done
    [ -n "$_out" ] && echo "$_out"
    return $_rc
}

# pr_holder DEV -> initiator name (IQN) of the reservation holder seen through DEV, or "none".
# tgt has no READ FULL STATUS: there the holder's key (READ RESERVATION) is matched with the
# nodes' node.key files, and the node's current initiator name printed.
pr_holder() {
    [ "$(lkh_target)" = tgt ] && { _tgt_holder "$1"; return; }
    _prin "$1" --read-full-status | awk '
        /Key=/ { holder = 0 }
        /Reservation holder/ { holder = 1 }
        holder && /iqn\./ { for (i = 1; i <= NF; i++) if ($i ~ /^iqn\./) { sub(/,.*/, "", $i); print $i; found = 1; exit } }
        END { if (!found) print "none" }'
}

_tgt_holder() {
    local _k _f _n
    _k=$(_prin "$1" --read-reservation | awk '/Key=/ { sub(/.*Key=/, ""); print tolower($1); exit }')
    for _f in /etc/lkhelpers/node-*/node.key; do
        [ -n "$_k" ] && [ "$(tr 'A-F' 'a-f' < "$_f")" = "$_k" ] || continue
        _n=${_f%/node.key}; node_iqn "${_n##*/node-}"; return 0
    done
    echo none
}

# wait_answers DEV [SECONDS]: waits until DEV answers PERSISTENT RESERVE IN (an iSCSI session that
# was frozen may still be recovering after the target is back); fails when it never does
wait_answers() {
    local _i=0
    while [ $_i -lt "${2:-30}" ]; do
        _prin "$1" --read-keys >/dev/null && return 0
        _i=$((_i + 1)); sleep 1
    done
    return 1
}

# pr_keys DEV -> the registered keys seen through DEV, one per line
pr_keys() { _prin "$1" --read-keys | awk '$1 ~ /^0x/ { print $1 }'; }
