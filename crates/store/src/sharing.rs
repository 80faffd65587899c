//! Sharing storage: TAXII 2.1 collections and the STIX 2.x object versions they hold.
//!
//! A STIX object is stored once per version: `(collection, object id, version)` is the
//! identity of a row, and the version is the object's `modified` timestamp (else `created`,
//! else the time it was added, as TAXII 2.1 says). Publishing the same version again is a
//! no-op, so an exporter can re-publish everything it knows after every run.
//!
//! **Invariant:** an object version, once stored, is never changed or deleted.
//!
//! **Invariant:** `date_added` (microseconds) is strictly increasing within a collection, even
//! for objects published in the same microsecond or by concurrent publishers: the publish
//! transaction takes the collection row (`last_date_added`, the high-water mark) first, so
//! publishes are serialised per collection and commit in `date_added` order. A TAXII client
//! that polls with `added_after = <last date_added it saw>` therefore never misses a version.
//!
//! Reads never load a collection whole: [`Store::objects_page`] and [`Store::manifest_page`]
//! are keyset-paginated on `(date_added, row id)` with an opaque cursor ([`PageCursor`]), and
//! the TAXII filters (`match[id|type|version|spec_version]`, `added_after`) are evaluated in
//! SQL. The default version filter (`last`) is a `NOT EXISTS` probe on the
//! `(collection_id, object_id, version)` index per candidate row.

use std::collections::HashSet;
use std::fmt;

use dropwatch_model::Micros;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Arguments, Row};

use crate::{now_micros, Store, StoreError};

/// The collection `dropwatch export stix --publish` writes to, created on first publish.
pub const DEFAULT_COLLECTION_ID: &str = "5b6f3c1e-8d0a-4f2e-9c47-6a1d2e3f4b5c";
/// The default collection's local alias (accepted wherever a collection id is).
pub const DEFAULT_COLLECTION_ALIAS: &str = "dropwatch-indicators";
/// The media type of STIX 2.1 content.
pub const STIX_MEDIA_TYPE_21: &str = "application/stix+json;version=2.1";
/// The largest object [`Store::publish_stix`] accepts, serialised, in bytes.
pub const MAX_OBJECT_BYTES: usize = 1 << 20;
/// The largest page [`Store::objects_page`] and [`Store::manifest_page`] return.
pub const MAX_PAGE_LIMIT: u32 = 10_000;

/// Rows per multi-row `INSERT` (9 parameters each; well under SQLite's and PostgreSQL's
/// parameter limits).
const INSERT_CHUNK: usize = 500;

/// Why a sharing operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharingError {
    /// An object handed to [`Store::publish_stix`] is not a STIX object dropwatch can store.
    /// Nothing of the batch was stored.
    #[error("object {index} is not a storable STIX object: {reason}")]
    InvalidObject { index: usize, reason: String },
    /// No collection has this id or alias.
    #[error("unknown collection {0:?}")]
    UnknownCollection(String),
    /// A collection definition is unusable (empty id or title, id not a UUID).
    #[error("invalid collection: {0}")]
    InvalidCollection(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SharingError {
    fn from(e: sqlx::Error) -> SharingError {
        SharingError::Store(StoreError::Db(e))
    }
}

/// A TAXII collection to create (or refresh) with [`Store::ensure_collection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection {
    /// A UUID (TAXII collection ids are UUIDs).
    pub id: String,
    /// A stable local name, accepted wherever the id is.
    pub alias: Option<String>,
    pub title: String,
    pub description: String,
    pub can_read: bool,
    pub can_write: bool,
    pub media_types: Vec<String>,
}

impl NewCollection {
    /// The collection dropwatch publishes its indicators to.
    pub fn default_indicators() -> NewCollection {
        NewCollection {
            id: DEFAULT_COLLECTION_ID.to_string(),
            alias: Some(DEFAULT_COLLECTION_ALIAS.to_string()),
            title: "dropwatch indicators".to_string(),
            description:
                "Banking-trojan infrastructure (C2 gates, config hosts, drops, ATS panels) \
                          and indicators learned by dropwatch. No personal data."
                    .to_string(),
            can_read: true,
            can_write: false,
            media_types: vec![STIX_MEDIA_TYPE_21.to_string()],
        }
    }
}

/// A TAXII collection as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collection {
    pub id: String,
    pub alias: Option<String>,
    pub title: String,
    pub description: String,
    pub can_read: bool,
    pub can_write: bool,
    pub media_types: Vec<String>,
}

/// What [`Store::publish_stix`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PublishOutcome {
    /// Object versions stored by this call.
    pub added: u64,
    /// Object versions already present (same id and version), left as they were.
    pub unchanged: u64,
}

/// Which versions of each object a read returns (TAXII `match[version]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    /// The oldest version.
    First,
    /// The newest version (the default when none is given).
    Last,
    /// Every version.
    All,
    /// The version with this timestamp (microseconds).
    At(Micros),
}

impl VersionMatch {
    /// Parses one value of `match[version]`: `first`, `last`, `all` or a timestamp.
    pub fn parse(text: &str) -> Option<VersionMatch> {
        match text {
            "first" => Some(VersionMatch::First),
            "last" => Some(VersionMatch::Last),
            "all" => Some(VersionMatch::All),
            _ => parse_timestamp(text).map(VersionMatch::At),
        }
    }
}

/// The TAXII filters of a read. Empty lists mean "no filter"; an empty `versions` means
/// `last`; an empty `spec_versions` means "each object's newest spec version".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectFilter {
    /// Only versions added strictly after this instant (microseconds).
    pub added_after: Option<Micros>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub versions: Vec<VersionMatch>,
    pub spec_versions: Vec<String>,
}

/// Where the next page starts: after the row with this `date_added` and row id. Its text
/// form ([`PageCursor::token`]) is opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    date_added: Micros,
    row_id: i64,
}

impl PageCursor {
    /// The text handed to clients as TAXII `next`.
    pub fn token(&self) -> String {
        format!("{:x}-{:x}", self.date_added, self.row_id)
    }

    /// Reads a token made by [`PageCursor::token`]; `None` for anything else.
    pub fn parse(token: &str) -> Option<PageCursor> {
        let (a, b) = token.split_once('-')?;
        let hex = |s: &str| {
            (!s.is_empty() && s.len() <= 16 && s.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
                .and_then(|v| i64::try_from(v).ok())
        };
        Some(PageCursor {
            date_added: hex(a)?,
            row_id: hex(b)?,
        })
    }
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token())
    }
}

/// One stored object version without its body: a TAXII manifest record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry {
    pub id: String,
    #[serde(skip)]
    pub object_type: String,
    pub spec_version: String,
    /// Microseconds.
    pub version: Micros,
    /// Microseconds.
    pub date_added: Micros,
}

/// One stored object version with its JSON text (as published, compact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub entry: ManifestEntry,
    pub json: String,
}

/// One page of a read, in `date_added` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub objects: Vec<T>,
    /// Whether more rows match after this page.
    pub more: bool,
    /// The cursor of the next page, when `more`.
    pub next: Option<PageCursor>,
    /// `date_added` of the first and last row of this page.
    pub first_added: Option<Micros>,
    pub last_added: Option<Micros>,
}

/// A validated object ready to insert.
struct Prepared {
    id: String,
    object_type: String,
    spec_version: String,
    /// `None`: neither `modified` nor `created`, so the version is its `date_added`.
    version: Option<Micros>,
    json: String,
}

fn invalid(index: usize, reason: impl Into<String>) -> SharingError {
    SharingError::InvalidObject {
        index,
        reason: reason.into(),
    }
}

fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn prepare(index: usize, value: &Value) -> Result<Prepared, SharingError> {
    let obj = value
        .as_object()
        .ok_or_else(|| invalid(index, "not a JSON object"))?;
    let text = |key: &str| -> Result<Option<&str>, SharingError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(index, format!("{key} is not a string"))),
        }
    };
    let object_type = text("type")?.ok_or_else(|| invalid(index, "no type"))?;
    if !(3..=250).contains(&object_type.len())
        || !object_type
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return Err(invalid(index, "type is not a STIX type name"));
    }
    let id = text("id")?.ok_or_else(|| invalid(index, "no id"))?;
    match id.split_once("--") {
        Some((t, uuid)) if t == object_type && is_uuid(uuid) => {}
        _ => return Err(invalid(index, "id is not <type>--<uuid>")),
    }
    let timestamp = |key: &str| -> Result<Option<Micros>, SharingError> {
        match text(key)? {
            None => Ok(None),
            Some(s) => parse_timestamp(s)
                .map(Some)
                .ok_or_else(|| invalid(index, format!("{key} is not a timestamp"))),
        }
    };
    let modified = timestamp("modified")?;
    let created = timestamp("created")?;
    // STIX 2.1 SDOs/SROs carry spec_version; 2.0 objects never did (and always had
    // `created`); 2.1 SCOs may omit it (and have neither timestamp).
    let spec_version = match text("spec_version")? {
        Some(v @ ("2.0" | "2.1")) => v.to_string(),
        Some(_) => return Err(invalid(index, "spec_version is neither 2.0 nor 2.1")),
        None if created.is_none() && modified.is_none() => "2.1".to_string(),
        None => "2.0".to_string(),
    };
    let json = serde_json::to_string(value).map_err(|e| invalid(index, e.to_string()))?;
    if json.len() > MAX_OBJECT_BYTES {
        return Err(invalid(index, "larger than 1 MiB"));
    }
    Ok(Prepared {
        id: id.to_string(),
        object_type: object_type.to_string(),
        spec_version,
        version: modified.or(created),
        json,
    })
}

/// A statement under construction: SQL text and its arguments, numbered as added.
struct Sql {
    text: String,
    args: AnyArguments<'static>,
    n: usize,
}

impl Sql {
    fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: AnyArguments::default(),
            n: 0,
        }
    }

    /// Adds an argument and returns its placeholder.
    fn bind<T>(&mut self, value: T) -> Result<String, SharingError>
    where
        T: 'static + sqlx::Encode<'static, Any> + sqlx::Type<Any>,
    {
        self.args
            .add(value)
            .map_err(|e| SharingError::Store(StoreError::Db(sqlx::Error::Encode(e))))?;
        self.n += 1;
        Ok(format!("${}", self.n))
    }

    fn bind_list(&mut self, values: &[String]) -> Result<String, SharingError> {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            out.push(self.bind(v.clone())?);
        }
        Ok(out.join(", "))
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

fn collection_from_row(row: &AnyRow) -> Result<Collection, SharingError> {
    let media: String = row.try_get("media_types")?;
    Ok(Collection {
        id: row.try_get("id")?,
        alias: row.try_get("alias")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        can_read: row.try_get::<i64, _>("can_read")? != 0,
        can_write: row.try_get::<i64, _>("can_write")? != 0,
        media_types: serde_json::from_str(&media).map_err(|e| StoreError::Corrupt {
            table: "taxii_collections",
            message: e.to_string(),
        })?,
    })
}

fn entry_from_row(row: &AnyRow) -> Result<(i64, ManifestEntry), SharingError> {
    Ok((
        row.try_get("id")?,
        ManifestEntry {
            id: row.try_get("object_id")?,
            object_type: row.try_get("object_type")?,
            spec_version: row.try_get("spec_version")?,
            version: row.try_get("version")?,
            date_added: row.try_get("date_added")?,
        },
    ))
}

const COLLECTION_COLUMNS: &str = "id, alias, title, description, can_read, can_write, media_types";

impl Store {
    /// Creates a collection, or refreshes the title, description, permissions and media types
    /// of the one with this id. Idempotent.
    pub async fn ensure_collection(&self, c: &NewCollection) -> Result<Collection, SharingError> {
        if !is_uuid(&c.id) {
            return Err(SharingError::InvalidCollection("the id is not a UUID"));
        }
        if c.title.trim().is_empty() {
            return Err(SharingError::InvalidCollection("the title is empty"));
        }
        let media = serde_json::to_string(&c.media_types).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(&format!(
            "INSERT INTO taxii_collections (id, alias, title, description, can_read, can_write, media_types, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET alias = excluded.alias, title = excluded.title,
               description = excluded.description, can_read = excluded.can_read,
               can_write = excluded.can_write, media_types = excluded.media_types
             RETURNING {COLLECTION_COLUMNS}"
        ))
        .bind(&c.id)
        .bind(c.alias.as_deref())
        .bind(&c.title)
        .bind(&c.description)
        .bind(i64::from(c.can_read))
        .bind(i64::from(c.can_write))
        .bind(media)
        .bind(now_micros())
        .fetch_one(&self.pool)
        .await?;
        collection_from_row(&row)
    }

    /// Every collection, by title then id.
    pub async fn collections(&self) -> Result<Vec<Collection>, SharingError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM taxii_collections ORDER BY title, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(collection_from_row).collect()
    }

    /// The collection with this id or alias.
    pub async fn collection(&self, id_or_alias: &str) -> Result<Option<Collection>, SharingError> {
        let row = sqlx::query(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM taxii_collections WHERE id = $1 OR alias = $1"
        ))
        .bind(id_or_alias)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(collection_from_row).transpose()
    }

    /// Stores the versions of `objects` that `collection` (id or alias) does not hold yet,
    /// in one transaction. The default collection ([`DEFAULT_COLLECTION_ALIAS`] or
    /// [`DEFAULT_COLLECTION_ID`]) is created if missing; any other must exist.
    ///
    /// Every object is validated first (a JSON object with `type`, `id` = `<type>--<uuid>`,
    /// RFC 3339 `modified`/`created` when present, `spec_version` 2.0 or 2.1, at most
    /// [`MAX_OBJECT_BYTES`]); one bad object fails the whole call and stores nothing.
    /// New versions get strictly increasing `date_added` values, in input order, all larger
    /// than any the collection already holds. An object with neither `modified` nor `created`
    /// (an SCO) has one version only: once any version of its id is stored it is unchanged.
    pub async fn publish_stix(
        &self,
        collection: &str,
        objects: &[Value],
    ) -> Result<PublishOutcome, SharingError> {
        let prepared = objects
            .iter()
            .enumerate()
            .map(|(i, v)| prepare(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        let collection_id = match self.collection(collection).await? {
            Some(c) => c.id,
            None if collection == DEFAULT_COLLECTION_ALIAS
                || collection == DEFAULT_COLLECTION_ID =>
            {
                self.ensure_collection(&NewCollection::default_indicators())
                    .await?
                    .id
            }
            None => return Err(SharingError::UnknownCollection(collection.to_string())),
        };

        // The same version twice in one batch is stored once.
        let mut seen = HashSet::new();
        let mut batch: Vec<&Prepared> = Vec::with_capacity(prepared.len());
        let mut unchanged = 0u64;
        for p in &prepared {
            if seen.insert((p.id.as_str(), p.version)) {
                batch.push(p);
            } else {
                unchanged += 1;
            }
        }

        let mut tx = self.pool.begin().await?;
        // Take the collection row first: on PostgreSQL this serialises publishers of one
        // collection (SQLite has one writer anyway), so date_added order is commit order.
        let row = sqlx::query(
            "UPDATE taxii_collections SET last_date_added = last_date_added WHERE id = $1
             RETURNING last_date_added",
        )
        .bind(&collection_id)
        .fetch_one(&mut *tx)
        .await?;
        let last: Micros = row.try_get("last_date_added")?;

        // Objects without a version timestamp are immutable: skip ids already stored.
        let unversioned: Vec<String> = batch
            .iter()
            .filter(|p| p.version.is_none())
            .map(|p| p.id.clone())
            .collect();
        let mut present = HashSet::new();
        for chunk in unversioned.chunks(INSERT_CHUNK) {
            let mut sql = Sql::new("");
            let c = sql.bind(collection_id.clone())?;
            let list = sql.bind_list(chunk)?;
            sql.push(&format!(
                "SELECT DISTINCT object_id FROM stix_objects WHERE collection_id = {c} AND object_id IN ({list})"
            ));
            for row in sqlx::query_with(&sql.text, sql.args)
                .fetch_all(&mut *tx)
                .await?
            {
                present.insert(row.try_get::<String, _>("object_id")?);
            }
        }
        let before = batch.len();
        batch.retain(|p| p.version.is_some() || !present.contains(&p.id));
        unchanged += (before - batch.len()) as u64;

        let base = now_micros().max(last + 1);
        let mut added = 0u64;
        for (chunk_idx, chunk) in batch.chunks(INSERT_CHUNK).enumerate() {
            let mut sql = Sql::new("");
            let mut values = Vec::with_capacity(chunk.len());
            for (i, p) in chunk.iter().enumerate() {
                let date_added = base + (chunk_idx * INSERT_CHUNK + i) as Micros;
                let cols = [
                    sql.bind(collection_id.clone())?,
                    sql.bind(p.id.clone())?,
                    sql.bind(p.object_type.clone())?,
                    sql.bind(p.spec_version.clone())?,
                    sql.bind(p.version.unwrap_or(date_added))?,
                    sql.bind(date_added)?,
                    sql.bind(p.json.clone())?,
                ];
                values.push(format!("({})", cols.join(", ")));
            }
            let text = format!(
                "INSERT INTO stix_objects (collection_id, object_id, object_type, spec_version, version, date_added, object)
                 VALUES {} ON CONFLICT (collection_id, object_id, version) DO NOTHING",
                values.join(", ")
            );
            added += sqlx::query_with(&text, sql.args)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        unchanged += batch.len() as u64 - added;
        if added > 0 {
            sqlx::query("UPDATE taxii_collections SET last_date_added = $1 WHERE id = $2")
                .bind(base + batch.len() as Micros - 1)
                .bind(&collection_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(PublishOutcome { added, unchanged })
    }

    /// One page of object versions (with their JSON) matching `filter`, in `date_added`
    /// order, at most `limit` (capped at [`MAX_PAGE_LIMIT`]) rows, starting after `next`.
    pub async fn objects_page(
        &self,
        collection_id: &str,
        filter: &ObjectFilter,
        limit: u32,
        next: Option<PageCursor>,
    ) -> Result<Page<StoredObject>, SharingError> {
        let (rows, page) = self
            .page_rows(collection_id, filter, limit, next, true)
            .await?;
        let mut objects = Vec::with_capacity(rows.len());
        for (row, (_, entry)) in rows.iter().zip(page.objects) {
            objects.push(StoredObject {
                entry,
                json: row.try_get("object")?,
            });
        }
        Ok(Page {
            objects,
            more: page.more,
            next: page.next,
            first_added: page.first_added,
            last_added: page.last_added,
        })
    }

    /// One page of manifest records (no object bodies), as [`Store::objects_page`].
    pub async fn manifest_page(
        &self,
        collection_id: &str,
        filter: &ObjectFilter,
        limit: u32,
        next: Option<PageCursor>,
    ) -> Result<Page<ManifestEntry>, SharingError> {
        let (_, page) = self
            .page_rows(collection_id, filter, limit, next, false)
            .await?;
        Ok(Page {
            objects: page.objects.into_iter().map(|(_, e)| e).collect(),
            more: page.more,
            next: page.next,
            first_added: page.first_added,
            last_added: page.last_added,
        })
    }

    /// The versions of one object (every version, subject to `added_after` and
    /// `spec_versions` of `filter`), as manifest records in `date_added` order.
    pub async fn object_versions(
        &self,
        collection_id: &str,
        object_id: &str,
        filter: &ObjectFilter,
        limit: u32,
        next: Option<PageCursor>,
    ) -> Result<Page<ManifestEntry>, SharingError> {
        let filter = ObjectFilter {
            ids: vec![object_id.to_string()],
            types: Vec::new(),
            versions: vec![VersionMatch::All],
            ..filter.clone()
        };
        self.manifest_page(collection_id, &filter, limit, next)
            .await
    }

    /// Whether the collection holds any version of this object.
    pub async fn has_object(
        &self,
        collection_id: &str,
        object_id: &str,
    ) -> Result<bool, SharingError> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM stix_objects WHERE collection_id = $1 AND object_id = $2 LIMIT 1",
        )
        .bind(collection_id)
        .bind(object_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Number of object versions in a collection.
    pub async fn count_object_versions(&self, collection_id: &str) -> Result<i64, SharingError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM stix_objects WHERE collection_id = $1")
            .bind(collection_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn page_rows(
        &self,
        collection_id: &str,
        filter: &ObjectFilter,
        limit: u32,
        next: Option<PageCursor>,
        with_body: bool,
    ) -> Result<(Vec<AnyRow>, Page<(i64, ManifestEntry)>), SharingError> {
        let limit = limit.clamp(1, MAX_PAGE_LIMIT);
        let mut sql = Sql::new(
            "SELECT o.id, o.object_id, o.object_type, o.spec_version, o.version, o.date_added",
        );
        if with_body {
            sql.push(", o.object");
        }
        let c = sql.bind(collection_id.to_string())?;
        sql.push(&format!(" FROM stix_objects o WHERE o.collection_id = {c}"));
        if let Some(after) = filter.added_after {
            let p = sql.bind(after)?;
            sql.push(&format!(" AND o.date_added > {p}"));
        }
        if let Some(cursor) = next {
            let d = sql.bind(cursor.date_added)?;
            let r = sql.bind(cursor.row_id)?;
            sql.push(&format!(
                " AND o.date_added >= {d} AND (o.date_added > {d} OR o.id > {r})"
            ));
        }
        if !filter.ids.is_empty() {
            let list = sql.bind_list(&filter.ids)?;
            sql.push(&format!(" AND o.object_id IN ({list})"));
        }
        if !filter.types.is_empty() {
            let list = sql.bind_list(&filter.types)?;
            sql.push(&format!(" AND o.object_type IN ({list})"));
        }
        // The spec-version condition, for the row itself and for the sibling versions the
        // first/last selectors compare against (they choose among matching versions only).
        let spec_condition = |sql: &mut Sql, alias: &str| -> Result<String, SharingError> {
            if filter.spec_versions.is_empty() {
                Ok(format!(
                    "NOT EXISTS (SELECT 1 FROM stix_objects s WHERE s.collection_id = {alias}.collection_id
                       AND s.object_id = {alias}.object_id AND s.spec_version > {alias}.spec_version)"
                ))
            } else {
                let list = sql.bind_list(&filter.spec_versions)?;
                Ok(format!("{alias}.spec_version IN ({list})"))
            }
        };
        let own = spec_condition(&mut sql, "o")?;
        sql.push(&format!(" AND {own}"));
        let selectors: &[VersionMatch] = if filter.versions.is_empty() {
            &[VersionMatch::Last]
        } else {
            &filter.versions
        };
        if !selectors.contains(&VersionMatch::All) {
            let mut alternatives = Vec::new();
            for selector in selectors {
                let cmp = match selector {
                    VersionMatch::First => "<",
                    VersionMatch::Last => ">",
                    VersionMatch::At(t) => {
                        let p = sql.bind(*t)?;
                        alternatives.push(format!("o.version = {p}"));
                        continue;
                    }
                    VersionMatch::All => unreachable!("handled above"),
                };
                let sibling = spec_condition(&mut sql, "v")?;
                alternatives.push(format!(
                    "NOT EXISTS (SELECT 1 FROM stix_objects v WHERE v.collection_id = o.collection_id
                       AND v.object_id = o.object_id AND v.version {cmp} o.version AND {sibling})"
                ));
            }
            sql.push(&format!(" AND ({})", alternatives.join(" OR ")));
        }
        let l = sql.bind(i64::from(limit) + 1)?;
        sql.push(&format!(" ORDER BY o.date_added, o.id LIMIT {l}"));

        let mut rows = sqlx::query_with(&sql.text, sql.args)
            .fetch_all(&self.pool)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let entries = rows
            .iter()
            .map(entry_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = more
            .then(|| {
                entries.last().map(|(row_id, e)| PageCursor {
                    date_added: e.date_added,
                    row_id: *row_id,
                })
            })
            .flatten();
        let first_added = entries.first().map(|(_, e)| e.date_added);
        let last_added = entries.last().map(|(_, e)| e.date_added);
        Ok((
            rows,
            Page {
                objects: entries,
                more,
                next,
                first_added,
                last_added,
            },
        ))
    }
}

/// Parses a STIX/TAXII timestamp (RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`) into
/// microseconds since the Unix epoch. Digits beyond the microsecond are truncated; years
/// outside 1..=9999, other offsets and anything else answer `None`.
pub fn parse_timestamp(text: &str) -> Option<Micros> {
    dropwatch_model::time::parse_zulu(text)
}

/// Formats microseconds since the Unix epoch as a TAXII timestamp with microsecond
/// precision (`2026-12-05T10:00:00.123456Z`), the form of `date_added` and `version`.
pub fn format_timestamp(micros: Micros) -> String {
    dropwatch_model::time::format_zulu(micros, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for (text, micros) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.000001Z", 1),
            ("2016-05-12T08:17:27.000Z", 1_463_041_047_000_000),
            ("2000-02-29T23:59:59.999999Z", 951_868_799_999_999),
            ("2026-12-05T10:00:00.1234567Z", 1_796_464_800_123_456),
        ] {
            assert_eq!(parse_timestamp(text), Some(micros), "{text}");
        }
        for micros in [
            0,
            1,
            951_868_799_999_999,
            1_796_464_800_123_456,
            253_402_300_799_999_999,
        ] {
            assert_eq!(parse_timestamp(&format_timestamp(micros)), Some(micros));
        }
        assert_eq!(
            format_timestamp(1_463_041_047_000_000),
            "2016-05-12T08:17:27.000000Z"
        );
        for bad in [
            "",
            "2016-05-12",
            "2016-05-12T08:17:27",
            "2016-05-12T08:17:27+00:00",
            "2016-02-30T00:00:00Z",
            "2016-13-01T00:00:00Z",
            "2016-05-12T24:00:00Z",
            "2016-05-12T08:17:27.Z",
            "2016-05-12T08:17:27.12aZ",
            "0000-01-01T00:00:00Z",
            "2016-05-12 08:17:27Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn cursors_are_opaque_and_strict() {
        let c = PageCursor {
            date_added: 1_796_464_800_123_456,
            row_id: 42,
        };
        assert_eq!(PageCursor::parse(&c.token()), Some(c));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "x-1",
            "1-1-1",
            "ffffffffffffffffff-1",
            "8000000000000000-1",
        ] {
            assert_eq!(PageCursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn objects_are_validated_before_storage() {
        let ok = serde_json::json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-02T00:00:00.000Z",
        });
        let p = prepare(0, &ok).unwrap();
        assert_eq!(p.version, parse_timestamp("2026-01-02T00:00:00Z"));
        assert_eq!(p.spec_version, "2.1");
        let sco = serde_json::json!({"type": "url", "id": "url--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "value": "https://x.example/"});
        let p = prepare(0, &sco).unwrap();
        assert_eq!((p.version, p.spec_version.as_str()), (None, "2.1"));
        let mut wrong_prefix = ok.clone();
        wrong_prefix["id"] = "malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into();
        let mut bad_time = ok.clone();
        bad_time["modified"] = "yesterday".into();
        let mut bad_spec = ok.clone();
        bad_spec["spec_version"] = "3.0".into();
        for bad in [
            serde_json::json!([]),
            serde_json::json!({"id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}),
            wrong_prefix,
            bad_time,
            bad_spec,
        ] {
            assert!(
                matches!(
                    prepare(3, &bad),
                    Err(SharingError::InvalidObject { index: 3, .. })
                ),
                "{bad}"
            );
        }
    }
}
