# shellcheck shell=sh
# Guest library, sourced before every scenario. Results: one CHECK line per assertion, sent to
# the host over the control port (fd 9) and echoed on the console.

for _f in /lib/lkh/*.sh; do
    [ "$_f" = /lib/lkh/lib.sh ] || . "$_f"
done
unset _f

_report() {  # _report NAME PASS|FAIL DETAIL...
    local _n=$1 _r=$2; shift 2
    echo "CHECK $_n $_r $*" >&9
    echo "CHECK $_n $_r $*"
}

# pass NAME [DETAIL]; fail NAME [DETAIL]
pass() { local _n=$1; shift; _report "$_n" PASS "$@"; }
fail() { local _n=$1; shift; _report "$_n" FAIL "$@"; }

# check NAME RC [DETAIL]: PASS when RC is 0.  Usage: [ "$x" = y ]; check x-is-y $? "x=$x"
check() {
    local _n=$1 _rc=$2; shift 2
    if [ "$_rc" = 0 ]; then _report "$_n" PASS "$@"; else _report "$_n" FAIL "rc=$_rc" "$@"; fi
}

# expect_rc NAME WANT CMD...: runs CMD (shown with its output on the console) and checks its
# exit status; returns that status.
expect_rc() {
    local _n=$1 _want=$2 _rc; shift 2
    echo "+ $*"
    "$@" 2>&1
    _rc=$?
    if [ "$_rc" = "$_want" ]; then _report "$_n" PASS "rc=$_rc"; else _report "$_n" FAIL "want rc=$_want got rc=$_rc: $*"; fi
    return $_rc
}

# run CMD...: shows the command and its output on the console, returns its status.
run() { local _rc; echo "+ $*"; "$@" 2>&1; _rc=$?; echo "  -> rc=$_rc"; return $_rc; }

# fatal MSG: report check "fatal" as failed and end the scenario.
fatal() { _report fatal FAIL "$*"; exit 1; }

# have_bin NAME: whether a program is available (project binaries live in /opt/lkh/bin).
have_bin() { command -v "$1" >/dev/null 2>&1; }

# note TEXT: a line on the console only (for narration).
note() { echo "NOTE $*"; }

# say TEXT: narration for the demo (console + host, where Vm::on_line sees it).
say() { echo "SAY $*" >&9; echo "SAY $*"; }

# host_request WORDS...: asks the host harness (e.g. "nfs stop"); prints the reply text.
# Fails (status 1) on an error reply or no reply within 60 s.
host_request() {
    local _reply _text
    echo "HOST $*" >&9
    if ! read -r -t 60 _reply _text <&9; then
        echo "host_request $*: no reply" >&2
        return 1
    fi
    echo "$_text"
    [ "$_reply" = OK ]
}

# uptime_s: seconds since boot (for narration).
uptime_s() { read -r _u _ < /proc/uptime; echo "$_u"; }

# cmdline_arg NAME: value of NAME=... on the kernel command line.
cmdline_arg() {
    for _a in $(cat /proc/cmdline); do
        case $_a in "$1"=*) echo "${_a#*=}"; return 0 ;; esac
    done
    return 1
}

# retry N CMD...: run CMD up to N times, 0.2 s apart, until it succeeds.
retry() {
    local _max=$1 _i=0; shift
    while [ $_i -lt "$_max" ]; do "$@" && return 0; _i=$((_i + 1)); sleep 0.2; done
    return 1
}
