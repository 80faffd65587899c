//! Secrets the deployment must be able to use again, sealed at rest.
//!
//! Victims' secrets are never kept at all (a mask and a keyed hash only). Two kinds of secret
//! must be kept usable: the key each institution's webhooks are signed with, and the password
//! of a seized panel database (or of an HTTP drop behind basic authentication). They are stored
//! sealed with XChaCha20-Poly1305 under the deployment's seal key, which lives outside the
//! database (`secret-seal.key` in the data directory), so a copy of the database alone (a
//! backup, a replica, a dump attached to a ticket) reveals none of them.
//!
//! A sealed value is text: `sealed:v1:` then hex of the 24-byte random nonce and the
//! ciphertext with its tag. The associated data names the column and the row the value belongs
//! to, so a sealed value copied into another row does not open there.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// The text every sealed value starts with; a value without it is a legacy clear value.
pub const SEALED_PREFIX: &str = "sealed:v1:";

const NONCE_LEN: usize = 24;

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The store was opened without a seal key, and a secret had to be sealed or opened.
    #[error(
        "no seal key: secrets are sealed at rest, open the store with the deployment's seal key"
    )]
    NoKey,
    /// The value is not `sealed:v1:` + hex, or too short to hold a nonce and a tag.
    #[error("sealed value is malformed")]
    Malformed,
    /// Authentication failed: another key sealed it, or it was moved from another row, or it
    /// was altered.
    #[error("sealed value does not open with this seal key (another deployment's key, or the value was moved or altered)")]
    WrongKey,
}

/// The deployment's key for secrets at rest.
#[derive(Clone)]
pub struct SealKey {
    cipher: XChaCha20Poly1305,
    fingerprint: String,
}

impl SealKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        let cipher = XChaCha20Poly1305::new(&bytes.into());
        SealKey {
            cipher,
            fingerprint: key_fingerprint(&bytes, "seal"),
        }
    }

    /// A public name for this key (an HMAC of a constant under it): equal for equal keys,
    /// revealing nothing of the key. The store records it to refuse a second, different key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Seals `plain` for the place named by `context` (column and row).
    pub fn seal(&self, context: &str, plain: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            // Encryption fails only for messages beyond 256 GiB.
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 refused a short message"));
        let mut out = String::with_capacity(SEALED_PREFIX.len() + 2 * (NONCE_LEN + sealed.len()));
        out.push_str(SEALED_PREFIX);
        out.push_str(&hex::encode(nonce_bytes));
        out.push_str(&hex::encode(sealed));
        out
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SealError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SealError::Malformed)?;
        let bytes = hex::decode(body).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::from_slice(nonce);
        let plain = self
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", self.fingerprint)
    }
}

/// Whether a stored value is sealed (as opposed to a clear value written before sealing).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// The public fingerprint of a 32-byte deployment key: hex of the first 16 bytes of
/// HMAC-SHA256(key, "dropwatch key fingerprint v1 " + purpose).
pub fn key_fingerprint(key: &[u8; 32], purpose: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"dropwatch key fingerprint v1 ");
    mac.update(purpose.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Splits the password out of a URL (`scheme://user:password@host/...`): the URL without it,
/// and the password, percent-decoded as the URL carries it. A URL without a password, or that
/// does not parse, comes back unchanged.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (url.to_string(), None);
    };
    let Some(pw) = parsed.password().map(str::to_string) else {
        return (url.to_string(), None);
    };
    if parsed.set_password(None).is_err() {
        return (url.to_string(), None);
    }
    (parsed.to_string(), Some(pw))
}

/// Puts a password (as `split_password` returned it) back into a URL.
pub fn join_password(url: &str, password: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_password(Some(password)).ok()?;
    Some(parsed.to_string())
}

/// Reads a 32-byte deployment key file, creating it (random, mode 0600) if it does not exist.
/// Two processes creating it at once agree: the loser of the race reads the winner's key.
pub fn load_or_create_key_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::{Error, ErrorKind, Write};
    let read = |path: &Path| -> std::io::Result<[u8; 32]> {
        let bytes = std::fs::read(path)?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            Error::new(
                ErrorKind::InvalidData,
                format!(
                    "{} holds {} bytes, not a 32-byte key",
                    path.display(),
                    b.len()
                ),
            )
        })
    };
    match read(path) {
        Ok(key) => return Ok(key),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let key: [u8; 32] = rand::random();
    // Written whole under a fresh random name (processes in containers may share a PID), then
    // linked into place: nobody reads half a key, and of two processes creating it at once the
    // second to link reads and uses the first's.
    let tmp = path.with_extension(format!("tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(&key)?;
    f.sync_all()?;
    drop(f);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        // What is in place is what every process reads: read it back rather than trust `key`.
        Ok(()) => read(path),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_with_the_same_key_and_context() {
        let k = SealKey::from_bytes([1; 32]);
        let s = k.seal("institutions.webhook_secret:bank-a", "s3cret");
        assert!(is_sealed(&s));
        assert!(!s.contains("s3cret"));
        assert_eq!(
            k.open("institutions.webhook_secret:bank-a", &s).unwrap(),
            "s3cret"
        );
        // Another row's context, another key, a flipped byte: refused.
        assert_eq!(
            k.open("institutions.webhook_secret:bank-b", &s),
            Err(SealError::WrongKey)
        );
        let other = SealKey::from_bytes([2; 32]);
        assert_eq!(
            other.open("institutions.webhook_secret:bank-a", &s),
            Err(SealError::WrongKey)
        );
        let mut flipped = s.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            k.open("institutions.webhook_secret:bank-a", &flipped),
            Err(SealError::WrongKey)
        );
        // Two seals of one value differ (random nonces).
        assert_ne!(s, k.seal("institutions.webhook_secret:bank-a", "s3cret"));
    }

    #[test]
    fn malformed_values_are_refused_without_panic() {
        let k = SealKey::from_bytes([1; 32]);
        for bad in [
            "",
            "s3cret",
            "sealed:v1:",
            "sealed:v1:zz",
            "sealed:v1:00",
            "sealed:v2:00",
        ] {
            assert_eq!(k.open("c", bad), Err(SealError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_name_keys_without_revealing_them() {
        let a = SealKey::from_bytes([1; 32]);
        let b = SealKey::from_bytes([1; 32]);
        let c = SealKey::from_bytes([2; 32]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().len(), 32);
        assert_ne!(key_fingerprint(&[1; 32], "hmac"), a.fingerprint());
    }

    #[test]
    fn key_files_are_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secret-seal.key");
        let a = load_or_create_key_file(&path).unwrap();
        let b = load_or_create_key_file(&path).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        let err = load_or_create_key_file(&path).unwrap_err();
        assert!(err.to_string().contains("5 bytes"), "{err}");
    }

    #[test]
    fn passwords_split_out_of_urls_and_back() {
        let (u, pw) = split_password("mysql://root:p%40ss@10.0.0.5:3306/panel");
        assert_eq!(u, "mysql://root@10.0.0.5:3306/panel");
        assert_eq!(pw.as_deref(), Some("p%40ss"));
        assert_eq!(
            join_password(&u, pw.as_deref().unwrap()).unwrap(),
            "mysql://root:p%40ss@10.0.0.5:3306/panel"
        );
        let (u, pw) = split_password("https://drop.example/gate/logs.txt");
        assert_eq!(u, "https://drop.example/gate/logs.txt");
        assert_eq!(pw, None);
        let (u, pw) = split_password("./drops/reports.txt");
        assert_eq!(u, "./drops/reports.txt");
        assert_eq!(pw, None);
    }
}
