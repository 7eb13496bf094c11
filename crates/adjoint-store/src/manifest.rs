//! Run manifests: the signed record of what a run read, how it was configured and what it produced.
//!
//! A manifest is serialised as *canonical JSON* for signing: object keys sorted, no whitespace,
//! numbers as serde_json prints them (shortest round-trip form for floats, so an `f64` survives a
//! round trip bit for bit). The signed message is `adjoint-run-manifest-v1\n` followed by those
//! bytes; the manifest file on disk is a [`SignedManifest`] envelope holding the manifest, the
//! signer's key id and the signature.
//!
//! Metric values are `f64`. JSON has no NaN or infinity, so non-finite values are stored as the
//! strings `"NaN"`, `"inf"` and `"-inf"` and read back as the same `f64` (a diverged run is
//! recorded, not lost).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::keys;

/// Named metric values (`"loss" -> 0.25`), ordered by name.
pub type Metrics = BTreeMap<String, f64>;

/// Manifest format version written by this crate.
pub const MANIFEST_FORMAT: u32 = 1;

const MANIFEST_TAG: &[u8] = b"adjoint-run-manifest-v1\n";

/// Which code produced a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodeVersion {
    /// The package that ran (e.g. `adjoint-cli`).
    pub package: String,
    /// Its version (e.g. `0.1.0`).
    pub version: String,
    /// `git rev-parse HEAD` of the working directory, when git and a repository were available.
    pub git_commit: Option<String>,
    /// Whether tracked files had uncommitted changes (`None` when git was unavailable).
    pub git_dirty: Option<bool>,
}

/// A data file or in-memory dataset a run read, identified by its SHA-256.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The path as given, or a dataset name.
    pub name: String,
    /// SHA-256 of the content (hex).
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Metrics logged at the end of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number as given by the caller.
    pub epoch: u64,
    /// The metric values.
    #[serde(with = "metrics_serde")]
    pub metrics: Metrics,
}

/// A checkpoint a run wrote, stored in the blob store under its SHA-256.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Label given by the run (e.g. `epoch-3`, `final`).
    pub label: String,
    /// SHA-256 of the checkpoint file (hex) = its blob name.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still running, or the process died before `finish` (no manifest is signed then).
    Running,
    /// `finish` was called.
    Finished,
    /// `fail` was called.
    Failed,
}

impl RunStatus {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<RunStatus> {
        match s {
            "running" => Some(RunStatus::Running),
            "finished" => Some(RunStatus::Finished),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }
}

/// Everything recorded about one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Unique id: start time plus random suffix, e.g. `20261126T233501Z-1a2b3c4d`.
    pub run_id: String,
    /// Human name of the run (e.g. the demo name).
    pub name: String,
    /// RFC 3339 UTC start time.
    pub started_at: String,
    /// RFC 3339 UTC end time.
    pub ended_at: Option<String>,
    /// How the run ended.
    pub status: RunStatus,
    /// Which code ran.
    pub code: CodeVersion,
    /// Arguments (without the program name) that rerun this run; used by `runs reproduce`.
    pub command: Option<Vec<String>>,
    /// Working directory the run started in.
    pub cwd: Option<String>,
    /// The random seed.
    pub seed: u64,
    /// Full configuration and hyperparameters.
    pub config: Value,
    /// Every data file or dataset read.
    pub data: Vec<DataRecord>,
    /// SHA-256 of the checkpoint this run was fine-tuned from.
    pub parent_checkpoint: Option<String>,
    /// Per-epoch metrics in logging order.
    pub epochs: Vec<EpochRecord>,
    /// Final metrics.
    #[serde(with = "metrics_serde")]
    pub final_metrics: Metrics,
    /// Every checkpoint written, in order.
    pub checkpoints: Vec<CheckpointRecord>,
    /// For a data-parallel run: the world size and each rank's data shard (absent, and not
    /// part of the signed bytes, for a one-process run, so older manifests verify unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<DistributedRecord>,
}

/// How a data-parallel run was spread over its ranks (recorded by rank 0, the one rank that
/// records the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistributedRecord {
    /// Number of ranks.
    pub world_size: u64,
    /// Each rank's shard of the data, by rank.
    pub shards: Vec<ShardRecord>,
}

/// One rank's data shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// The rank.
    pub rank: u64,
    /// Which examples it reads, e.g. `rows j of each global batch with j mod 2 = 1`.
    pub examples: String,
}

impl RunManifest {
    /// The exact bytes that are signed: domain tag + canonical JSON.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let v = serde_json::to_value(self).expect("a manifest always serialises to JSON");
        let mut out = MANIFEST_TAG.to_vec();
        canonical_json(&v, &mut out);
        out
    }
}

/// A manifest with its signature: the format of manifest files and of `export`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedManifest {
    /// The manifest.
    pub manifest: RunManifest,
    /// Key id (hex public key) of the signer.
    pub signer: String,
    /// Ed25519 signature of [`RunManifest::signing_bytes`], hex.
    pub signature: String,
}

impl SignedManifest {
    /// Signs `manifest` with `signer`.
    pub fn sign(manifest: RunManifest, signer: &keys::Signer) -> SignedManifest {
        let signature = signer.sign(&manifest.signing_bytes());
        SignedManifest { manifest, signer: signer.key_id(), signature }
    }

    /// Checks the signature (not whether the key is trusted).
    pub fn check_signature(&self) -> Result<()> {
        keys::verify_hex(&self.signer, &self.manifest.signing_bytes(), &self.signature).map_err(|detail| {
            StoreError::BadSignature { record: format!("manifest of run {}", self.manifest.run_id), detail }
        })
    }

    /// Pretty JSON for files.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serialises to JSON") + "\n"
    }

    /// Parses a manifest file's content; `record` names it in errors.
    pub fn from_json(text: &str, record: &str) -> Result<SignedManifest> {
        serde_json::from_str(text)
            .map_err(|e| StoreError::corrupt(record, format!("not a valid manifest: {e}")))
    }
}

/// Writes `v` as canonical JSON (sorted keys, no whitespace) into `out`.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_string(k).expect("string serialises").as_bytes());
                out.push(b':');
                canonical_json(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(x, out);
            }
            out.push(b']');
        }
        other => out.extend(serde_json::to_string(other).expect("scalar serialises").as_bytes()),
    }
}

/// Metric value to JSON: finite as a number, others as `"NaN"`, `"inf"`, `"-inf"`.
pub(crate) fn metric_to_json(x: f64) -> Value {
    if x.is_finite() {
        Value::from(x)
    } else if x.is_nan() {
        Value::from("NaN")
    } else if x > 0.0 {
        Value::from("inf")
    } else {
        Value::from("-inf")
    }
}

pub(crate) fn metric_from_json(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn metrics_to_json(m: &Metrics) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), metric_to_json(*v))).collect())
}

pub(crate) fn metrics_from_json(v: &Value) -> Option<Metrics> {
    v.as_object()?.iter().map(|(k, x)| Some((k.clone(), metric_from_json(x)?))).collect()
}

pub(crate) mod metrics_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Metrics, s: S) -> std::result::Result<S::Ok, S::Error> {
        metrics_to_json(m).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Metrics, D::Error> {
        let v = Value::deserialize(d)?;
        metrics_from_json(&v).ok_or_else(|| {
            serde::de::Error::custom("metrics must map names to numbers or \"NaN\"/\"inf\"/\"-inf\"")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v: Value = serde_json::from_str(r#"{ "b": [1, {"z": 1, "a": "x"}], "a": 0.1 }"#).unwrap();
        let mut out = Vec::new();
        canonical_json(&v, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":0.1,"b":[1,{"a":"x","z":1}]}"#);
    }

    #[test]
    fn metrics_round_trip_bit_for_bit_including_non_finite() {
        let m: Metrics = [
            ("a".to_string(), 0.1 + 0.2),
            ("b".to_string(), f64::NAN),
            ("c".to_string(), f64::NEG_INFINITY),
            ("d".to_string(), 1e-310),
        ]
        .into_iter()
        .collect();
        let e = EpochRecord { epoch: 1, metrics: m.clone() };
        let back: EpochRecord = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        for (k, v) in &m {
            assert_eq!(back.metrics[k].to_bits(), v.to_bits(), "{k}");
        }
    }

    #[test]
    fn signed_manifest_survives_a_json_round_trip_for_awkward_floats() {
        // Floats whose decimal forms need 17 digits; serde_json's default parser is not always
        // correctly rounded (hence the float_roundtrip feature), which would break signatures.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut vals = Vec::new();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                vals.push(v);
            }
        }
        let m = RunManifest {
            seed: u64::MAX,
            config: serde_json::json!({ "vals": vals }),
            final_metrics: vals.iter().enumerate().map(|(i, v)| (format!("m{i}"), *v)).collect(),
            ..bare_manifest()
        };
        let signed = SignedManifest::sign(m, &keys::Signer::from_seed([1; 32]));
        let back = SignedManifest::from_json(&signed.to_json_pretty(), "test").unwrap();
        back.check_signature().unwrap();
        assert_eq!(
            back.manifest.final_metrics["m5"].to_bits(),
            signed.manifest.final_metrics["m5"].to_bits()
        );
    }

    /// A finished manifest with nothing recorded.
    fn bare_manifest() -> RunManifest {
        RunManifest {
            format: MANIFEST_FORMAT,
            run_id: "r".into(),
            name: "n".into(),
            started_at: "t".into(),
            ended_at: None,
            status: RunStatus::Finished,
            code: CodeVersion { package: "p".into(), version: "v".into(), git_commit: None, git_dirty: None },
            command: None,
            cwd: None,
            seed: 1,
            config: serde_json::json!({}),
            data: vec![],
            parent_checkpoint: None,
            epochs: vec![],
            final_metrics: Metrics::new(),
            checkpoints: vec![],
            distributed: None,
        }
    }

    #[test]
    fn the_distributed_record_is_signed_and_absent_from_one_process_manifests() {
        let mut m = bare_manifest();
        // A one-process manifest signs the same bytes as before the field existed.
        assert!(!String::from_utf8_lossy(&m.signing_bytes()).contains("distributed"));
        let signer = keys::Signer::from_seed([2; 32]);
        m.distributed = Some(DistributedRecord {
            world_size: 2,
            shards: (0..2)
                .map(|r| ShardRecord { rank: r, examples: format!("rows j with j mod 2 = {r}") })
                .collect(),
        });
        let signed = SignedManifest::sign(m, &signer);
        let back = SignedManifest::from_json(&signed.to_json_pretty(), "test").unwrap();
        back.check_signature().unwrap();
        assert_eq!(back.manifest.distributed.as_ref().unwrap().shards[1].examples, "rows j with j mod 2 = 1");
        // Changing the recorded world size breaks the signature.
        let mut forged = back.clone();
        forged.manifest.distributed.as_mut().unwrap().world_size = 4;
        assert!(forged.check_signature().is_err());
    }
}
