//! Test harness shared by the cross-crate tests: QEMU guests (`vm`) and network namespaces (`netns`).

pub mod netns;
mod sys;
pub mod vm;
