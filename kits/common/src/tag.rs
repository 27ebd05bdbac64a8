//! Resource tags: LifeKeeper's cluster-unique resource names, which we also use as file names.

use crate::exit::Failure;
use std::fmt;

/// The longest tag we accept (a file name component must stay below 255 bytes with `.conf`).
pub const MAX_TAG_LEN: usize = 200;

/// A validated tag: non-empty, only `[A-Za-z0-9._-]`, not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Tag, Failure> {
        let fix = "use only letters, digits, '.', '_' and '-'";
        if s.is_empty() {
            return Err(Failure::usage(format!(
                "the resource tag is empty: give -t TAG ({fix})"
            )));
        }
        if s == "." || s == ".." {
            return Err(Failure::usage(format!(
                "resource tag '{s}' is not allowed: {fix}"
            )));
        }
        if s.len() > MAX_TAG_LEN {
            return Err(Failure::usage(format!(
                "resource tag is {} bytes long, the limit is {MAX_TAG_LEN}: choose a shorter tag",
                s.len()
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(Failure::usage(format!(
                "resource tag '{}' contains {c:?}: {fix}",
                s.escape_debug()
            )));
        }
        Ok(Tag(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;

    #[test]
    fn accepts_lifekeeper_style_tags() {
        for t in [
            "scsi-sdb",
            "nas.home_01",
            "IP-10.0.0.5",
            "a",
            "..x",
            "x..",
            "-x",
        ] {
            assert_eq!(
                Tag::parse(t).map(|t| t.to_string()),
                Ok(t.to_string()),
                "{t}"
            );
        }
    }

    #[test]
    fn refuses_path_like_and_odd_tags() {
        let long = "a".repeat(MAX_TAG_LEN + 1);
        for t in [
            "",
            ".",
            "..",
            "a/b",
            "../etc",
            "/x",
            "a b",
            "tag\n",
            "ta\0g",
            "é",
            "x;rm",
            long.as_str(),
        ] {
            let e = Tag::parse(t).expect_err(t);
            assert_eq!(e.exit, Exit::Usage, "{t}");
            assert!(e.message.contains("tag"), "{}", e.message);
        }
    }
}
