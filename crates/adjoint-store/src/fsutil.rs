//! File-system helpers: owner-only permissions, atomic writes, hashing, timestamps, git.
//!
//! Atomic write = write to a temporary file in the same folder, fsync it, rename it over the
//! destination, fsync the folder ([`crate::write_atomic`] in `atomic.rs`, the one mechanism all
//! adjoint crates use). A crash at any point leaves either the old file or the new one, never a
//! torn one. A failed write removes its temporary (`.<name>.XXXXXX`); only a process killed
//! between creating it and the rename leaves one behind.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Creates `dir` (and parents) owner-only (0700) if it does not exist. An existing folder keeps
/// its permissions: `--registry .` must not lock down the user's working directory.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir).map_err(|e| StoreError::io("create folder", dir, e))?;
    set_mode(dir, 0o700) // in case the umask removed owner bits
}

/// Sets unix permission bits (no-op elsewhere).
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| StoreError::io("set permissions of", path, e))?;
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Opens a new file for writing with owner-only permissions (0600), failing if it exists.
pub(crate) fn create_private_file(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path).map_err(|e| StoreError::io("create", path, e))
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    // Only run ids use it (a clash would need two runs in one millisecond); fall back to
    // time+pid if the OS random source is unavailable.
    if getrandom::fill(&mut b).is_err() {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = ((t as u64) ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    hex::encode(b)
}

/// Atomically replaces `dest` with `data` (0600): temp file, fsync, rename, fsync folder.
pub(crate) fn atomic_write(dest: &Path, data: &[u8]) -> Result<()> {
    atomic_write_with(dest, |f| f.write_all(data))
}

/// Atomic write whose content is produced by `fill` (used to stream-copy large checkpoints);
/// the file is owner-only (0600). On failure the destination is unchanged and no temporary
/// remains.
pub(crate) fn atomic_write_with(
    dest: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    crate::write_atomic(dest, |f| {
        #[cfg(unix)]
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        fill(f)
    })
    .map_err(|e| StoreError::io("write", dest, e))
}

/// SHA-256 of a byte slice, lowercase hex.
pub fn sha256_bytes(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// SHA-256 and length of a file, streamed (lowercase hex).
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| StoreError::io("read", path, e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((hex::encode(h.finalize()), n))
}

/// First 12 hex digits of a hash, for display (the whole string if shorter).
pub(crate) fn short_hash(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// Current UTC time as RFC 3339 with milliseconds, e.g. `2026-11-26T23:35:01.123Z`.
pub(crate) fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// Formats unix seconds and milliseconds as RFC 3339 UTC, e.g. `2026-11-26T23:35:01.123Z`.
pub(crate) fn format_rfc3339(secs: i64, millis: u32) -> String {
    let ms = secs.saturating_mul(1000).saturating_add(i64::from(millis));
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => "invalid-time".into(),
    }
}

/// A fresh run id: UTC timestamp plus 8 random hex digits, so ids sort by start time.
pub(crate) fn new_run_id() -> String {
    let t = now_rfc3339(); // 2026-11-26T23:35:01.123Z
    let compact: String = t[..19].chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    format!("{compact}Z-{}", &random_suffix()[..8])
}

/// `(commit, dirty)` of the git work tree containing the current directory, if git is available.
pub(crate) fn git_state() -> (Option<String>, Option<bool>) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"]).filter(|c| c.len() >= 40);
    let dirty = commit.as_ref().and_then(|_| run(&["status", "--porcelain", "--untracked-files=no"]));
    (commit, dirty.map(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 12:34:56 UTC = 951827696 (leap day).
        assert_eq!(format_rfc3339(951_827_696, 7), "2000-02-29T12:34:56.007Z");
        // 2026-11-26 00:00:00 UTC = 1795651200.
        assert_eq!(format_rfc3339(1_795_651_200, 0), "2026-11-26T00:00:00.000Z");
    }

    #[test]
    fn a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("record.json");
        atomic_write(&p, b"old").unwrap();
        let r = atomic_write_with(&p, |f| {
            f.write_all(b"half a new rec")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(r.unwrap_err().to_string().contains("disk full"));
        assert_eq!(fs::read(&p).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("record.json")], "no temporary left");
        // A failed rename (a non-empty folder in the way) leaves no temporary either.
        let busy = dir.path().join("busy");
        fs::create_dir(&busy).unwrap();
        fs::write(busy.join("keep"), b"kept").unwrap();
        assert!(atomic_write(&busy, b"new").is_err());
        let mut names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["busy", "record.json"], "no temporary left after a failed rename");
        assert_eq!(fs::read(busy.join("keep")).unwrap(), b"kept");
        atomic_write(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        #[cfg(unix)]
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn sha256_of_abc() {
        // FIPS 180-2 test vector.
        assert_eq!(sha256_bytes(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
