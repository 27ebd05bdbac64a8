# lkh-nas remove's log when a process holding the mount has newlines in its name (issue 16,
# with lkh-common's escaping): no line of the log starts with the forged text, the name shows
# escaped as \x0a.
T=8

have_bin lkh-nas || fatal "lkh-nas is not in the guest"
nfs_net_up; check net-up $?
mkdir -p /etc/lkhelpers /run
umask 022

# said NAME TEXT: the last nas run NAME said TEXT (fixed string) on stderr
said() { grep -qF -- "$2" /tmp/$1.err; check "$1-says-$(echo "$2" | tr -c 'a-zA-Z0-9\n' '-')" $? "$(cat /tmp/$1.err)"; }
alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! alive "$1"; }
conf s SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/s VERSION=3 TIMEOUT=$T

# --- a holder whose name contains newlines forges no log line ---------------------------------
nas restore-forge 0 restore -t s
rm -f /tmp/forge.fifo; mkfifo /tmp/forge.fifo
sh -c 'printf "x\nFORGED line" > /proc/self/comm; cd /mnt/s && exec 3<> /tmp/forge.fifo && read -r _ <&3' &
FORGER=$!
sleep 0.5
nas remove-forge 0 remove -t s
gone $FORGER; check forge-holder-ended $?
! grep -q '^FORGED' /tmp/remove-forge.err; check remove-log-not-forged $? "$(cat /tmp/remove-forge.err)"
said remove-forge 'x\x0aFORGED line'

# --- a submount whose path has a newline (a user's directory in the NFS tree) forges no line
nas restore-forge-sub 0 restore -t s
N=$(printf 'sub\nFORGED unmounted')
rm -rf "/mnt/s/$N"; mkdir -p "/mnt/s/$N" && mount -t tmpfs sub "/mnt/s/$N"; check forge-submount $?
nas remove-forge-sub 0 remove -t s -v
[ "$(grep -c ' /mnt/s[ /]' /proc/self/mountinfo)" = 0 ]; check forge-sub-unmounted-all $?
! grep -q '^FORGED' /tmp/remove-forge-sub.err; check remove-sub-log-not-forged $? "$(cat /tmp/remove-forge-sub.err)"
said remove-forge-sub 'sub\x0aFORGED unmounted'


# --- a mount source with a newline forges no line of status's text output --------------------
mkdir -p /mnt/f
mount -t tmpfs "$(printf 'x\nFORGED resource f: healthy')" /mnt/f; check forge-source-mounted $?
conf f SERVER=10.0.2.2 EXPORT=/export MOUNTPOINT=/mnt/f VERSION=3 TIMEOUT=$T
nas status-forge 1 status -t f   # not an NFS mount: quickCheck's verdict, 1
! grep -q '^FORGED' /tmp/status-forge.out; check status-text-not-forged $? "$(cat /tmp/status-forge.out)"
grep -qF 'x\x0aFORGED resource f: healthy' /tmp/status-forge.out; check status-text-escaped $? "$(cat /tmp/status-forge.out)"
umount /mnt/f
