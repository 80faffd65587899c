//! Monitors: read what a drop server stores, incrementally, and hand each new record to analysis.
//!
//! The HTTP connector polls an append-only JSON-lines listing of panel reports. Its cursor is
//! the byte offset just past the last complete line it ingested; it asks for the rest with
//! `Range: bytes=<cursor>-` and stores the new cursor in the same transaction as the records,
//! so a restart neither loses nor repeats a record. Bodies are read up to a limit; a partial
//! last line waits for the next poll.
//!
//! [`panel_db`] reads a seized ZeuS 2.x / Citadel / SpyEye / Tinba panel database directly
//! (source kind [`KIND_PANEL_MYSQL`]); its cursor is the last row id read per day table.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dropwatch_records::RecordAnalyzer;
use dropwatch_store::{
    now_micros, BadRecords, IngestBatch, IngestOutcome, LeaseFence, MonitorSource, Store,
    StoreError,
};
use rand::Rng;
use tokio::sync::{watch, Notify};

pub mod formats;
pub mod panel_db;
pub mod sql_dump;

pub use formats::{
    ByteCursor, DropFormat, Transport, KIND_FILE_CSV, KIND_FILE_GRABS_TXT, KIND_FILE_JSON,
    KIND_FILE_REPORTS_TXT, KIND_FILE_SQL_DUMP, KIND_HTTP_CSV, KIND_HTTP_GRABS_TXT, KIND_HTTP_JSON,
    KIND_HTTP_JSON_PAGES, KIND_HTTP_REPORTS_TXT, KIND_HTTP_SQL_DUMP,
};
pub use panel_db::{PanelDbError, PanelDbLimits, KIND_PANEL_MYSQL};

/// Source kind: an HTTP(S) URL serving panel reports as JSON lines, appended over time.
pub const KIND_HTTP_JSONL: &str = "http_jsonl";
/// Source kind: a local JSON-lines file.
pub const KIND_FILE_JSONL: &str = "file_jsonl";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("HTTP request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("refusing to poll {0}: it is a loopback or private address (allow it explicitly)")]
    PrivateAddress(String),
    #[error("invalid source URL {0:?}")]
    BadUrl(String),
    #[error("unsupported source kind {0:?}")]
    UnsupportedKind(String),
    #[error("the password of {0} does not open with this deployment's seal key; set it again with `monitor add`")]
    Credential(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{url}: a snapshot larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: usize },
    #[error("panel database: {0}")]
    PanelDb(#[from] PanelDbError),
}

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub poll_interval: Duration,
    /// Each interval is stretched by a random fraction up to this (0.2 = up to +20 %).
    pub jitter: f64,
    /// Most bytes read from one response; the rest is fetched by the next poll.
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub user_agent: String,
    /// Allow loopback and private addresses (tests and the demo use 127.0.0.1).
    pub allow_private: bool,
    /// Bounds of one poll of a panel database.
    pub panel_db: panel_db::PanelDbLimits,
    /// Every HTTP(S) request through this proxy: `http://`, `https://`, `socks5://` or
    /// `socks5h://` (names resolved by the proxy, as through Tor). `None`: direct, or what the
    /// `HTTP(S)_PROXY` environment says.
    pub proxy: Option<String>,
    /// At most this many requests per second to one host, across its sources (a drop server
    /// that sees a burst of polls may notice it is watched). `None`: no limit.
    pub max_requests_per_host_per_sec: Option<f64>,
    /// Most pages of a paged JSON listing read in one poll.
    pub max_pages_per_poll: usize,
}

impl Default for MonitorConfig {
    fn default() -> MonitorConfig {
        MonitorConfig {
            poll_interval: Duration::from_secs(60),
            jitter: 0.2,
            max_body_bytes: 16 << 20,
            request_timeout: Duration::from_secs(30),
            user_agent: concat!("dropwatch/", env!("CARGO_PKG_VERSION")).to_string(),
            allow_private: false,
            panel_db: panel_db::PanelDbLimits::default(),
            proxy: None,
            max_requests_per_host_per_sec: None,
            max_pages_per_poll: 50,
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    pub bytes: u64,
    /// Lines (or database rows) read.
    pub lines: u64,
    /// Lines that were not panel reports, with their position in the source: the byte offset
    /// for files and HTTP, the row id for panel databases (the message names the table).
    pub bad_lines: Vec<(u64, String)>,
    pub ingest: IngestOutcome,
}

/// Splits complete lines off the front of `buf`: returns the lines (with their offset in `buf`)
/// and how many bytes they span. A trailing partial line is left for later.
pub fn complete_lines(buf: &[u8]) -> (Vec<(usize, &[u8])>, usize) {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(i) = buf[start..].iter().position(|&b| b == b'\n') {
        let line = &buf[start..start + i];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        lines.push((start, line));
        start += i + 1;
    }
    (lines, start)
}

/// True when a URL host is loopback, private, link-local or unspecified (or absent).
fn is_private_host(host: Option<url::Host<&str>>) -> bool {
    match host {
        Some(url::Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
        // Non-special schemes (`mysql://`) leave IPv4 literals as opaque "domains".
        Some(url::Host::Domain(d)) => match d.parse::<IpAddr>() {
            Ok(ip) => is_private(ip),
            Err(_) => {
                let d = d.trim_end_matches('.');
                d.eq_ignore_ascii_case("localhost")
                    || d.to_ascii_lowercase().ends_with(".localhost")
            }
        },
        None => true,
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Running totals over every chunk a [`Monitor`] ingested.
#[derive(Debug, Default)]
pub struct MonitorTotals {
    pub lines: AtomicU64,
    pub bad_lines: AtomicU64,
    pub new_records: AtomicU64,
    pub duplicate_records: AtomicU64,
    pub unattributed: AtomicU64,
    pub new_victims: AtomicU64,
    pub alerts: AtomicU64,
}

impl MonitorTotals {
    fn add(&self, out: &PollOutcome) {
        let add = |c: &AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
        add(&self.lines, out.lines);
        add(&self.bad_lines, out.bad_lines.len() as u64);
        add(&self.new_records, out.ingest.new_records);
        add(&self.duplicate_records, out.ingest.duplicate_records);
        add(&self.unattributed, out.ingest.unattributed);
        add(&self.new_victims, out.ingest.new_victims);
        add(&self.alerts, out.ingest.alerts);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Polls sources and feeds the store.
#[derive(Clone)]
pub struct Monitor {
    store: Store,
    analyzer: Arc<RecordAnalyzer>,
    client: reqwest::Client,
    config: Arc<MonitorConfig>,
    /// Notified whenever an ingest produced alerts, so delivery starts at once.
    alerts_ready: Arc<Notify>,
    totals: Arc<MonitorTotals>,
    /// When the next request to each host may start (the per-host rate limit).
    next_request: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>,
}

impl Monitor {
    pub fn totals(&self) -> &MonitorTotals {
        &self.totals
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// True when a poll stopped at the read limit (bytes, or panel rows), so the source has
    /// more to read now rather than at its next interval.
    pub fn read_limit_reached(&self, source: &MonitorSource, out: &PollOutcome) -> bool {
        if source.kind == KIND_PANEL_MYSQL {
            out.lines >= self.config.panel_db.max_rows
        } else {
            out.bytes >= self.config.max_body_bytes as u64
        }
    }

    pub fn new(
        store: Store,
        analyzer: Arc<RecordAnalyzer>,
        config: MonitorConfig,
        alerts_ready: Arc<Notify>,
    ) -> Result<Monitor, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            // Redirects could lead into private ranges; a drop that moves is re-registered by hand.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(proxy) = &config.proxy {
            builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?);
        }
        let client = builder.build()?;
        Ok(Monitor {
            store,
            analyzer,
            client,
            config: Arc::new(config),
            alerts_ready,
            totals: Arc::default(),
            next_request: Arc::default(),
        })
    }

    /// Analyses the complete JSON lines of `data` (which starts at byte `base` of the source)
    /// and ingests them with the cursor that follows them.
    pub async fn ingest_chunk(
        &self,
        source: Option<&MonitorSource>,
        base: u64,
        data: &[u8],
        fetched_at: i64,
    ) -> Result<PollOutcome, StoreError> {
        let cursor = ByteCursor {
            offset: base,
            ..ByteCursor::default()
        };
        self.ingest_formatted(
            source,
            DropFormat::JsonLines,
            &cursor,
            data,
            false,
            fetched_at,
        )
        .await
    }

    /// Analyses the complete records of `data` in `format` (the chunk starts at
    /// `cursor.offset`) and ingests them with the cursor that follows them. `full` says the
    /// chunk filled the read limit: if it holds no complete record, it is one too large to
    /// ever complete, and it is skipped (counted as a bad record) so the source moves on.
    pub async fn ingest_formatted(
        &self,
        source: Option<&MonitorSource>,
        format: DropFormat,
        cursor: &ByteCursor,
        data: &[u8],
        full: bool,
        fetched_at: i64,
    ) -> Result<PollOutcome, StoreError> {
        self.ingest_formatted_leased(source, None, format, cursor, data, full, fetched_at)
            .await
    }

    /// [`Monitor::ingest_formatted`] under a source lease: the batch commits only while the
    /// lease holds (see `dropwatch_store::LeaseFence`).
    #[allow(clippy::too_many_arguments)]
    async fn ingest_formatted_leased(
        &self,
        source: Option<&MonitorSource>,
        lease: Option<&LeaseFence>,
        format: DropFormat,
        cursor: &ByteCursor,
        data: &[u8],
        full: bool,
        fetched_at: i64,
    ) -> Result<PollOutcome, StoreError> {
        let base = cursor.offset;
        let mut parsed = formats::parse_chunk(format, base, data, cursor.header.as_deref());
        let mut out = PollOutcome {
            bytes: data.len() as u64,
            ..PollOutcome::default()
        };
        if full && parsed.consumed == 0 && format.is_append_only() {
            tracing::warn!(
                source = source.map(|s| s.url.as_str()),
                offset = base,
                len = data.len(),
                "skipping a record larger than the read limit"
            );
            out.bad_lines.push((
                base,
                format!(
                    "a record exceeds the {}-byte read limit; skipped",
                    data.len()
                ),
            ));
            parsed.consumed = data.len();
            parsed.header = formats::header_after_skip(format, parsed.header);
        }
        let records = self.analyze_all(source, parsed.records, &mut out);
        // The validators describe the whole resource: they are kept only after a read that
        // reached its end, or an unchanged drop would hide what lies beyond the read limit.
        let (etag, last_modified) = if full {
            (None, None)
        } else {
            (cursor.etag.clone(), cursor.last_modified.clone())
        };
        let next = if format.is_append_only() {
            ByteCursor {
                offset: base + parsed.consumed as u64,
                header: parsed.header,
                etag,
                last_modified,
                page: None,
            }
        } else {
            // A snapshot has no position: it is read whole every time it changes.
            ByteCursor {
                etag,
                last_modified,
                ..ByteCursor::default()
            }
        };
        self.ingest_records(source, lease, next.to_text(), records, out, fetched_at)
            .await
    }

    /// Analyses the reports a source served; what is not a report becomes a counted bad line.
    fn analyze_all(
        &self,
        source: Option<&MonitorSource>,
        parsed: Vec<(
            u64,
            Result<dropwatch_model::PanelReport, formats::FormatError>,
        )>,
        out: &mut PollOutcome,
    ) -> Vec<dropwatch_model::AnalyzedRecord> {
        let mut records = Vec::with_capacity(parsed.len());
        for (at, report) in parsed {
            out.lines += 1;
            match report {
                Ok(report) => records.push(self.analyzer.analyze(&report)),
                Err(e) => {
                    tracing::warn!(source = source.map(|s| s.url.as_str()), offset = at, error = %e, "skipping a record that is not a panel report");
                    out.bad_lines.push((at, e.to_string()));
                }
            }
        }
        records
    }

    /// Ingests analysed records with the source's next cursor in one store transaction, and
    /// counts the outcome. Every connector ends here.
    async fn ingest_records(
        &self,
        source: Option<&MonitorSource>,
        lease: Option<&LeaseFence>,
        cursor: String,
        records: Vec<dropwatch_model::AnalyzedRecord>,
        mut out: PollOutcome,
        fetched_at: i64,
    ) -> Result<PollOutcome, StoreError> {
        // A snapshot is read whole every poll: its count replaces the last one.
        let snapshot = source.is_some_and(|s| {
            formats::byte_source_kind(&s.kind).is_some_and(|(_, format)| !format.is_append_only())
        });
        let batch = IngestBatch {
            source_id: source.map(|s| s.id),
            cursor: Some(cursor),
            fetched_at,
            source_server: source.map(|s| s.url.clone()),
            records,
            lease: lease.cloned(),
            bad_records: BadRecords {
                count: out.bad_lines.len() as u64,
                last_position: out.bad_lines.last().map(|(at, _)| *at),
                replace: snapshot,
            },
        };
        out.ingest = self.store.ingest(&batch).await?;
        self.totals.add(&out);
        if out.ingest.alerts > 0 {
            self.alerts_ready.notify_one();
        }
        Ok(out)
    }

    /// Polls one source once.
    pub async fn poll(&self, source: &MonitorSource) -> Result<PollOutcome, MonitorError> {
        self.poll_leased(source, None).await
    }

    /// Polls one source once under a lease (`dropwatch worker`): what was read is ingested only
    /// while the source is still leased to `lease.owner` under `lease.epoch`; otherwise the poll
    /// fails with `StoreError::LeaseLost`, nothing is written, and the source's error is left
    /// alone (it belongs to the new holder).
    pub async fn poll_leased(
        &self,
        source: &MonitorSource,
        lease: Option<&LeaseFence>,
    ) -> Result<PollOutcome, MonitorError> {
        if source.state == dropwatch_store::CREDENTIAL_UNOPENABLE {
            // Never connect without the password it was given.
            return Err(MonitorError::Credential(source.url.clone()));
        }
        let res = match (
            source.kind.as_str(),
            formats::byte_source_kind(&source.kind),
        ) {
            (KIND_PANEL_MYSQL, _) => self.poll_panel_mysql(source, lease).await,
            (formats::KIND_HTTP_JSON_PAGES, _) => self.poll_json_pages(source, lease).await,
            (_, Some((Transport::Http, format))) => self.poll_http(source, lease, format).await,
            (_, Some((Transport::File, format))) => self.poll_file(source, lease, format).await,
            (other, _) => Err(MonitorError::UnsupportedKind(other.to_string())),
        };
        match &res {
            Err(MonitorError::Store(StoreError::LeaseLost { .. })) => {}
            Err(e) => {
                self.store
                    .note_poll(source.id, Some(&e.to_string()))
                    .await?;
            }
            // Bad-record counts were written with the records, in the ingest transaction.
            Ok(_) => {}
        }
        res
    }

    async fn poll_http(
        &self,
        source: &MonitorSource,
        lease: Option<&LeaseFence>,
        format: DropFormat,
    ) -> Result<PollOutcome, MonitorError> {
        let url =
            url::Url::parse(&source.url).map_err(|_| MonitorError::BadUrl(source.url.clone()))?;
        if !self.config.allow_private && is_private_host(url.host()) {
            return Err(MonitorError::PrivateAddress(source.url.clone()));
        }
        let mut cursor = ByteCursor::parse(source.cursor.as_deref());
        if !format.is_append_only() {
            cursor = ByteCursor {
                etag: cursor.etag,
                last_modified: cursor.last_modified,
                ..ByteCursor::default()
            };
        }
        self.wait_for_host(url.host_str().unwrap_or_default()).await;
        let mut req = self.client.get(with_password(&url, source));
        if cursor.offset > 0 {
            req = req.header("range", format!("bytes={}-", cursor.offset));
        }
        // Conditional: an unchanged drop answers 304 and nothing is transferred or parsed.
        if let Some(etag) = &cursor.etag {
            req = req.header("if-none-match", etag.as_str());
        }
        if let Some(lm) = &cursor.last_modified {
            req = req.header("if-modified-since", lm.as_str());
        }
        let http_err = |e| MonitorError::Http {
            url: source.url.clone(),
            source: e,
        };
        let mut res = req.send().await.map_err(http_err)?;
        let status = res.status().as_u16();
        if status == 304 {
            self.store.note_poll(source.id, None).await?;
            return Ok(PollOutcome::default());
        }
        let etag = formats::validator(res.headers().get("etag").map(|v| v.as_bytes()));
        let last_modified =
            formats::validator(res.headers().get("last-modified").map(|v| v.as_bytes()));
        if status == 416 {
            self.store.note_poll(source.id, None).await?;
            return Ok(PollOutcome::default());
        }
        if status != 200 && status != 206 {
            return Err(MonitorError::Status {
                url: source.url.clone(),
                status,
            });
        }
        let limit = self.config.max_body_bytes;
        // A server that ignores Range sends the whole source: what lies before the cursor is
        // skipped as it streams in, so the read limit applies to the new bytes only (and a
        // source larger than the limit still moves on). The first bytes are kept, up to the
        // limit, in case the source shrank below the cursor and must be read from the start.
        let skip = if status == 200 { cursor.offset } else { 0 };
        let mut seen: u64 = 0;
        let mut prefix = Vec::new();
        let mut body = Vec::new();
        let mut full = false;
        while let Some(chunk) = res.chunk().await.map_err(http_err)? {
            let mut chunk = &chunk[..];
            if seen < skip {
                let n = usize::try_from(skip - seen).map_or(chunk.len(), |n| n.min(chunk.len()));
                let keep = n.min(limit.saturating_sub(prefix.len()));
                prefix.extend_from_slice(&chunk[..keep]);
                seen += n as u64;
                chunk = &chunk[n..];
            }
            seen += chunk.len() as u64;
            body.extend_from_slice(chunk);
            if body.len() >= limit {
                body.truncate(limit);
                full = true;
                break;
            }
        }
        if full && !format.is_append_only() {
            return Err(MonitorError::TooLarge {
                url: source.url.clone(),
                limit,
            });
        }
        let fetched_at = now_micros();
        let data = if seen >= skip {
            &body[..]
        } else {
            tracing::warn!(source = %source.url, cursor = cursor.offset, len = seen, "source shrank; reading it again from the start");
            cursor = ByteCursor::default();
            full = prefix.len() >= limit;
            &prefix[..]
        };
        if data.is_empty() {
            self.store.note_poll(source.id, None).await?;
            return Ok(PollOutcome::default());
        }
        cursor.etag = etag;
        cursor.last_modified = last_modified;
        Ok(self
            .ingest_formatted_leased(Some(source), lease, format, &cursor, data, full, fetched_at)
            .await?)
    }

    /// Polls a paged JSON listing: from the page the cursor names (the source URL at first),
    /// following `next` links on the source's own origin, up to `max_pages_per_poll` pages,
    /// each ingested with the cursor that follows it. The last page (the one without a next)
    /// is read again at the next poll, for the reports added to it meanwhile; the records it
    /// repeats are duplicates by fingerprint. A next link to another origin (a panel that
    /// points elsewhere, or into a private network) is not followed and counts as a bad record.
    async fn poll_json_pages(
        &self,
        source: &MonitorSource,
        lease: Option<&LeaseFence>,
    ) -> Result<PollOutcome, MonitorError> {
        let start =
            url::Url::parse(&source.url).map_err(|_| MonitorError::BadUrl(source.url.clone()))?;
        if !self.config.allow_private && is_private_host(start.host()) {
            return Err(MonitorError::PrivateAddress(source.url.clone()));
        }
        let same_origin = |u: &url::Url| u.origin() == start.origin();
        let cursor = ByteCursor::parse(source.cursor.as_deref());
        let mut page_url = cursor
            .page
            .as_deref()
            .and_then(|p| url::Url::parse(p).ok())
            .filter(|u| same_origin(u))
            .unwrap_or_else(|| start.clone());
        let mut total = PollOutcome::default();
        let mut visited = std::collections::HashSet::new();
        for _ in 0..self.config.max_pages_per_poll.max(1) {
            if !visited.insert(page_url.to_string()) {
                break; // a next link back to a page of this poll
            }
            self.wait_for_host(page_url.host_str().unwrap_or_default())
                .await;
            let data = self.fetch_whole(source, &page_url).await?;
            let fetched_at = now_micros();
            let page = formats::parse_json_page(&data);
            let mut out = PollOutcome {
                bytes: data.len() as u64,
                ..PollOutcome::default()
            };
            let next = match page.next.as_deref().map(|n| page_url.join(n)) {
                Some(Ok(n)) if same_origin(&n) => Some(n),
                Some(_) => {
                    out.bad_lines.push((
                        page.records.len() as u64,
                        "next link leaves the source's origin (or is not a URL); not followed"
                            .to_string(),
                    ));
                    None
                }
                None => None,
            };
            let records = self.analyze_all(Some(source), page.records, &mut out);
            let resume = next.clone().unwrap_or_else(|| page_url.clone());
            let cursor = ByteCursor {
                page: Some(resume.to_string()),
                ..ByteCursor::default()
            };
            let out = self
                .ingest_records(
                    Some(source),
                    lease,
                    cursor.to_text(),
                    records,
                    out,
                    fetched_at,
                )
                .await?;
            total.bytes += out.bytes;
            total.lines += out.lines;
            total.bad_lines.extend(out.bad_lines);
            total.ingest.new_records += out.ingest.new_records;
            total.ingest.duplicate_records += out.ingest.duplicate_records;
            total.ingest.unattributed += out.ingest.unattributed;
            total.ingest.new_victims += out.ingest.new_victims;
            total.ingest.alerts += out.ingest.alerts;
            match next {
                Some(n) => page_url = n,
                None => break,
            }
        }
        Ok(total)
    }

    /// GETs a whole resource (200 only, no redirects), at most `max_body_bytes`.
    async fn fetch_whole(
        &self,
        source: &MonitorSource,
        url: &url::Url,
    ) -> Result<Vec<u8>, MonitorError> {
        let http_err = |e| MonitorError::Http {
            url: url.to_string(),
            source: e,
        };
        let mut res = self
            .client
            .get(with_password(url, source))
            .send()
            .await
            .map_err(http_err)?;
        let status = res.status().as_u16();
        if status != 200 {
            return Err(MonitorError::Status {
                url: url.to_string(),
                status,
            });
        }
        let limit = self.config.max_body_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(http_err)? {
            if body.len() + chunk.len() > limit {
                return Err(MonitorError::TooLarge {
                    url: source.url.clone(),
                    limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Waits until a request to `host` fits the per-host rate limit, and books its slot.
    async fn wait_for_host(&self, host: &str) {
        let Some(rate) = self
            .config
            .max_requests_per_host_per_sec
            .filter(|r| r.is_finite() && *r > 0.0)
        else {
            return;
        };
        let spacing = Duration::from_secs_f64((1.0 / rate).min(3600.0));
        let start = {
            let mut next = self
                .next_request
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = next.get(host).copied().filter(|t| *t > now).unwrap_or(now);
            next.insert(host.to_string(), slot + spacing);
            slot
        };
        tokio::time::sleep_until(start.into()).await;
    }

    async fn poll_file(
        &self,
        source: &MonitorSource,
        lease: Option<&LeaseFence>,
        format: DropFormat,
    ) -> Result<PollOutcome, MonitorError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let io_err = |e| MonitorError::Io {
            path: source.url.clone(),
            source: e,
        };
        let mut file = tokio::fs::File::open(&source.url).await.map_err(io_err)?;
        let len = file.metadata().await.map_err(io_err)?.len();
        let mut cursor = ByteCursor::parse(source.cursor.as_deref());
        if !format.is_append_only() {
            cursor = ByteCursor::default();
            if len > self.config.max_body_bytes as u64 {
                return Err(MonitorError::TooLarge {
                    url: source.url.clone(),
                    limit: self.config.max_body_bytes,
                });
            }
        }
        if cursor.offset > len {
            tracing::warn!(source = %source.url, cursor = cursor.offset, len, "file shrank; reading it again from the start");
            cursor = ByteCursor::default();
        }
        file.seek(std::io::SeekFrom::Start(cursor.offset))
            .await
            .map_err(io_err)?;
        let mut data = Vec::new();
        file.take(self.config.max_body_bytes as u64)
            .read_to_end(&mut data)
            .await
            .map_err(io_err)?;
        if data.is_empty() {
            self.store.note_poll(source.id, None).await?;
            return Ok(PollOutcome::default());
        }
        let full = data.len() >= self.config.max_body_bytes;
        Ok(self
            .ingest_formatted_leased(
                Some(source),
                lease,
                format,
                &cursor,
                &data,
                full,
                now_micros(),
            )
            .await?)
    }

    /// Polls every active source on its own jittered schedule until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut next_due: std::collections::HashMap<i64, Instant> =
            std::collections::HashMap::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let sources = match self.store.list_monitor_sources().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot list monitor sources");
                    Vec::new()
                }
            };
            let now = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for source in sources.into_iter().filter(|s| s.state == "active") {
                if next_due.get(&source.id).is_some_and(|&t| t > now) {
                    continue;
                }
                let jitter = rand::rng().random_range(0.0..=self.config.jitter.max(0.0));
                next_due.insert(
                    source.id,
                    now + self.config.poll_interval.mul_f64(1.0 + jitter),
                );
                let this = self.clone();
                tasks.spawn(async move {
                    match this.poll(&source).await {
                        Ok(out) if out.lines > 0 => tracing::info!(
                            source = %source.url, lines = out.lines, new = out.ingest.new_records, dup = out.ingest.duplicate_records,
                            victims = out.ingest.new_victims, alerts = out.ingest.alerts, "polled"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(source = %source.url, error = %e, "poll failed"),
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            let wait = next_due
                .values()
                .min()
                .map_or(self.config.poll_interval, |t| {
                    t.saturating_duration_since(Instant::now())
                });
            tokio::select! {
                _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// The URL as requested: with the source's sealed password, if it has one, for reqwest to turn
/// into basic authentication (it takes user and password out of the URL it sends). Every other
/// use of a source's URL (messages, cursors, logs, alerts) is the URL without the password.
fn with_password(url: &url::Url, source: &MonitorSource) -> url::Url {
    let mut url = url.clone();
    if let Some(c) = &source.credential {
        let _ = url.set_password(Some(c.expose()));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_leave_the_partial_tail() {
        let (lines, used) = complete_lines(b"a\r\nbb\nccc");
        assert_eq!(lines, vec![(0, &b"a"[..]), (3, &b"bb"[..])]);
        assert_eq!(used, 6);
        assert_eq!(complete_lines(b"partial").1, 0);
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["203.0.113.7", "8.8.8.8", "2001:db8::1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
        for url in [
            "mysql://root@127.0.0.1:3306/panel",
            "mysql://root@10.0.0.5/panel",
            "mysql://root@[::1]/panel",
            "mysql://root@LOCALHOST./panel",
            "http://127.0.0.1/",
        ] {
            let u = url::Url::parse(url).unwrap();
            assert!(is_private_host(u.host()), "{url}");
        }
        let u = url::Url::parse("mysql://root@203.0.113.7/panel").unwrap();
        assert!(!is_private_host(u.host()));
    }
}
