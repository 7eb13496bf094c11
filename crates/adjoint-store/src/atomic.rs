//! The one atomic write of every adjoint crate: the store's files and the CLI's run folders
//! (through [`crate::write_atomic`]), and adjoint-nn's checkpoints and PGM images.
//!
//! adjoint-nn must not depend on the store, and the store depends on nothing of ours, so
//! adjoint-nn compiles this same file as a private module (`#[path]` in its `checkpoint.rs`).
//! Keep it to `std` and `atomic-write-file`, which both crates depend on.

use std::fs::File;
use std::path::Path;

/// Replaces `dest` atomically with what `fill` writes: the `atomic-write-file` crate (a
/// temporary `.<name>.XXXXXX` in the same folder, fsync, rename, fsync the folder) plus the
/// one cleanup it misses.
///
/// atomic-write-file 0.3.1 marks the file finished before `commit` fsyncs and renames, so when
/// either fails its drop no longer removes the temporary. Here the fsync runs first (a failure
/// drops an unfinished file, which the crate removes), and after a failed rename the temporary
/// is found by its inode and removed. On any failure `dest` is unchanged and no temporary
/// remains (only a process killed mid-write can leave one).
pub fn write_atomic(dest: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut f = atomic_write_file::AtomicWriteFile::open(dest)?;
    fill(f.as_file_mut())?;
    f.sync_all()?;
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        let m = f.metadata()?;
        (m.dev(), m.ino())
    };
    let res = f.commit();
    #[cfg(unix)]
    if res.is_err() {
        remove_temporary(dest, inode);
    }
    res
}

/// Removes the temporary `.<name>.XXXXXX` of `dest` that is the inode `(dev, ino)`, if any
/// (never another writer's temporary; if the rename happened and only the folder fsync failed,
/// the name is gone and nothing is removed).
#[cfg(unix)]
fn remove_temporary(dest: &Path, (dev, ino): (u64, u64)) {
    use std::os::unix::fs::MetadataExt;
    let Some(name) = dest.file_name() else { return };
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix)
            && e.metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
