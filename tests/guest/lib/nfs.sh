# shellcheck shell=sh
# NFS client side; the server is nfs-ganesha on the host (Vm::nfs), reached at 10.0.2.2
# through QEMU user networking. busybox mount passes the option string straight to the
# kernel, so addr=, port= and mountport= are given explicitly (no mount.nfs, no rpcbind).

NFS_SERVER=10.0.2.2
NFS_EXPORT=/export

# nfs_net_up: eth0 up with the user-network address
nfs_net_up() {
    modprobe virtio_pci; modprobe virtio_net
    modprobe nfsv3; modprobe nfsv4
    retry 50 test -e /sys/class/net/eth0 || return 1
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0 2>/dev/null
    ip route add default via 10.0.2.2 2>/dev/null
    return 0
}

# nfs_opts 3|4|4.x [EXTRA] -> the mount option string used by nfs_mount: hard mount, TCP, short
# timeouts (timeo=10 = 1 s, retrans=2), actimeo=0 so stat really asks the server
nfs_opts() {
    _o="hard,proto=tcp,timeo=10,retrans=2,actimeo=0,port=2049,addr=$NFS_SERVER"
    case $1 in
    3) _o="vers=3,nolock,mountproto=tcp,mountport=20048,$_o" ;;
    4) _o="vers=4.2,$_o" ;;
    *) _o="vers=$1,$_o" ;;
    esac
    [ -n "${2:-}" ] && _o="$_o,$2"
    echo "$_o"
}

# nfs_mount VERS MOUNTPOINT [EXTRA_OPTS]: mounts $NFS_SERVER:/export (VERS 3, 4 = 4.2, 4.1 ...)
nfs_mount() {
    mkdir -p "$2"
    _t=nfs; [ "$1" = 3 ] || _t=nfs4
    _o=$(nfs_opts "$1" "${3:-}")
    echo "+ mount -t $_t -o $_o $NFS_SERVER:$NFS_EXPORT $2"
    mount -t $_t -o "$_o" "$NFS_SERVER:$NFS_EXPORT" "$2"
}

# nfs_server start|stop|kill|restart|freeze|thaw|status: asks the host to act on the server
# (stop = SIGTERM, kill = SIGKILL, freeze = SIGSTOP, thaw = SIGCONT); returns when done
nfs_server() { host_request nfs "$1"; }

# ---- lkh-nas scenario helpers (nas_vm.sh, nas_safe.sh, nas_forge.sh, nas_knfsd.sh) ----
# conf TAG KEY=VALUE...: writes /etc/lkhelpers/TAG.conf
conf() {
    _t=$1; shift
    : > /etc/lkhelpers/$_t.conf
    for _kv in "$@"; do echo "$_kv" >> /etc/lkhelpers/$_t.conf; done
}
# nas NAME WANT ACTION TAG [ARGS]: run lkh-nas, check its exit status, keep stderr in
# /tmp/NAME.err and the time it took in NAS_ELAPSED
nas() {
    _n=$1 _want=$2; shift 2
    _t0=$(uptime_s)
    lkh-nas "$@" > /tmp/$_n.out 2> /tmp/$_n.err; _rc=$?
    _t1=$(uptime_s)
    NAS_ELAPSED=$(awk "BEGIN{print $_t1-$_t0}")
    cat /tmp/$_n.out /tmp/$_n.err
    note "$_n: lkh-nas $* -> rc=$_rc in $NAS_ELAPSED s"
    [ "$_rc" = "$_want" ]; check "$_n" $? "want rc=$_want got rc=$_rc"
}
# bounded NAME: the last nas run finished within TIMEOUT ($T) + 1 s
bounded() { awk "BEGIN{exit !($NAS_ELAPSED <= $T + 1)}"; check "$1-bounded" $? "took $NAS_ELAPSED s"; }
# mounted PATH: how many mountinfo lines show PATH as a mount point
mounted() { grep -c " $1 " /proc/self/mountinfo; }
