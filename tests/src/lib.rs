//! Test harness shared by the cross-crate tests: QEMU guests (`vm`) and network namespaces (`netns`), Pacemaker
//! (`pcmk`: the kits as OCF agents, a 3-node cluster in namespaces).

pub mod netns;
pub mod pcmk;
mod sys;
pub mod vm;
