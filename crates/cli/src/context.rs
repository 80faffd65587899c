//! What every command needs: the store and the deployment's keys.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use dropwatch_records::SecretKey;
use dropwatch_store::{key_fingerprint, load_or_create_key_file, Store};

pub struct Context {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

impl Context {
    /// The store, with the deployment's keys checked against it: the seal key (webhook keys
    /// and drop passwords at rest) and the HMAC key's fingerprint, so that a worker brought up
    /// with a fresh data directory is refused instead of hashing victims' secrets with another
    /// key. Both key files live in the data directory, also when the database is PostgreSQL.
    pub async fn store(&self) -> anyhow::Result<Store> {
        let store = match &self.database_url {
            Some(url) => {
                let store = Store::connect(url)
                    .await
                    .with_context(|| "opening the database")?;
                let seal = dropwatch_store::seal_key_file(&self.data_dir)?;
                store
                    .with_seal_key(seal)
                    .await
                    .with_context(|| format!("the seal key in {}", self.data_dir.display()))?
            }
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .with_context(|| format!("creating {}", self.data_dir.display()))?;
                Store::open_data_dir(&self.data_dir)
                    .await
                    .with_context(|| format!("opening the store in {}", self.data_dir.display()))?
            }
        };
        let hmac = key_bytes(&self.data_dir.join(HMAC_KEY_FILE))?;
        store
            .check_key("hmac", &key_fingerprint(&hmac, "hmac"))
            .await
            .with_context(|| {
                format!(
                    "the HMAC key {}",
                    self.data_dir.join(HMAC_KEY_FILE).display()
                )
            })?;
        Ok(store)
    }

    pub fn secret_key(&self) -> anyhow::Result<SecretKey> {
        load_or_create_key(&self.data_dir.join(HMAC_KEY_FILE))
    }
}

/// The HMAC key's file name in a data directory.
pub const HMAC_KEY_FILE: &str = "secret-hmac.key";

fn key_bytes(path: &Path) -> anyhow::Result<[u8; 32]> {
    load_or_create_key_file(path).with_context(|| format!("key file {}", path.display()))
}

/// Reads the 32-byte HMAC key for victims' secrets, creating it (mode 0600) on first use.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<SecretKey> {
    Ok(SecretKey::from_bytes(key_bytes(path)?))
}

/// A fresh random secret, hex, for webhooks.
pub fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}
