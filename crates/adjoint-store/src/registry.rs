//! The registry: one folder holding an SQLite database, a content-addressed blob store and the
//! signed manifest files.
//!
//! ```text
//! runs/                     0700
//!   registry.db             0600  SQLite, WAL mode (registry.db-wal / -shm inherit 0600)
//!   blobs/sha256/ab/cdef…   0600  checkpoint bytes, named by their SHA-256
//!   manifests/<run>.json    0600  signed manifest envelopes (copies of the database rows)
//! ```
//!
//! Every write that spans several rows runs in one `BEGIN IMMEDIATE` transaction, so two processes
//! registering at once serialise on SQLite's write lock (with a busy timeout) instead of failing
//! or interleaving. Blob files are written (atomically) *before* the row that references them is
//! committed, so a crash leaves at worst an unreferenced blob, which `gc` removes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::keys::{self, Signer};

/// Environment variable naming the registry folder (default `runs`).
pub const ENV_REGISTRY: &str = "ADJOINT_REGISTRY";
/// Default registry folder, relative to the working directory.
pub const DEFAULT_REGISTRY_DIR: &str = "runs";
const DB_FILE: &str = "registry.db";
/// Version 2 added `records` and `record_blobs` (evaluations, policy, gate decisions,
/// monitoring, alerts, audits, data labels); a version-1 registry is migrated on open (the new
/// tables are created empty, nothing else changes).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys(
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL CHECK(role IN ('signer','writer')),
    added_at TEXT NOT NULL, added_by TEXT NOT NULL, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL,
    ended_at TEXT, key_id TEXT NOT NULL, seed INTEGER NOT NULL, config TEXT NOT NULL, code TEXT NOT NULL,
    command TEXT, cwd TEXT, parent TEXT, final_metrics TEXT, manifest TEXT, signature TEXT);
CREATE TABLE IF NOT EXISTS run_data(
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY(run_id, seq));
CREATE TABLE IF NOT EXISTS epochs(
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY(run_id, seq));
CREATE TABLE IF NOT EXISTS blobs(sha256 TEXT PRIMARY KEY, bytes INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints(
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, label TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY(run_id, seq));
CREATE INDEX IF NOT EXISTS checkpoints_by_hash ON checkpoints(sha256);
CREATE TABLE IF NOT EXISTS model_versions(
    model TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, created_at TEXT NOT NULL,
    key_id TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY(model, version));
CREATE TABLE IF NOT EXISTS alias_moves(
    model TEXT NOT NULL, alias TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL CHECK(kind IN ('move','rollback')),
    version INTEGER NOT NULL, moved_at TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL,
    PRIMARY KEY(model, alias, seq));
CREATE TABLE IF NOT EXISTS records(
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, subject TEXT NOT NULL, created_at TEXT NOT NULL,
    body TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_subject ON records(kind, subject);
CREATE TABLE IF NOT EXISTS record_blobs(
    record_id INTEGER NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY(record_id, name));
";

/// The role a trusted key has in a registry's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// May sign run manifests and checkpoints.
    Signer,
    /// May also publish model versions, move aliases and change the key policy.
    Writer,
}

impl Role {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Signer => "signer",
            Role::Writer => "writer",
        }
    }
}

/// A trusted key as listed by [`Registry::trusted_keys`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    /// Hex public key.
    pub key_id: String,
    /// Human name given when it was trusted.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was added (RFC 3339).
    pub added_at: String,
    /// The writer key that added it (itself for the registry's first key).
    pub added_by: String,
}

/// An open registry. Cheap to open; each instance holds its own SQLite connection.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let reg = adjoint_store::Registry::open(dir.path().join("runs")).unwrap();
/// assert!(reg.list_runs().unwrap().is_empty());
/// ```
pub struct Registry {
    pub(crate) dir: PathBuf,
    pub(crate) conn: Connection,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({})", self.dir.display())
    }
}

impl Registry {
    /// Opens the registry in `dir`, creating the folder, database and schema if needed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Registry> {
        let dir = dir.as_ref().to_path_buf();
        fsutil::ensure_private_dir(&dir)?;
        fsutil::ensure_private_dir(&dir.join("blobs").join("sha256"))?;
        fsutil::ensure_private_dir(&dir.join("blobs"))?;
        fsutil::ensure_private_dir(&dir.join("manifests"))?;
        let db = dir.join(DB_FILE);
        if !db.exists() {
            // Create the file ourselves so it starts 0600; SQLite gives -wal/-shm the same mode.
            match fsutil::create_private_file(&db) {
                Ok(_) => {}
                Err(_) if db.exists() => {} // another process created it first
                Err(e) => return Err(e),
            }
        }
        let ctx = |what: &str| format!("{} {what}", db.display());
        let conn = Connection::open(&db).map_err(|e| StoreError::Db { context: ctx("open"), source: e })?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| StoreError::Db { context: ctx("set busy timeout"), source: e })?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| StoreError::Db { context: ctx("is not a usable SQLite database"), source: e })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::corrupt(
                db.display().to_string(),
                format!("cannot enable WAL (got {mode})"),
            ));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(|e| StoreError::Db { context: ctx("set pragmas"), source: e })?;
        let reg = Registry { dir, conn };
        reg.write_tx("create schema", |tx| {
            tx.execute_batch(SCHEMA)?;
            tx.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?1)",
                [SCHEMA_VERSION],
            )?;
            // Migration 1 -> 2: the batch above created the new tables.
            tx.execute(
                "UPDATE meta SET value=?1 WHERE key='schema_version' AND value='1'",
                [SCHEMA_VERSION],
            )?;
            Ok(())
        })?;
        let v: String = reg.query("read schema version", |c| {
            c.query_row("SELECT value FROM meta WHERE key='schema_version'", [], |r| r.get(0))
        })?;
        if v != SCHEMA_VERSION.to_string() {
            return Err(StoreError::corrupt(
                format!("{} meta.schema_version", reg.db_path().display()),
                format!("schema version {v} is not supported (expected {SCHEMA_VERSION})"),
            ));
        }
        Ok(reg)
    }

    /// Opens an existing registry; unlike [`Registry::open`] it creates nothing, so read-only
    /// commands run in the wrong folder say so instead of leaving an empty registry behind.
    pub fn open_existing(dir: impl AsRef<Path>) -> Result<Registry> {
        let dir = dir.as_ref();
        if !dir.join(DB_FILE).is_file() {
            return Err(StoreError::NotFound(format!(
                "registry at {} (no {DB_FILE}; record a run or pass --registry)",
                dir.display()
            )));
        }
        Registry::open(dir)
    }

    /// Opens the registry named by `$ADJOINT_REGISTRY`, else `runs/`.
    pub fn open_default() -> Result<Registry> {
        Registry::open(
            std::env::var_os(ENV_REGISTRY).map(PathBuf::from).unwrap_or(DEFAULT_REGISTRY_DIR.into()),
        )
    }

    /// The registry folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits; `what` names it in errors.
    pub(crate) fn write_tx<T>(
        &self,
        what: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let err = |e| StoreError::Db { context: format!("{}: {what}", self.db_path().display()), source: e };
        let tx =
            rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(err)?;
        let v = f(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(v)
    }

    /// Like [`Registry::write_tx`] but `f` may fail with a [`StoreError`] (rolled back).
    pub(crate) fn write_tx_checked<T>(
        &self,
        what: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let err = |e| StoreError::Db { context: format!("{}: {what}", self.db_path().display()), source: e };
        let tx =
            rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(err)?;
        let v = f(&tx)?;
        tx.commit().map_err(err)?;
        Ok(v)
    }

    /// Runs a read query; `what` names it in errors.
    pub(crate) fn query<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        f(&self.conn).map_err(|e| StoreError::Db {
            context: format!("{}: {what}", self.db_path().display()),
            source: e,
        })
    }

    // ---------------------------------------------------------------- key policy

    /// All trusted keys.
    pub fn trusted_keys(&self) -> Result<Vec<TrustedKey>> {
        let rows: Vec<(String, String, String, String, String)> = self.query("list keys", |c| {
            let mut st = c.prepare(
                "SELECT key_id, name, role, added_at, added_by FROM keys ORDER BY added_at, key_id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(key_id, name, role, added_at, added_by)| {
                let role = match role.as_str() {
                    "writer" => Role::Writer,
                    "signer" => Role::Signer,
                    r => {
                        return Err(StoreError::corrupt(
                            format!("key {key_id}"),
                            format!("unknown role {r:?}"),
                        ))
                    }
                };
                Ok(TrustedKey { key_id, name, role, added_at, added_by })
            })
            .collect()
    }

    fn trust_message(key_id: &str, name: &str, role: &str, added_at: &str) -> Vec<u8> {
        format!("adjoint-trust-v1\n{key_id}\n{name}\n{role}\n{added_at}").into_bytes()
    }

    /// The role of `key_id` if the policy trusts it, after checking the trust record's signature
    /// chain (each key is added by a writer, the first key by itself).
    pub fn key_role(&self, key_id: &str) -> Result<Option<Role>> {
        self.key_role_depth(key_id, 0)
    }

    fn key_role_depth(&self, key_id: &str, depth: usize) -> Result<Option<Role>> {
        let row: Option<(String, String, String, String, String)> = self.query("read key", |c| {
            c.query_row(
                "SELECT name, role, added_at, added_by, signature FROM keys WHERE key_id=?1",
                [key_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
        })?;
        let Some((name, role, added_at, added_by, sig)) = row else { return Ok(None) };
        let record = format!("trust record of key {}", keys::short_id(key_id));
        keys::verify_hex(&added_by, &Self::trust_message(key_id, &name, &role, &added_at), &sig)
            .map_err(|detail| StoreError::BadSignature { record: record.clone(), detail })?;
        if added_by == key_id {
            let root: Option<String> = self.query("read root key", |c| {
                c.query_row("SELECT value FROM meta WHERE key='root_key'", [], |r| r.get(0)).optional()
            })?;
            if root.as_deref() != Some(key_id) {
                return Err(StoreError::BadSignature {
                    record,
                    detail: "self-signed but it is not the registry's first (root) key".into(),
                });
            }
        } else if depth > 64 || self.key_role_depth(&added_by, depth + 1)? != Some(Role::Writer) {
            return Err(StoreError::UntrustedKey { record, key: added_by });
        }
        match role.as_str() {
            "writer" => Ok(Some(Role::Writer)),
            "signer" => Ok(Some(Role::Signer)),
            r => Err(StoreError::corrupt(record, format!("unknown role {r:?}"))),
        }
    }

    /// Adds (or changes the role of) a trusted key. `by` must be a writer key — except on a
    /// registry with no keys yet, where `by` may trust itself as the first (root) writer.
    pub fn trust_key(&self, key_id: &str, name: &str, role: Role, by: &Signer) -> Result<()> {
        keys::validate_key_id(key_id).map_err(|e| StoreError::invalid("public key", e))?;
        let by_id = by.key_id();
        let empty = self.trusted_keys()?.is_empty();
        if empty {
            if by_id != key_id || role != Role::Writer {
                return Err(StoreError::invalid(
                    "first key",
                    "a registry with no keys must first trust its owner's key as a writer, signed by itself",
                ));
            }
        } else {
            self.require_writer(&by_id, "change the key policy")?;
        }
        let added_at = fsutil::now_rfc3339();
        let sig = by.sign(&Self::trust_message(key_id, name, role.as_str(), &added_at));
        self.write_tx_checked("trust key", |tx| {
            let db = |e| StoreError::Db { context: "trust key".into(), source: e };
            if empty {
                let n: i64 = tx.query_row("SELECT COUNT(*) FROM keys", [], |r| r.get(0)).map_err(db)?;
                if n > 0 {
                    return Err(StoreError::invalid("first key", "another process set up the key policy first"));
                }
                tx.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('root_key', ?1)", [key_id]).map_err(db)?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO keys(key_id, name, role, added_at, added_by, signature) VALUES(?1,?2,?3,?4,?5,?6)",
                params![key_id, name, role.as_str(), added_at, by_id, sig],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    /// Trusts `signer` as the root writer if the registry has no keys yet; otherwise does nothing.
    /// Returns whether it did (trust on first use, so a fresh `runs/` just works).
    pub fn bootstrap(&self, signer: &Signer) -> Result<bool> {
        if !self.trusted_keys()?.is_empty() {
            return Ok(false);
        }
        match self.trust_key(&signer.key_id(), "owner", Role::Writer, signer) {
            Ok(()) => Ok(true),
            // Lost a race with another process bootstrapping: fine if that left keys in place.
            Err(StoreError::Invalid { what: "first key", .. }) if !self.trusted_keys()?.is_empty() => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes a key from the policy (`by` must be a writer). Records it signed become untrusted.
    pub fn untrust_key(&self, key_id: &str, by: &Signer) -> Result<()> {
        self.require_writer(&by.key_id(), "change the key policy")?;
        let n =
            self.write_tx("untrust key", |tx| tx.execute("DELETE FROM keys WHERE key_id=?1", [key_id]))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("trusted key {key_id}")));
        }
        Ok(())
    }

    /// Errors unless `key_id` is a trusted writer.
    pub(crate) fn require_writer(&self, key_id: &str, action: &str) -> Result<()> {
        match self.key_role(key_id)? {
            Some(Role::Writer) => Ok(()),
            _ => Err(StoreError::NotWriter { key: keys::short_id(key_id).into(), action: action.into() }),
        }
    }

    /// Errors unless `key_id` is trusted (any role); `record` names the thing being checked.
    pub(crate) fn require_trusted(&self, key_id: &str, record: &str) -> Result<Role> {
        self.key_role(key_id)?
            .ok_or_else(|| StoreError::UntrustedKey { record: record.into(), key: key_id.into() })
    }

    /// Checks a signature by `key_id` over `msg` and that the key has at least `need`.
    pub(crate) fn check_signed(
        &self,
        record: &str,
        key_id: &str,
        msg: &[u8],
        sig: &str,
        need: Role,
    ) -> Result<()> {
        keys::verify_hex(key_id, msg, sig)
            .map_err(|detail| StoreError::BadSignature { record: record.into(), detail })?;
        let role = self.require_trusted(key_id, record)?;
        if need == Role::Writer && role != Role::Writer {
            return Err(StoreError::NotWriter {
                key: keys::short_id(key_id).into(),
                action: format!("sign {record} (a writer signature is required)"),
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- blobs

    /// Where the blob with this SHA-256 lives.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        let (a, b) = sha256.split_at(2.min(sha256.len()));
        self.dir.join("blobs").join("sha256").join(a).join(b)
    }

    /// Copies a file into the blob store (once per distinct content) and returns `(sha256, bytes)`.
    /// The file is hashed while it is copied; an existing blob whose content no longer matches its
    /// name is replaced by the good copy.
    pub fn put_blob_file(&self, src: &Path) -> Result<(String, u64)> {
        let (hash, bytes) = fsutil::sha256_file(src)?;
        let dest = self.blob_path(&hash);
        let intact = dest.exists() && fsutil::sha256_file(&dest).map(|(h, _)| h == hash).unwrap_or(false);
        if !intact {
            fsutil::ensure_private_dir(dest.parent().expect("blob path has a parent"))?;
            fsutil::atomic_write_with(&dest, |f| {
                let mut r = std::fs::File::open(src)?;
                std::io::copy(&mut r, f).map(|_| ())
            })?;
            // The source may have changed between hashing and copying: check what landed.
            let (h2, _) = fsutil::sha256_file(&dest)?;
            if h2 != hash {
                let _ = std::fs::remove_file(&dest);
                return Err(StoreError::corrupt(
                    src.display().to_string(),
                    "the file changed while it was being stored; try again",
                ));
            }
        }
        let now = fsutil::now_rfc3339();
        self.write_tx("register blob", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO blobs(sha256, bytes, created_at) VALUES(?1, ?2, ?3)",
                params![hash, bytes as i64, now],
            )
        })?;
        Ok((hash, bytes))
    }

    /// Reads a blob and checks its content against its hash.
    pub fn read_blob(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(sha256);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::BlobMissing { hash: sha256.into(), path })
            }
            Err(e) => return Err(StoreError::io("read blob", path, e)),
        };
        let actual = fsutil::sha256_bytes(&data);
        if actual != sha256 {
            return Err(StoreError::BlobMismatch { hash: sha256.into(), path, actual });
        }
        Ok(data)
    }

    /// Checks a blob file against its hash without keeping it in memory.
    pub fn check_blob(&self, sha256: &str) -> Result<u64> {
        let path = self.blob_path(sha256);
        if !path.exists() {
            return Err(StoreError::BlobMissing { hash: sha256.into(), path });
        }
        let (actual, n) = fsutil::sha256_file(&path)?;
        if actual != sha256 {
            return Err(StoreError::BlobMismatch { hash: sha256.into(), path, actual });
        }
        Ok(n)
    }
}
