//! One version for the whole workspace (`[workspace.package] version`), shown by every binary
//! together with the commit it was built from (recorded by `build.rs`).

/// The workspace version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short commit hash the binaries were built from, or `unknown`.
pub const COMMIT: &str = env!("LKH_COMMIT");

/// The commit's date, `YYYY-MM-DD` (empty when unknown): the date of the man pages.
pub const DATE: &str = env!("LKH_DATE");

/// What `--version` prints after the binary's name: `0.1.0 (commit abc1234)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LKH_COMMIT"),
    ")"
);

/// The whole `--version` line of `bin`.
pub fn line(bin: &str) -> String {
    format!("{bin} {LONG}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_names_binary_version_and_commit() {
        let l = line("lkh-x");
        assert_eq!(l, format!("lkh-x {VERSION} (commit {COMMIT})"));
        assert!(!COMMIT.is_empty() && !COMMIT.contains(char::is_whitespace));
        assert!(VERSION.split('.').count() == 3, "{VERSION}");
        assert!(DATE.is_empty() || DATE.len() == 10, "{DATE}");
    }
}
