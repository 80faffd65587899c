//! What every command needs: the store and the deployment's secret key.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use dropwatch_records::SecretKey;
use dropwatch_store::Store;

pub struct Context {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

impl Context {
    pub async fn store(&self) -> anyhow::Result<Store> {
        match &self.database_url {
            Some(url) => Store::connect(url)
                .await
                .with_context(|| "opening the database"),
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .with_context(|| format!("creating {}", self.data_dir.display()))?;
                Store::open_data_dir(&self.data_dir)
                    .await
                    .with_context(|| format!("opening the store in {}", self.data_dir.display()))
            }
        }
    }

    pub fn secret_key(&self) -> anyhow::Result<SecretKey> {
        load_or_create_key(&self.data_dir.join("secret-hmac.key"))
    }
}

/// Reads the 32-byte HMAC key for victims' secrets, creating it (mode 0600) on first use.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<SecretKey> {
    if let Ok(bytes) = std::fs::read(path) {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()))?;
        return Ok(SecretKey::from_bytes(arr));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let key: [u8; 32] = rand::random();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&key)?;
    Ok(SecretKey::from_bytes(key))
}

/// A fresh random secret, hex, for webhooks.
pub fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}
