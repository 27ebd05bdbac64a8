use std::time::Duration;
use tests::vm::{self, Vm};
#[test]
fn tgt_smoke() {
    let vm = Vm::new("tgt_smoke")
        .append("lkh.target=tgt")
        .script(r#"
shared_disk_setup a b; check setup $?
A=$(node_dev a); B=$(node_dev b); note "A=$A B=$B sgA=$(node_sg a)"
cat /tmp/tgtd-0.log
sg_vpd -p 0x83 "$A"; sg_vpd -p 0x80 "$A"; sg_inq "$A"
sg_persist -n --in --read-full-status "$A"; note "rfs rc=$?"
sg_persist -n --in --report-capabilities "$A"
sg_opcodes -n "$A" 2>&1 | head -40
sg_persist -n --out --register --param-sark=0xa "$A"; note "reg a $?"
sg_persist -n --out --register --param-sark=0xb "$B"; note "reg b $?"
sg_persist -n --out --reserve --param-rk=0xa --prout-type=1 "$A"; note "res a $?"
sg_persist -n --out --preempt-abort --param-rk=0xb --param-sark=0xa --prout-type=1 "$B"; note "pa rc=$?"
sg_persist -n --out --preempt --param-rk=0xb --param-sark=0xa --prout-type=1 "$B"; note "p rc=$?"
pr_holder "$A"; pr_keys "$A"
sg_turs "$A"; note "tur a $?"; sg_turs "$B"; note "tur b $?"
sg_persist -n --in --read-reservation "$A"; sg_persist -n --in --read-reservation "$B"
tgt_start 1 127.0.0.1:3262 && tgt_export 1 other 16 lkh-other; check second $?
C=$(iscsi_login c2 iqn.2026-01.test.lkh:node-c "$(target_iqn other)" 127.0.0.1:3262); note "C=$C"
sg_vpd -p 0x83 "$C"; sg_vpd -p 0x80 "$C"
"#)
        .timeout(Duration::from_secs(120));
    let Some(out) = vm::run_or_skip(&vm) else { return };
    eprintln!("{}", out.console());
    out.assert_passed(&["setup", "second"]);
}
