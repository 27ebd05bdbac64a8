//! The kits driven only the way LifeKeeper's Generic Application kit drives them, in a guest
//! kernel: gen/app's copies of the wrappers and of the binaries, `-t TAG -i ID`, from `/`,
//! minimal environment (`guest/genapp_layout.sh`, LifeKeeper's side in `guest/lib/lk.sh`).

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
fn kits_through_gen_app_copies() {
    let Some(nfs) = vm::nfs_or_skip("genapp_vm") else {
        return;
    };
    let vm = Vm::new("genapp_layout")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/genapp_layout.sh")
        .timeout(Duration::from_secs(240));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "genapp-wrappers",
        "genapp-idempotent",
        "layout-disk",
        "ga-a-restore",
        "ga-a-holds",
        "ga-a-quickcheck",
        "ga-b-restore-binary-copy",
        "ga-b-holds",
        "ga-a-quickcheck-fenced",
        "ga-a-recover-fenced",
        "ga-recover-did-not-steal",
        "ga-b-quickcheck-binary-copy",
        "ga-b-remove-binary-copy",
        "ga-b-released",
        "layout-share",
        "ga-nas-restore",
        "ga-nas-mounted",
        "ga-nas-quickcheck",
        "ga-nas-quickcheck-frozen",
        "ga-nas-recover-frozen",
        "ga-nas-recover-back",
        "ga-nas-quickcheck-back",
        "ga-missing-conf-exit-2",
        "ga-missing-conf-says-so",
        "ga-check-lifekeeper-ok",
        "ga-check-lifekeeper-lists-resources",
        "ga-nas-remove",
        "ga-nas-unmounted",
    ]);
}
