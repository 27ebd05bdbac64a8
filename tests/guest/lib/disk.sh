# shellcheck shell=sh
# High-level shared-disk setups for scenarios.

# shared_disk_setup NODE... : one 64 MiB LU "shared0" (unit serial lkh-shared0) exported over
# iSCSI on 127.0.0.1:3260; each NODE logs in with its own initiator name, so each node has its
# own I_T nexus and /dev/sdX to the same LU. Prints "node NODE = /dev/sdX (IQN)" lines.
# Default nodes: a b.
shared_disk_setup() {
    [ $# -gt 0 ] || set -- a b
    lio_init || { echo "shared_disk_setup: LIO modules failed" >&2; return 1; }
    _bs=$(lio_fileio shared0 64) || return 1
    lio_iscsi_export shared0 "$_bs" "$LKH_PORTAL" || return 1
    for _node in "$@"; do
        _dev=$(node_login "$_node") || { echo "shared_disk_setup: login of node $_node failed" >&2; return 1; }
        echo "node $_node = $_dev ($(node_iqn "$_node"))"
    done
}
