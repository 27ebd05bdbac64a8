//! Test harness shared by the cross-crate tests: QEMU guests (`vm`) and network namespaces (`netns`), Pacemaker
//! (`pcmk`: the kits as OCF agents, a 3-node cluster in namespaces), one kit called as an
//! OCF agent on this host (`ocf`, also used by the kits' own tests).

pub mod host;
pub mod netns;
pub mod ocf;
pub mod pcmk;
mod sys;
pub mod vm;
