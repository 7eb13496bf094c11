//! Signed records: the one storage path of evaluations, the release policy, gate decisions,
//! monitoring windows, alerts, audits and data labels.
//!
//! Each is a row of the append-only `records` table: a *kind*, a *subject* (the checkpoint
//! hash an evaluation or audit is about, the `model@alias` an alert is about, the data hash a
//! label is about), a time, a JSON body, and an Ed25519 signature over
//! `adjoint-record-v1\n<kind>\n<subject>\n<created_at>\n<canonical JSON body>` (the same
//! canonical JSON as manifests). Files a record covers (an audit's report folder) are stored as
//! blobs and listed in `record_blobs`, so `gc` keeps them and `verify` checks them. Reading a
//! record checks its signature and that its signer is trusted (a writer for the kinds that
//! need one: policy, data labels, gate overrides), so an edited row is refused, never used.

use rusqlite::{params, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::keys::Signer;
use crate::manifest::canonical_json;
use crate::registry::{Registry, Role};

/// A verified record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Row id (increasing in insertion order).
    pub id: i64,
    /// Kind (`evaluation`, `policy`, `gate`, `monitor`, `alert`, `audit`, `data-label`).
    pub kind: String,
    /// What the record is about.
    pub subject: String,
    /// When it was signed (RFC 3339).
    pub created_at: String,
    /// The signed body.
    pub body: Value,
    /// The signing key id.
    pub key_id: String,
}

impl Record {
    /// The body as a typed value; `Corrupt` naming the record when it does not parse.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.body.clone()).map_err(|e| {
            StoreError::corrupt(format!("{} record #{} ({})", self.kind, self.id, self.subject), e)
        })
    }
}

/// The signed message of a record.
pub(crate) fn record_message(kind: &str, subject: &str, created_at: &str, body: &Value) -> Vec<u8> {
    let mut out = format!("adjoint-record-v1\n{kind}\n{subject}\n{created_at}\n").into_bytes();
    canonical_json(body, &mut out);
    out
}

/// The role a record kind's signer must have.
fn needed_role(kind: &str) -> Role {
    match kind {
        "policy" | "data-label" => Role::Writer,
        _ => Role::Signer,
    }
}

type Row = (i64, String, String, String, String, String, String);

impl Registry {
    /// Signs and appends a record (in its own transaction); `files` are `(name, sha256)` blobs it
    /// covers, already stored with [`Registry::put_blob_file`]. Returns the row id.
    pub(crate) fn append_record(
        &self,
        kind: &str,
        subject: &str,
        body: &impl Serialize,
        by: &Signer,
        files: &[(String, String)],
    ) -> Result<i64> {
        let body = serde_json::to_value(body).expect("records serialise to JSON");
        self.append_record_in(None, kind, subject, &body, by, files)
    }

    /// [`Registry::append_record`] inside a caller's transaction when `tx` is given.
    pub(crate) fn append_record_in(
        &self,
        tx: Option<&rusqlite::Transaction<'_>>,
        kind: &str,
        subject: &str,
        body: &Value,
        by: &Signer,
        files: &[(String, String)],
    ) -> Result<i64> {
        let created_at = fsutil::now_rfc3339();
        let sig = by.sign(&record_message(kind, subject, &created_at, body));
        let key_id = by.key_id();
        let text = body.to_string();
        let insert = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<i64> {
            tx.execute(
                "INSERT INTO records(kind, subject, created_at, body, key_id, signature) VALUES(?1,?2,?3,?4,?5,?6)",
                params![kind, subject, created_at, text, key_id, sig],
            )?;
            let id = tx.last_insert_rowid();
            for (name, sha) in files {
                tx.execute(
                    "INSERT INTO record_blobs(record_id, name, sha256) VALUES(?1,?2,?3)",
                    params![id, name, sha],
                )?;
            }
            Ok(id)
        };
        match tx {
            Some(tx) => {
                insert(tx).map_err(|e| StoreError::Db { context: format!("record {kind}"), source: e })
            }
            None => self.write_tx(&format!("record {kind}"), insert),
        }
    }

    fn check_record(&self, row: Row) -> Result<Record> {
        let (id, kind, subject, created_at, body, key_id, sig) = row;
        let name = format!("{kind} record #{id} ({subject})");
        let body: Value = serde_json::from_str(&body).map_err(|e| StoreError::corrupt(&name, e))?;
        let msg = record_message(&kind, &subject, &created_at, &body);
        self.check_signed(&name, &key_id, &msg, &sig, needed_role(&kind))?;
        Ok(Record { id, kind, subject, created_at, body, key_id })
    }

    /// Records of `kind` (about `subject` when given), oldest first, each signature-checked.
    pub fn records(&self, kind: &str, subject: Option<&str>) -> Result<Vec<Record>> {
        let rows: Vec<Row> = self.query("read records", |c| {
            let mut st = c.prepare(
                "SELECT id, kind, subject, created_at, body, key_id, signature FROM records
                 WHERE kind=?1 AND (?2 IS NULL OR subject=?2) ORDER BY id",
            )?;
            let rows = st.query_map(params![kind, subject], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            rows.collect()
        })?;
        rows.into_iter().map(|r| self.check_record(r)).collect()
    }

    /// The newest record of `kind` about `subject`, signature-checked.
    pub fn latest_record(&self, kind: &str, subject: &str) -> Result<Option<Record>> {
        let row: Option<Row> = self.query("read record", |c| {
            c.query_row(
                "SELECT id, kind, subject, created_at, body, key_id, signature FROM records
                 WHERE kind=?1 AND subject=?2 ORDER BY id DESC LIMIT 1",
                params![kind, subject],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()
        })?;
        row.map(|r| self.check_record(r)).transpose()
    }

    /// The `(name, sha256)` blobs a record covers.
    pub fn record_files(&self, id: i64) -> Result<Vec<(String, String)>> {
        self.query("read record files", |c| {
            let mut st =
                c.prepare("SELECT name, sha256 FROM record_blobs WHERE record_id=?1 ORDER BY name")?;
            let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// `verify`'s pass over every record: signature, trust, and the blobs it covers. Returns
    /// `(records checked, problems)`.
    pub(crate) fn verify_records(&self) -> Result<(usize, Vec<String>)> {
        let rows: Vec<Row> = self.query("list records", |c| {
            let mut st = c.prepare(
                "SELECT id, kind, subject, created_at, body, key_id, signature FROM records ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            rows.collect()
        })?;
        let n = rows.len();
        let mut problems = Vec::new();
        for row in rows {
            let id = row.0;
            match self.check_record(row) {
                Ok(rec) => {
                    for (name, sha) in self.record_files(id)? {
                        if let Err(e) = self.check_blob(&sha) {
                            problems.push(format!("{} record #{id}: file {name}: {e}", rec.kind));
                        }
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        Ok((n, problems))
    }
}
