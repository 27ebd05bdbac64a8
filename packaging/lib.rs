//! Empty: this crate only carries the package metadata of lkhelpers for cargo-deb and
//! cargo-generate-rpm (see `Cargo.toml` and `packaging/build`).
