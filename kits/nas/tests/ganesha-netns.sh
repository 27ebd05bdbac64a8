#!/bin/bash
# A real NFS server (nfs-ganesha, FSAL VFS, v3 + v4) with rpcbind, for the
# probe tests. Run as:  unshare --net --mount --propagation private ganesha-netns.sh DIR
# so it has a network namespace with only loopback and a private /run
# (rpcbind's socket and lock file live there): nothing collides with other
# servers on the host. DIR/ganesha.conf is written by the test beforehand
# (from tests/ganesha.conf.in). Prints READY when port 2049 listens, then waits.
set -eu
D=$1
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind "$D/export" "$D/recovery"
echo hello > "$D/export/hello.txt"
[ -s "$D/ganesha.conf" ] || { echo "no $D/ganesha.conf"; exit 1; }
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
