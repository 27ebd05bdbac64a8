//! `/proc/self/mountinfo` parsing (proc(5)), with the kernel's octal escapes
//! (`\040` space, `\011` tab, `\012` newline, `\134` backslash) decoded.
//!
//! Reading mountinfo never touches the NFS server, so it is the one view of a
//! mount that is always safe, even when the server is dead and the mount is
//! `hard`. Everything the kit decides about "is it mounted, from where, with
//! which options" comes from here, never from `stat()` on the mount point.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// Device number of the mounted file system (`st_dev` of files on it).
    pub major: u32,
    pub minor: u32,
    /// Root of the mount within its file system (decoded).
    pub root: String,
    /// Mount point, decoded to the exact bytes of the kernel's path: what unmount uses.
    pub path: PathBuf,
    /// The same for messages (a byte that is not UTF-8 shows as U+FFFD).
    pub mount_point: String,
    /// Per-mount options (`rw`, `nosuid`, `relatime`, ...), in kernel order.
    pub mount_options: Vec<MountOption>,
    /// Optional fields such as `shared:1`.
    pub optional: Vec<String>,
    pub fstype: String,
    /// Mount source (decoded), e.g. `10.0.2.2:/export`.
    pub source: String,
    /// Per-superblock options; for NFS these hold `vers=`, `proto=`, `addr=`.
    pub super_options: Vec<MountOption>,
}

/// `key` or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOption {
    pub key: String,
    pub value: Option<String>,
}

/// A line that does not follow the mountinfo format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mountinfo line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

impl MountEntry {
    /// Value of a super or per-mount option: `None` if absent,
    /// `Some(None)` for a bare flag, `Some(Some(v))` for `key=v`.
    pub fn option(&self, key: &str) -> Option<Option<&str>> {
        self.super_options
            .iter()
            .chain(self.mount_options.iter())
            .find(|o| o.key == key)
            .map(|o| o.value.as_deref())
    }

    /// True if `key` is present with or without a value.
    pub fn has_option(&self, key: &str) -> bool {
        self.option(key).is_some()
    }

    /// True for `nfs` and `nfs4` mounts.
    pub fn is_nfs(&self) -> bool {
        self.fstype == "nfs" || self.fstype == "nfs4"
    }
}

/// Decode the kernel's `\ooo` octal escapes. Anything that is not a valid
/// three-digit escape is kept as is.
pub fn unescape(s: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(s.as_bytes())).into_owned()
}

/// [`unescape`] to the exact bytes.
pub fn unescape_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_options(s: &str) -> Vec<MountOption> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(|o| match o.split_once('=') {
            Some((k, v)) => MountOption {
                key: k.to_string(),
                value: Some(unescape(v)),
            },
            None => MountOption {
                key: o.to_string(),
                value: None,
            },
        })
        .collect()
}

fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Parse one mountinfo line (`lineno` only labels errors).
pub fn parse_line(line: &str, lineno: usize) -> Result<MountEntry, ParseError> {
    parse_line_bytes(line.as_bytes(), lineno)
}

/// [`parse_line`] on the kernel's bytes: the mount point keeps them exactly
/// (`path`); the other fields are text (a byte that is not UTF-8 shows as U+FFFD).
pub fn parse_line_bytes(line: &[u8], lineno: usize) -> Result<MountEntry, ParseError> {
    let err = |reason: &str| ParseError {
        line: lineno,
        reason: reason.to_string(),
    };
    let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let text = |i: usize| fields.get(i).map(|f| lossy(f)).unwrap_or_default();
    let sep = fields
        .iter()
        .position(|f| *f == b"-")
        .ok_or_else(|| err("no \" - \" separator"))?;
    if sep < 6 {
        return Err(err("fewer than 6 fields before the separator"));
    }
    if fields.len() < sep + 3 {
        return Err(err("fewer than 3 fields after the separator"));
    }
    let mount_id = text(0)
        .parse()
        .map_err(|_| err("mount id is not a number"))?;
    let parent_id = text(1)
        .parse()
        .map_err(|_| err("parent id is not a number"))?;
    let (major, minor) = parse_dev(&text(2)).ok_or_else(|| err("bad major:minor"))?;
    let path = fields.get(4).map(|f| unescape_bytes(f)).unwrap_or_default();
    Ok(MountEntry {
        mount_id,
        parent_id,
        major,
        minor,
        root: lossy(&unescape_bytes(fields[3])),
        mount_point: lossy(&path),
        path: PathBuf::from(OsString::from_vec(path)),
        mount_options: parse_options(&text(5)),
        optional: (6..sep).map(text).collect(),
        fstype: text(sep + 1),
        source: lossy(&unescape_bytes(fields[sep + 2])),
        super_options: fields
            .get(sep + 3)
            .map(|s| parse_options(&lossy(s)))
            .unwrap_or_default(),
    })
}

/// Parse a whole mountinfo text; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<MountEntry>, ParseError> {
    parse_bytes(text.as_bytes())
}

/// Parse mountinfo as read from the kernel. The kernel escapes only space, tab,
/// newline and backslash: any other byte of a path or source (a name in a
/// non-UTF-8 encoding, anywhere on the system) comes through raw; mount points
/// keep those bytes exactly.
pub fn parse_bytes(raw: &[u8]) -> Result<Vec<MountEntry>, ParseError> {
    raw.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(i, l)| parse_line_bytes(l.strip_suffix(b"\r").unwrap_or(l), i + 1))
        .collect()
}

/// Read and parse `/proc/self/mountinfo`.
pub fn read_self() -> std::io::Result<Vec<MountEntry>> {
    use std::io::Read;
    // procfs reports size 0: start with a buffer that fits a small table and grows as needed
    // (a big first allocation costs an mmap + munmap on every call with musl's allocator)
    let mut raw = Vec::with_capacity(8 * 1024);
    std::fs::File::open("/proc/self/mountinfo")?.read_to_end(&mut raw)?;
    parse_bytes(&raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The mount visible at `mount_point`: when several are stacked there, the
/// last one in the file is the one on top.
pub fn find_at<'a>(entries: &'a [MountEntry], mount_point: &str) -> Option<&'a MountEntry> {
    entries
        .iter()
        .rev()
        .find(|e| e.path.as_os_str().as_bytes() == mount_point.as_bytes())
}

/// `root` and every mount stacked on it or mounted inside it (its descendants
/// by parent id), in an order that unmounts cleanly: deepest in the tree
/// first, and among equals the later mount first (it may hide the earlier one).
/// Mounts that merely have a path below `root`'s mount point but hang off
/// another parent (mounted there before `root` covered them) are not part of
/// it. Empty when `root` is gone; `root` is recognised by its id, mount point
/// and device together, because the kernel reuses mount ids.
pub fn tree<'a>(entries: &'a [MountEntry], root: &MountEntry) -> Vec<&'a MountEntry> {
    let Some(top) = entries.iter().position(|e| {
        e.mount_id == root.mount_id
            && e.path == root.path
            && (e.major, e.minor) == (root.major, root.minor)
    }) else {
        return Vec::new();
    };
    // (index in entries, depth below root); each entry is taken once, so this ends
    let mut found: Vec<(usize, usize)> = vec![(top, 0)];
    let mut next = 0;
    while let Some(&(pi, depth)) = found.get(next) {
        let parent = entries.get(pi).map(|e| e.mount_id);
        for (ci, c) in entries.iter().enumerate() {
            if Some(c.parent_id) == parent && ci != pi && !found.iter().any(|&(f, _)| f == ci) {
                found.push((ci, depth + 1));
            }
        }
        next += 1;
    }
    found.sort_by_key(|&(i, depth)| std::cmp::Reverse((depth, i)));
    found
        .into_iter()
        .filter_map(|(i, _)| entries.get(i))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Captured on this project's build host (tmpfs mounts in a private mount
    /// namespace whose names contain a space, a tab and a backslash).
    const HOST_ESCAPES: &str = "\
65 44 0:39 / /tmp/cap/a\\040b rw,relatime - tmpfs src\\040with\\040space rw
66 44 0:40 / /tmp/cap/tab\\011x rw,relatime - tmpfs t rw
67 44 0:41 / /tmp/cap/back\\134slash rw,relatime - tmpfs t rw
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334464k,nr_inodes=3083616,mode=755
";

    /// Captured in the VM test bed (Debian kernel, NFS mounts made by lkh-nas
    /// through mount(2) against nfs-ganesha).
    pub(crate) const GUEST_NFS: &str = "\
27 1 0:24 / /mnt/v3 rw,relatime - nfs 10.0.2.2:/export rw,vers=3,rsize=32768,wsize=32768,namlen=255,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0,hard,nolock,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.2.2,mountvers=3,mountproto=tcp,local_lock=all,addr=10.0.2.2
30 1 0:26 / /mnt/v4 rw,relatime - nfs4 10.0.2.2:/export rw,vers=4.2,rsize=32768,wsize=32768,namlen=255,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.2.15,local_lock=none,addr=10.0.2.2
";

    #[test]
    fn nfs_v3_and_v4_super_options() {
        let v = parse(GUEST_NFS).unwrap();
        let (v3, v4) = (&v[0], &v[1]);
        assert!(v3.is_nfs() && v4.is_nfs());
        assert_eq!((v3.fstype.as_str(), v4.fstype.as_str()), ("nfs", "nfs4"));
        assert_eq!(v3.source, "10.0.2.2:/export");
        assert_eq!((v3.major, v3.minor), (0, 24));
        assert_eq!(v3.option("vers"), Some(Some("3")));
        assert_eq!(v3.option("proto"), Some(Some("tcp")));
        assert_eq!(v3.option("addr"), Some(Some("10.0.2.2")));
        assert_eq!(v3.option("mountproto"), Some(Some("tcp")));
        assert!(v3.has_option("hard") && v3.has_option("nolock"));
        assert_eq!(v4.option("vers"), Some(Some("4.2")));
        assert_eq!(v4.option("clientaddr"), Some(Some("10.0.2.15")));
        assert_eq!(v4.option("local_lock"), Some(Some("none")));
        assert_eq!(find_at(&v, "/mnt/v4").unwrap().mount_id, 30);
    }

    #[test]
    fn decodes_octal_escapes() {
        let v = parse(HOST_ESCAPES).unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(v[0].mount_point, "/tmp/cap/a b");
        assert_eq!(v[0].source, "src with space");
        assert_eq!(v[1].mount_point, "/tmp/cap/tab\tx");
        assert_eq!(v[2].mount_point, "/tmp/cap/back\\slash");
        assert_eq!((v[0].major, v[0].minor), (0, 39));
        assert_eq!(v[4].option("mode"), Some(Some("755")));
    }

    #[test]
    fn non_utf8_paths_do_not_spoil_the_table() {
        // a Latin-1 directory name elsewhere on the system: the kernel does not escape it
        let mut raw = b"70 44 0:42 / /media/\xc9t\xe9 rw - vfat /dev/sdb1 rw\n".to_vec();
        raw.extend_from_slice(GUEST_NFS.as_bytes());
        let v = parse_bytes(&raw).unwrap();
        assert_eq!(v.len(), 3);
        assert!(v[0].mount_point.starts_with("/media/"));
        // the exact bytes, escapes decoded to bytes too, for unmount
        assert_eq!(v[0].path.as_os_str().as_bytes(), b"/media/\xc9t\xe9");
        let esc = parse_bytes(b"71 44 0:43 / /m/\xff\\040x\\134 rw - tmpfs t rw\n").unwrap();
        assert_eq!(esc[0].path.as_os_str().as_bytes(), b"/m/\xff x\\");
        assert!(
            find_at(&esc, "/m/\u{fffd} x\\").is_none(),
            "lossy text matches no mount"
        );
        assert_eq!(find_at(&v, "/mnt/v3").unwrap().mount_id, 27);
        assert!(read_self().is_ok());
    }

    #[test]
    fn unescape_keeps_invalid_sequences() {
        assert_eq!(unescape("a\\0"), "a\\0");
        assert_eq!(unescape("a\\09b"), "a\\09b");
        assert_eq!(unescape("\\012"), "\n");
        assert_eq!(unescape("x\\"), "x\\");
        assert_eq!(unescape("plain"), "plain");
    }

    #[test]
    fn optional_fields_and_missing_super_options() {
        let l = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue";
        let e = parse_line(l, 1).unwrap();
        assert_eq!(e.optional, vec!["master:1", "shared:7"]);
        assert_eq!(e.root, "/mnt1");
        assert_eq!(e.fstype, "ext3");
        assert!(e.has_option("noatime"));
        let e = parse_line("1 2 0:3 / /x rw - tmpfs none", 1).unwrap();
        assert!(e.super_options.is_empty());
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse_line("garbage", 3).is_err());
        assert!(parse_line("1 2 0:3 / /x rw tmpfs none rw", 1).is_err());
        assert!(parse_line("a 2 0:3 / /x rw - tmpfs none rw", 1).is_err());
        assert!(parse_line("1 2 03 / /x rw - tmpfs none rw", 1).is_err());
        assert!(parse_line("1 2 0:3 / /x rw - tmpfs", 1).is_err());
        let e = parse("1 2 0:3 / /x rw - tmpfs none rw\nbad\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn stacked_and_nested_mounts() {
        let text = "\
10 1 0:50 / /mnt/data rw - tmpfs a rw
11 10 0:51 / /mnt/data/sub rw - tmpfs b rw
12 1 0:52 / /mnt/data rw - tmpfs c rw
13 1 0:53 / /mnt/database rw - tmpfs d rw
";
        let v = parse(text).unwrap();
        assert_eq!(find_at(&v, "/mnt/data").unwrap().source, "c");
    }

    #[test]
    fn tree_holds_only_what_is_mounted_on_or_in_the_root() {
        // 20: a local file system at /mnt/data/old, mounted before the NFS mount 21
        // covered /mnt/data; 22, 23: mounted inside the NFS mount; 24: stacked on 23;
        // 25: a sibling whose name merely starts the same way.
        let text = "\
20 1 8:3 / /mnt/data/old rw - ext4 /dev/sda3 rw
21 1 0:60 / /mnt/data rw - nfs 10.0.2.2:/export rw,vers=3
22 21 0:61 / /mnt/data/sub rw - tmpfs b rw
23 22 0:62 / /mnt/data/sub/x rw - tmpfs c rw
24 23 0:63 / /mnt/data/sub/x rw - tmpfs e rw
25 1 0:64 / /mnt/database rw - tmpfs d rw
";
        let v = parse(text).unwrap();
        let root = find_at(&v, "/mnt/data").unwrap();
        let ids: Vec<u32> = tree(&v, root).iter().map(|e| e.mount_id).collect();
        assert_eq!(ids, [24, 23, 22, 21]);
        // a reused mount id at another place is not the root any more
        let reused = parse("21 1 0:70 / /elsewhere rw - tmpfs z rw\n").unwrap();
        assert!(tree(&reused, root).is_empty());
        assert!(tree(&v[4..], root).is_empty());
    }

    /// A mountinfo text the kernel would never write (random, or a real one damaged) still
    /// parses to Ok or Err, never a panic.
    #[test]
    fn random_text_never_panics() {
        let alphabet = b" \\0123456789:/-_abcnfs,=\n\t\x80\xff";
        let mut next = crate::test_rng(0x2545_f491_4f6c_dd1du64);
        let real = [HOST_ESCAPES, GUEST_NFS].concat().into_bytes();
        for round in 0..20_000 {
            let b: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 160) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                // a real table with a few bytes replaced, dropped or cut off
                let mut b = real.clone();
                for _ in 0..(1 + next() % 6) {
                    let at = (next() % b.len() as u64) as usize;
                    match next() % 3 {
                        0 => b[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                        1 => {
                            b.remove(at);
                        }
                        _ => b.truncate(at),
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                b
            };
            if let Ok(entries) = parse_bytes(&b) {
                for e in &entries {
                    let _ = tree(&entries, e);
                    let _ = find_at(&entries, &e.mount_point);
                }
            }
            let _ = unescape(&String::from_utf8_lossy(&b));
        }
    }
}
