//! Getting alerts to institutions: signed webhooks, delivered at least once from the outbox.
//!
//! # The signature
//!
//! Every webhook carries `X-Dropwatch-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA256 under the institution's webhook secret over `<unix seconds>.<raw body>`. A receiver
//! recomputes it over the body exactly as received, compares in constant time, and rejects
//! timestamps older than a few minutes (replay). [`verify`] does all of that.
//! `Idempotency-Key` is the same on every attempt of one alert: receivers deduplicate on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dropwatch_store::{now_micros, Attempt, AttemptNext, DueAlert, LeaseFence, Store};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use tokio::sync::{watch, Notify};

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "x-dropwatch-signature";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How old a signed timestamp may be before [`verify`] refuses it, by default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// The signature header value for a body sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(m.finalize().into_bytes())
    )
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("signature header is malformed")]
    Malformed,
    #[error("signature timestamp is {0} s away from now, beyond the tolerance")]
    Stale(i64),
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks a webhook as a receiver must: header well-formed, timestamp fresh, HMAC equal.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let mut ts = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => ts = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let ts = ts.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let skew = now_secs.saturating_sub(ts);
    if skew.abs() > tolerance_secs {
        return Err(VerifyError::Stale(skew));
    }
    for sig in sigs {
        let mut m = mac(secret);
        m.update(ts.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        // `verify_slice` compares in constant time.
        if m.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// After this many failed attempts an alert is dead-lettered.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    pub request_timeout: Duration,
    /// How often the worker looks for due alerts when nothing wakes it.
    pub idle_poll: Duration,
}

/// Most alerts one delivery pass claims (and sends concurrently).
pub const DELIVERY_BATCH: i64 = 256;

/// How long a claimed alert stays leased to its deliverer by default: longer than a request
/// can take, so that a live sender keeps it without renewals.
pub const DEFAULT_ALERT_LEASE: Duration = Duration::from_secs(60);

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            max_attempts: 12,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(600),
            request_timeout: Duration::from_secs(10),
            idle_poll: Duration::from_millis(500),
        }
    }
}

impl DeliveryConfig {
    /// Exponential backoff with full jitter: a random delay in [base·2^(n-1) / 2, base·2^(n-1)].
    pub fn backoff(&self, attempts_so_far: u32) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32 << attempts_so_far.min(20))
            .min(self.max_backoff);
        let half = exp / 2;
        half + Duration::from_micros(rand::rng().random_range(0..=half.as_micros() as u64))
    }
}

/// Delivers due alerts from the store's outbox.
#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    client: reqwest::Client,
    config: Arc<DeliveryConfig>,
    /// The owner name of the alert leases this deliverer takes.
    owner: Arc<str>,
    /// How long a claimed alert stays leased to this deliverer. Another deliverer (a `dropwatch
    /// worker`, `serve`) can take it over only after this; a `dropwatch worker` renews the
    /// leases of its in-flight alerts at every heartbeat.
    lease: Duration,
}

impl Deliverer {
    pub fn new(store: Store, config: DeliveryConfig) -> Result<Deliverer, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dropwatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let owner = format!(
            "deliver-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Deliverer {
            store,
            client,
            config: Arc::new(config),
            owner: owner.into(),
            lease: DEFAULT_ALERT_LEASE,
        })
    }

    /// The same deliverer with another alert lease time.
    pub fn with_lease(mut self, lease: Duration) -> Deliverer {
        self.lease = lease;
        self
    }

    /// The same deliverer taking its leases under `owner` (a `dropwatch worker`'s id, so
    /// that the worker's heartbeat renews them and its clean stop releases them).
    pub fn with_owner(mut self, owner: &str) -> Deliverer {
        self.owner = owner.into();
        self
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// One pass: claims due alerts (a lease each, so that no other deliverer sends them at the
    /// same time), sends them concurrently and records each attempt under its lease. Returns
    /// how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize, dropwatch_store::StoreError> {
        let due = self
            .store
            .claim_alerts(
                &self.owner,
                now_micros(),
                self.lease.as_micros() as i64,
                DELIVERY_BATCH,
            )
            .await?;
        let mut set = tokio::task::JoinSet::new();
        for claimed in due {
            let this = self.clone();
            set.spawn(async move { this.deliver_one(claimed.alert, claimed.lease).await });
        }
        let mut delivered = 0;
        while let Some(res) = set.join_next().await {
            match res {
                Ok(Ok(true)) => delivered += 1,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => tracing::error!(error = %e, "delivery task failed"),
            }
        }
        Ok(delivered)
    }

    async fn deliver_one(
        &self,
        alert: DueAlert,
        lease: LeaseFence,
    ) -> Result<bool, dropwatch_store::StoreError> {
        let (Some(url), Some(secret)) = (
            alert.webhook_url.as_deref(),
            alert.webhook_secret.as_deref(),
        ) else {
            self.store.release_alert(alert.id, &lease).await?;
            return Ok(false);
        };
        let started = Instant::now();
        let ts = now_micros() / 1_000_000;
        let signature = sign(secret.as_bytes(), ts, alert.payload.as_bytes());
        let res = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(IDEMPOTENCY_HEADER, &alert.idempotency_key)
            .body(alert.payload.clone())
            .send()
            .await;
        let duration_us = started.elapsed().as_micros() as i64;
        let (status, error) = match &res {
            Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
            Ok(r) => (
                Some(r.status().as_u16()),
                Some(format!("HTTP {}", r.status())),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        let at = now_micros();
        let attempts = alert.attempts as u32 + 1;
        let next = if error.is_none() {
            AttemptNext::Delivered
        } else if attempts >= self.config.max_attempts {
            AttemptNext::Dead
        } else {
            AttemptNext::RetryAt(at + self.config.backoff(attempts).as_micros() as i64)
        };
        match (&next, &error) {
            (AttemptNext::Delivered, _) => {
                tracing::debug!(alert = alert.id, institution = %alert.institution_id, "alert delivered")
            }
            (AttemptNext::Dead, Some(e)) => {
                tracing::warn!(alert = alert.id, error = %e, "alert dead-lettered")
            }
            (_, Some(e)) => {
                tracing::info!(alert = alert.id, attempt = attempts, error = %e, "delivery failed; will retry")
            }
            _ => {}
        }
        let recorded = self
            .store
            .record_attempt_fenced(
                alert.id,
                &lease,
                &Attempt {
                    at,
                    http_status: status,
                    error,
                    duration_us,
                    next,
                },
            )
            .await?;
        if !recorded {
            // The lease expired and another deliverer claimed the alert: its attempt counts.
            tracing::warn!(
                alert = alert.id,
                "alert lease lost during the attempt; attempt not recorded"
            );
            return Ok(false);
        }
        Ok(next == AttemptNext::Delivered)
    }

    /// Runs until `shutdown` turns true: delivers whenever woken, and every `idle_poll` anyway.
    pub async fn run(&self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = %e, "delivery pass failed");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.config.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_fail_as_they_should() {
        let body = br#"{"schema":"dropwatch.alert/v1"}"#;
        let h = sign(b"secret", 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify(b"secret", &h, body, 1_700_000_010, 300), Ok(()));
        assert_eq!(
            verify(b"other", &h, body, 1_700_000_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &h, b"{}", 1_700_000_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &h, body, 1_700_001_000, 300),
            Err(VerifyError::Stale(1000))
        );
        assert_eq!(
            verify(b"secret", "v1=00", body, 0, 300),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify(b"secret", "t=1,v1=zz", body, 1, 300),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = DeliveryConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..DeliveryConfig::default()
        };
        for n in 0..30 {
            let d = c.backoff(n);
            let cap = Duration::from_millis(100)
                .saturating_mul(1 << n.min(20))
                .min(Duration::from_secs(1));
            assert!(d >= cap / 2 && d <= cap, "attempt {n}: {d:?} vs {cap:?}");
        }
    }
}
