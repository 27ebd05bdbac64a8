#!/bin/bash
# A real NFS server (nfs-ganesha, FSAL VFS, v3 + v4) with rpcbind, for the
# probe tests. Run as:  unshare --net --mount --propagation private ganesha-netns.sh DIR
# so it has a network namespace with only loopback and a private /run
# (rpcbind's socket and lock file live there): nothing collides with other
# servers on the host. Prints READY when port 2049 listens, then waits.
set -eu
D=$1
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind "$D/export" "$D/recovery"
echo hello > "$D/export/hello.txt"
cat > "$D/ganesha.conf" <<CONF
NFS_CORE_PARAM {
    NFS_Port = 2049;
    MNT_Port = 20048;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Protocols = 3, 4;
    Mount_Path_Pseudo = true;
}
NFSV4 {
    Graceless = true;
    Lease_Lifetime = 10;
    RecoveryBackend = fs;
    RecoveryRoot = "$D/recovery";
}
EXPORT {
    Export_Id = 1;
    Path = "$D/export";
    Pseudo = /export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 3, 4;
    Transports = TCP;
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
CONF
rpcbind -f < /dev/null > "$D/rpcbind.log" 2>&1 &
echo $! > "$D/rpcbind.pid"
for _ in $(seq 100); do [ -S /run/rpcbind.sock ] && break; sleep 0.05; done
ganesha.nfsd -F -f "$D/ganesha.conf" -L "$D/ganesha.log" -p "$D/ganesha.pidfile" \
    < /dev/null > "$D/ganesha.stdout" 2>&1 &
echo $! > "$D/ganesha.pid"
for _ in $(seq 400); do ss -ltn | grep -q ':2049 ' && break; sleep 0.05; done
ss -ltn | grep -q ':2049 ' || { echo "ganesha did not listen on 2049"; cat "$D/ganesha.log" || true; exit 1; }
echo READY
wait
