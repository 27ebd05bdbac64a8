# The kits, sourced by packaging/build, packaging/check and .ci/run. The workspace is the truth
# (its members under kits/, a hook kit being one whose main calls lkh_common::run):
# packaging/tests/tidy.rs fails when this or any other list of kits disagrees with it.
# KITS: the LifeKeeper hook kits (each an OCF agent ocf:lkhelpers:KIT with gen/app wrappers);
# BINS: every binary shipped, with its man page lkh-KIT(8).
KITS=(scsipr nas ip)
BINS=(lkh-scsipr lkh-nas lkh-ip lkh-platform)
