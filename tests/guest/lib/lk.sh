# shellcheck shell=sh
# LifeKeeper's side of a Generic Application (gen/app) resource, as SIOS documents it: the
# wizard copies each script it is given to
#   $LKROOT/subsys/gen/resources/app/actions/!{restore,remove,quickCheck}/TAG
#   $LKROOT/subsys/gen/resources/app/recovery/!recover/TAG
# and LifeKeeper runs the copy as root with `-t TAG -i ID`. Each cluster node has its own
# LKROOT here (/opt/lk/node-NODE); the kits are only ever reached through those copies.

GENAPP_DIR=/usr/lib/lkhelpers/genapp

lk_root() { echo "/opt/lk/node-$1"; }

# lk_path NODE ACTION TAG -> the path of gen/app's copy of ACTION for TAG on NODE
lk_path() {
    case $2 in
    recover) echo "$(lk_root "$1")/subsys/gen/resources/app/recovery/!recover/$3" ;;
    *) echo "$(lk_root "$1")/subsys/gen/resources/app/actions/!$2/$3" ;;
    esac
}

# lk_wrappers KIT: the package's wrappers, written by `lkh-KIT genapp` into $GENAPP_DIR/KIT
lk_wrappers() { "lkh-$1" genapp --dir "$GENAPP_DIR/$1" >/dev/null; }

# lk_create NODE KIT TAG [FILE]: what the wizard does on NODE (and extend on another node):
# copies the KIT wrappers (or FILE, e.g. the binary itself, for every action) into NODE's layout
lk_create() {
    local _a _p
    for _a in restore remove quickCheck recover; do
        _p=$(lk_path "$1" "$_a" "$3")
        mkdir -p "${_p%/*}" || return 1
        cp "${4:-$GENAPP_DIR/$2/$_a}" "$_p" && chmod 0755 "$_p" || return 1
    done
}

# lk_call NODE ACTION TAG: runs gen/app's copy the way LifeKeeper does: from /, as root, with
# a minimal environment (PATH=/bin:/usr/bin, LKROOT) plus the node's configuration directory
# (the two nodes share one guest, see on_node). Returns the script's exit status.
lk_call() {
    local _p
    _p=$(lk_path "$1" "$2" "$3")
    (cd / && on_node "$1" env -i PATH=/bin:/usr/bin LKROOT="$(lk_root "$1")" \
        LKHELPERS_CONF_DIR="/etc/lkhelpers/node-$1" LKHELPERS_RUN_DIR="/run/lkhelpers/node-$1" \
        "$_p" -t "$3" -i "$3")
}
