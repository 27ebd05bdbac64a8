//! A writer for the uncompressed "newc" cpio format the kernel unpacks as initramfs.
//!
//! The kernel accepts several archives concatenated in one initrd and unpacks them in order,
//! later entries replacing earlier ones: the cached base image and the per-run overlay are
//! simply concatenated. Parent directories are emitted before their contents (the kernel does
//! not create missing parents). The archive is not compressed: it boots faster under TCG than
//! a gzip one, and the host side only copies it.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// Builds one cpio archive in memory.
#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, mode: u32, nlink: u32, size: usize) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            size as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn rel(path: &str) -> String {
        path.trim_start_matches('/')
            .trim_end_matches('/')
            .to_string()
    }

    fn parents(&mut self, rel: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            if !self.dirs.contains(&acc) {
                let a = acc.clone();
                self.dir(&a, 0o755);
            }
        }
    }

    /// Adds a directory (and its missing parents).
    pub fn dir(&mut self, path: &str, perm: u32) {
        let rel = Self::rel(path);
        if rel.is_empty() || self.dirs.contains(&rel) {
            return;
        }
        self.parents(&rel);
        self.dirs.insert(rel.clone());
        self.header(&rel, S_IFDIR | (perm & 0o7777), 2, 0);
    }

    /// Adds a regular file with the given contents and permission bits.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        let rel = Self::rel(path);
        self.parents(&rel);
        self.header(&rel, S_IFREG | (perm & 0o7777), 1, data.len());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// Adds a symbolic link `path` -> `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        let rel = Self::rel(path);
        self.parents(&rel);
        self.header(&rel, S_IFLNK | 0o777, 1, target.len());
        self.buf.extend_from_slice(target.as_bytes());
        self.pad();
    }

    /// Adds the host directory tree `host` under `guest` (files, directories, symlinks).
    pub fn tree(&mut self, host: &Path, guest: &str) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(host)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = format!(
                "{}/{}",
                guest.trim_end_matches('/'),
                e.file_name().to_string_lossy()
            );
            let meta = fs::symlink_metadata(e.path())?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                let t = fs::read_link(e.path())?;
                self.symlink(&name, &t.to_string_lossy());
            } else if ft.is_dir() {
                self.dir(&name, meta.permissions().mode());
                self.tree(&e.path(), &name)?;
            } else if ft.is_file() {
                let data = fs::read(e.path())?;
                self.file(&name, meta.permissions().mode(), &data);
            }
        }
        Ok(())
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.header("TRAILER!!!", 0, 1, 0);
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_parents_come_first() {
        let mut c = Cpio::new();
        c.file("/a/b/c.txt", 0o644, b"hello");
        let out = c.finish();
        assert_eq!(out.len() % 512, 0);
        let text = String::from_utf8_lossy(&out);
        let a = text.find("a\0").expect("dir a");
        let ab = text.find("a/b\0").expect("dir a/b");
        let f = text.find("a/b/c.txt\0").expect("file");
        assert!(a < ab && ab < f);
        assert!(text.contains("TRAILER!!!"));
        assert!(out.starts_with(b"070701"));
    }
}
