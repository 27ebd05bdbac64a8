# Two-nexus PR round trip with sg_persist (harness self-test).
shared_disk_setup a b; check setup $?
A=$(node_dev a) && B=$(node_dev b) || fatal "no devices for nodes a/b"
note "node A = $A, node B = $B"
sa=$(sg_inq -p 0x80 -r "$A" | tail -c +5); sb=$(sg_inq -p 0x80 -r "$B" | tail -c +5)
[ -n "$sa" ] && [ "$sa" = "$sb" ] && [ "$A" != "$B" ]; check same-lu $? "serial=$sa"

expect_rc a-register 0 sg_persist -n --out --register --param-sark=0xa1 "$A"
expect_rc b-register 0 sg_persist -n --out --register --param-sark=0xb1 "$B"
keys=$(sg_persist -n --in --read-keys "$B")
echo "$keys" | grep -q 0xa1 && echo "$keys" | grep -q 0xb1; check b-sees-both-keys $?
expect_rc a-reserve 0 sg_persist -n --out --reserve --param-rk=0xa1 --prout-type=5 "$A"
sg_persist -n --in --read-reservation "$B" | grep -q 'Key=0xa1'; check b-sees-a-holder $?

printf 'written-by-A-before-failure' | dd of="$A" bs=512 seek=100 conv=notrunc,fsync oflag=direct 2>/dev/null
check a-write-while-holder $?

expect_rc b-preempt-abort-a 0 sg_persist -n --out --preempt-abort --param-rk=0xb1 --param-sark=0xa1 --prout-type=5 "$B"
sg_persist -n --in --read-reservation "$B" | grep -q 'Key=0xb1'; check b-now-holder $?
# A's first command after the preemption gets UNIT ATTENTION (registrations preempted)
sg_turs "$A" >/dev/null 2>&1; sg_turs "$A" >/dev/null 2>&1
out=$(sg_dd if=/dev/zero of="$A" bs=512 count=1 seek=200 oflag=direct blk_sgio=1 2>&1)
echo "$out"
echo "$out" | grep -qi 'reservation conflict'; check a-write-refused $?
dd if=/dev/zero of="$A" bs=4096 count=1 seek=300 oflag=direct 2>/dev/null; [ $? -ne 0 ]; check a-dd-write-fails $?
got=$(dd if="$B" bs=512 skip=100 count=1 iflag=direct 2>/dev/null | head -c 27)
[ "$got" = written-by-A-before-failure ]; check a-data-intact-on-b $? "read '$got'"
expect_rc b-write-after-preempt 0 sg_dd if=/dev/zero of="$B" bs=512 count=1 seek=400 oflag=direct blk_sgio=1
expect_rc b-clear 0 sg_persist -n --out --clear --param-rk=0xb1 "$B"
