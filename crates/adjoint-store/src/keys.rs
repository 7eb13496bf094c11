//! Ed25519 signing keys: generation, key files, signing and checking of registry records.
//!
//! A key file holds one line `adjoint-ed25519-secret-v1 <64 hex digits of the 32-byte seed>` and
//! is created with mode 0600; loading refuses a secret key file that group or others can read
//! (as ssh does). The public half is written beside it as `<file>.pub` with one line
//! `adjoint-ed25519-public-v1 <64 hex digits>`. A key's id is the hex of its public key.
//!
//! Every signed message starts with a domain tag (`adjoint-run-manifest-v1`, `adjoint-checkpoint-v1`,
//! ...) so that a signature over one kind of record can never be replayed as another.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};

use crate::error::{Result, StoreError};
use crate::fsutil;

const SECRET_TAG: &str = "adjoint-ed25519-secret-v1";
const PUBLIC_TAG: &str = "adjoint-ed25519-public-v1";

/// Environment variable naming the signing key file used by the CLI and by reproduced runs.
pub const ENV_KEY: &str = "ADJOINT_KEY";

/// An Ed25519 signing key.
///
/// ```
/// let signer = adjoint_store::Signer::generate();
/// let sig = signer.sign(b"hello");
/// assert!(adjoint_store::keys::verify_hex(&signer.key_id(), b"hello", &sig).is_ok());
/// ```
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", short_id(&self.key_id()))
    }
}

impl Signer {
    /// A new random key from the operating system's random source.
    pub fn generate() -> Signer {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("operating system random source unavailable");
        Signer { key: SigningKey::from_bytes(&seed) }
    }

    /// A key from a 32-byte seed (deterministic; for tests and key derivation).
    pub fn from_seed(seed: [u8; 32]) -> Signer {
        Signer { key: SigningKey::from_bytes(&seed) }
    }

    /// The key id: lowercase hex of the 32-byte public key.
    pub fn key_id(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs `msg`, returning the signature as hex.
    pub fn sign(&self, msg: &[u8]) -> String {
        hex::encode(self.key.sign(msg).to_bytes())
    }

    /// Writes the secret key to `path` (0600, refusing to overwrite) and the public key to
    /// `path.pub`. Returns the public key file's path.
    pub fn save(&self, path: &Path) -> Result<PathBuf> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            fsutil::ensure_private_dir(dir)?;
        }
        if path.exists() {
            return Err(StoreError::KeyFile {
                path: path.into(),
                detail: "already exists; not overwriting".into(),
            });
        }
        let secret = format!("{SECRET_TAG} {}\n", hex::encode(self.key.to_bytes()));
        fsutil::atomic_write(path, secret.as_bytes())?;
        let pub_path = public_key_path(path);
        fsutil::atomic_write(&pub_path, format!("{PUBLIC_TAG} {}\n", self.key_id()).as_bytes())?;
        fsutil::set_mode(&pub_path, 0o644)?;
        Ok(pub_path)
    }

    /// Loads a secret key file written by [`Signer::save`] (or `adjoint keys generate`).
    pub fn load(path: &Path) -> Result<Signer> {
        let bad = |detail: String| StoreError::KeyFile { path: path.into(), detail };
        let meta = fs::metadata(path).map_err(|e| StoreError::io("read key file", path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "permissions {mode:o} are too open; a secret key must be readable by its owner only (chmod 600)"
                )));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = read_key_text(path, "read key file")?;
        Signer::from_key_file_text(&text, path)
    }

    /// Parses the content of a secret key file (`adjoint-ed25519-secret-v1 <64 hex digits>`);
    /// `path` names it in errors. [`Signer::load`] = permission check + read + this.
    ///
    /// ```
    /// use std::path::Path;
    /// let text = format!("adjoint-ed25519-secret-v1 {}\n", "11".repeat(32));
    /// assert!(adjoint_store::Signer::from_key_file_text(&text, Path::new("k")).is_ok());
    /// assert!(adjoint_store::Signer::from_key_file_text("adjoint-ed25519-secret-v1 zz", Path::new("k")).is_err());
    /// ```
    pub fn from_key_file_text(text: &str, path: &Path) -> Result<Signer> {
        let bad = |detail: String| StoreError::KeyFile { path: path.into(), detail };
        let hexseed = text
            .trim()
            .strip_prefix(SECRET_TAG)
            .ok_or_else(|| {
                bad(format!("not an adjoint secret key (expected a line starting {SECRET_TAG:?})"))
            })?
            .trim();
        let seed: [u8; 32] = hex::decode(hexseed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the key is not 64 hex digits".into()))?;
        Ok(Signer::from_seed(seed))
    }

    /// Loads the key at `path`, or generates and saves a new one there if there is none.
    pub fn load_or_generate(path: &Path) -> Result<Signer> {
        if path.exists() {
            Signer::load(path)
        } else {
            let s = Signer::generate();
            s.save(path)?;
            Ok(s)
        }
    }
}

/// The default signing key location, `$HOME/.config/adjoint/signing.key` (`None` without a home
/// folder). Used when neither `--key` nor `ADJOINT_KEY` is given.
pub fn default_key_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".config").join("adjoint").join("signing.key"))
}

/// `path` with `.pub` appended.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Reads a public key given either as 64 hex digits or as the path of a `.pub` (or secret) key
/// file, returning its key id.
pub fn read_public_key(spec: &str) -> Result<String> {
    if spec.len() == 64 && parse_key_id(spec).is_ok() {
        return Ok(spec.to_ascii_lowercase());
    }
    let path = Path::new(spec);
    let text = read_key_text(path, "read public key")?;
    if text.trim().starts_with(SECRET_TAG) {
        Ok(Signer::load(path)?.key_id())
    } else {
        parse_public_key_file(&text, path)
    }
}

/// Key files are one short line; anything longer than this is refused unread.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Reads a key file, refusing one over [`MAX_KEY_FILE_BYTES`] (`/dev/zero` given as a key file
/// is an error, not an endless read).
fn read_key_text(path: &Path, action: &'static str) -> Result<String> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(|e| StoreError::io(action, path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| StoreError::io(action, path, e))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(StoreError::KeyFile {
            path: path.into(),
            detail: format!("longer than {MAX_KEY_FILE_BYTES} bytes; not a key file"),
        });
    }
    String::from_utf8(bytes).map_err(|_| StoreError::KeyFile {
        path: path.into(),
        detail: "not UTF-8 text; not a key file".into(),
    })
}

/// Parses the content of a public key file (`adjoint-ed25519-public-v1 <64 hex digits>`),
/// returning the key id; `path` names it in errors.
///
/// ```
/// use std::path::Path;
/// let signer = adjoint_store::Signer::from_seed([7; 32]);
/// let text = format!("adjoint-ed25519-public-v1 {}\n", signer.key_id());
/// assert_eq!(adjoint_store::keys::parse_public_key_file(&text, Path::new("k.pub")).unwrap(), signer.key_id());
/// assert!(adjoint_store::keys::parse_public_key_file("ssh-ed25519 AAAA", Path::new("k.pub")).is_err());
/// ```
pub fn parse_public_key_file(text: &str, path: &Path) -> Result<String> {
    let text = text.trim();
    if let Some(h) = text.strip_prefix(PUBLIC_TAG) {
        let id = h.trim().to_ascii_lowercase();
        parse_key_id(&id).map_err(|_| StoreError::KeyFile {
            path: path.into(),
            detail: "public key is not a valid 64-hex-digit Ed25519 key".into(),
        })?;
        Ok(id)
    } else {
        Err(StoreError::KeyFile {
            path: path.into(),
            detail: format!("expected a line starting {PUBLIC_TAG:?}"),
        })
    }
}

fn parse_key_id(id: &str) -> std::result::Result<VerifyingKey, String> {
    let bytes: [u8; 32] =
        hex::decode(id).ok().and_then(|b| b.try_into().ok()).ok_or("key id is not 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Checks that `id` is 64 hex digits naming a valid Ed25519 public key.
pub(crate) fn validate_key_id(id: &str) -> std::result::Result<(), String> {
    parse_key_id(id).map(|_| ())
}

/// Checks a hex signature of `msg` by the key `key_id`. The error string says what failed.
pub fn verify_hex(key_id: &str, msg: &[u8], sig_hex: &str) -> std::result::Result<(), String> {
    let key = parse_key_id(key_id)?;
    let sig: [u8; 64] =
        hex::decode(sig_hex).ok().and_then(|b| b.try_into().ok()).ok_or("signature is not 128 hex digits")?;
    key.verify(msg, &Signature::from_bytes(&sig)).map_err(|_| "signature does not match the content".into())
}

/// First 16 hex digits of a key id, for display.
///
/// Safe on any string (an id read from a hostile file may not be hex):
///
/// ```
/// assert_eq!(adjoint_store::keys::short_id("0123456789abcdef0123"), "0123456789abcdef");
/// assert_eq!(adjoint_store::keys::short_id("aéééééééééé"), "aéééééééééé");
/// ```
pub fn short_id(id: &str) -> &str {
    id.char_indices().nth(16).map_or(id, |(i, _)| &id[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let s = Signer::from_seed(seed);
        assert_eq!(s.key_id(), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(
            s.sign(b""),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn wrong_message_or_key_is_rejected() {
        let a = Signer::from_seed([1; 32]);
        let b = Signer::from_seed([2; 32]);
        let sig = a.sign(b"m");
        assert!(verify_hex(&a.key_id(), b"m", &sig).is_ok());
        assert!(verify_hex(&a.key_id(), b"n", &sig).unwrap_err().contains("does not match"));
        assert!(verify_hex(&b.key_id(), b"m", &sig).is_err());
        assert!(verify_hex(&a.key_id(), b"m", "zz").unwrap_err().contains("128 hex"));
    }
}
