# shellcheck shell=sh
# The Linux kernel NFS server (knfsd) inside the guest, serving a tmpfs at /export: the
# second server implementation beside the host's nfs-ganesha. Its userland (rpc.nfsd,
# rpc.mountd, exportfs; rpcbind from the host) is in the base image (tests/src/vm/parts.rs).
# The server answers on 127.0.0.1 and on KNFSD_ADDR, a second address on lo, so one server
# can be mounted by two addresses.

KNFSD_ADDR=192.0.2.1
KNFSD_MODE=
KNFSD_MOUNTD=
KNFSD_RPCBIND=

# knfsd_start [all|v3only|v4only|v41only|no42]: all = v3 + v4.x with rpcbind and MOUNT on
# 20048; v3only = v3 only (rpcbind, MOUNT); v4only = v4.x only, no rpcbind, no MOUNT on the
# network; v41only = v4.1 and v4.2 only; no42 = v4.0 and v4.1 only.
# Grace and lease times are 10 s (the kernel's minimum), so v4 OPENs wait at most 10 s.
knfsd_start() {
    KNFSD_MODE=${1:-all}
    modprobe nfsd || return 1
    ip addr add $KNFSD_ADDR/32 dev lo 2>/dev/null
    grep -q ' /proc/fs/nfsd ' /proc/mounts || mount -t nfsd nfsd /proc/fs/nfsd || return 1
    mkdir -p /export /var/lib/nfs/v4recovery /run/rpcbind
    # the kernel registers with rpcbind through /var/run/rpcbind.sock
    [ -e /var/run ] || ln -s /run /var/run
    if ! grep -q ' /export ' /proc/mounts; then
        mount -t tmpfs export /export && echo hello-from-host > /export/hello.txt
    fi
    echo "/export *(rw,no_root_squash,insecure,no_subtree_check,fsid=1)" > /etc/exports
    touch /var/lib/nfs/etab /var/lib/nfs/rmtab
    KNFSD_MOUNTD_OPTS="-N 2 -N 3"
    case $KNFSD_MODE in
    all) KNFSD_NFSD_OPTS=; KNFSD_MOUNTD_OPTS="-N 2" ;;
    v3only) KNFSD_NFSD_OPTS="-N 4"; KNFSD_MOUNTD_OPTS="-N 2" ;;
    v4only) KNFSD_NFSD_OPTS="-N 3" ;;
    v41only) KNFSD_NFSD_OPTS="-N 3 -N 4.0" ;;
    no42) KNFSD_NFSD_OPTS="-N 3 -N 4.2" ;;
    *) echo "knfsd_start: unknown mode $KNFSD_MODE" >&2; return 2 ;;
    esac
    if { [ "$KNFSD_MODE" = all ] || [ "$KNFSD_MODE" = v3only ]; } && [ -z "$KNFSD_RPCBIND" ]; then
        # Debian's rpcbind drops to user _rpc (and exits, saying so only to syslog, without it)
        grep -q '^_rpc:' /etc/passwd || echo '_rpc:x:100:65534::/run/rpcbind:/bin/false' >> /etc/passwd
        chown 100 /run/rpcbind
        rpcbind -f > /tmp/rpcbind.log 2>&1 &
        KNFSD_RPCBIND=$!
        retry 50 knfsd_listening 111 || return 1
    fi
    exportfs -ra || return 1
    knfsd_mountd_start || return 1
    knfsd_nfsd_start
}

# knfsd_reexport FSID: the export again under another fsid= (as if re-created on another file
# system, or the NAS replaced behind the same address): handles given out before are stale
knfsd_reexport() {
    echo "/export *(rw,no_root_squash,insecure,no_subtree_check,fsid=$1)" > /etc/exports
    exportfs -ra
}

# knfsd_nfsd_start: (again) 8 nfsd threads on TCP 2049 with the mode's versions
knfsd_nfsd_start() {
    # shellcheck disable=SC2086
    rpc.nfsd --no-udp -G 10 -L 10 $KNFSD_NFSD_OPTS 8 || return 1
    note "knfsd ($KNFSD_MODE) versions: $(cat /proc/fs/nfsd/versions)"
    retry 50 knfsd_listening 2049
}

# knfsd_mountd_start [PORT]: rpc.mountd in the foreground of a background job (v3: on PORT,
# 20048 unless given; Linux's rpc.mountd takes a new port at each start unless told one)
knfsd_mountd_start() {
    KNFSD_MOUNTD_PORT=${1:-20048}
    # shellcheck disable=SC2086
    rpc.mountd -F --no-udp -p $KNFSD_MOUNTD_PORT $KNFSD_MOUNTD_OPTS > /tmp/mountd.log 2>&1 &
    KNFSD_MOUNTD=$!
    case $KNFSD_MODE in all|v3only) retry 50 knfsd_listening $KNFSD_MOUNTD_PORT ;; esac
}

# knfsd_mountd_kill: SIGKILL rpc.mountd (MOUNT gone, NFS still served)
knfsd_mountd_kill() {
    [ -n "$KNFSD_MOUNTD" ] && kill -9 "$KNFSD_MOUNTD" 2>/dev/null
    wait "$KNFSD_MOUNTD" 2>/dev/null
    KNFSD_MOUNTD=
}

# knfsd_listening PORT: something listens on TCP PORT (hex in /proc/net/tcp)
knfsd_listening() {
    _hex=$(printf ':%04X ' "$1")
    awk -v p="$_hex" 'NR > 1 && $4 == "0A" && index($2 p, p) { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# knfsd_stop: no nfsd threads (listeners closed: connections refused); mountd and the export stay
knfsd_stop() { rpc.nfsd 0; }

# knfsd_stop_all: nfsd, mountd and rpcbind all gone, the export unexported (before a new mode)
knfsd_stop_all() {
    rpc.nfsd 0
    knfsd_mountd_kill
    [ -n "$KNFSD_RPCBIND" ] && kill "$KNFSD_RPCBIND" 2>/dev/null && wait "$KNFSD_RPCBIND" 2>/dev/null
    KNFSD_RPCBIND=
    exportfs -ua
    return 0
}

# knfsd_freeze / knfsd_thaw: KNFSD_ADDR leaves lo and is routed into dummy0, a device that
# drops every packet (kernel threads cannot be stopped with a signal): connects and
# requests get no answer and no error, hard mounts hang — a silent server, not an
# unreachable one. Thawing takes the route away and gives lo the address back.
knfsd_freeze() {
    # loading the module makes dummy0 (numdummies=1); an `ip link add` that loads it fails
    modprobe dummy || return 1
    ip link show dummy0 >/dev/null 2>&1 || ip link add dummy0 type dummy || return 1
    ip link set dummy0 up || return 1
    # a source address for the route (none is left on lo once KNFSD_ADDR goes)
    ip addr add 192.0.2.2/32 dev dummy0 2>/dev/null
    ip addr del $KNFSD_ADDR/32 dev lo || return 1
    ip route add $KNFSD_ADDR/32 dev dummy0 src 192.0.2.2
}
knfsd_thaw() {
    ip route del $KNFSD_ADDR/32 dev dummy0
    ip addr add $KNFSD_ADDR/32 dev lo
}
