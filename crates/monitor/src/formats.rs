//! Drop data formats served over HTTP or kept in files, turned into [`PanelReport`]s.
//!
//! Besides the JSON lines of the original connector, drops are seen as:
//! - a **JSON array** of reports (a listing page): a snapshot, read whole each poll (up to
//!   the body limit); the store's fingerprints keep re-read rows from becoming new records;
//! - **CSV** with a header row whose columns are named like the panel's `botnet_reports`
//!   columns (`id`, `bot_id`, `botnet`, `type`, `path_source`, `context`, `ipv4`, `country`,
//!   `rtime`; others are ignored), RFC 4180 quoting (a quoted `context` keeps its line breaks);
//! - the ZeuS panel's file mode **`reports.txt`** (`../shared/design/formats/drops-and-sharing.md`
//!   §1.1, `reports_to_fs`): blocks of `key=value` lines (`bot_id`, `botnet`, `type`, `rtime`,
//!   `ipv4`, `country`, `path_source`, ...) ending with `context=` and the raw log, which runs
//!   to the block's end; blocks are separated by a line of 80 `=`. A block is complete once
//!   the separator line after it is (a log that itself holds such a line is split there: the
//!   format has no escaping). Blocks carry no row id; the block's byte offset in the file is
//!   used as its id.
//!
//! JSON lines, CSV and `reports.txt` are append-only: the cursor is the byte offset after the
//! last complete record (line, CSV record, block), resumed with `Range` over HTTP; a CSV
//! cursor also keeps the header's column names, since a resumed read does not see the header.
//! Everything here is pure and bounded: records longer than [`MAX_RECORD_BYTES`] are refused,
//! CSV records keep at most [`MAX_CSV_FIELDS`] fields, and nothing panics on hostile input.

use dropwatch_model::PanelReport;
use dropwatch_records::{parse_report_line, MAX_RECORD_BYTES};

use crate::complete_lines;

/// Source kind: an HTTP(S) URL serving a JSON array of panel reports (a listing page).
pub const KIND_HTTP_JSON: &str = "http_json";
/// Source kind: a local file holding a JSON array of panel reports.
pub const KIND_FILE_JSON: &str = "file_json";
/// Source kind: an HTTP(S) JSON listing in pages (a drop panel's API): each page is an object
/// with the reports in `records`, `reports`, `data`, `items`, `rows` or `results` and the link
/// to the next page in `next`, `next_page`, `nextPage`, `links.next` or `paging.next`.
pub const KIND_HTTP_JSON_PAGES: &str = "http_json_pages";
/// Source kind: an HTTP(S) URL serving panel reports as CSV with a header row, appended over time.
pub const KIND_HTTP_CSV: &str = "http_csv";
/// Source kind: a local CSV file of panel reports with a header row.
pub const KIND_FILE_CSV: &str = "file_csv";
/// Source kind: an HTTP(S) URL serving a ZeuS file-mode `reports.txt`.
pub const KIND_HTTP_REPORTS_TXT: &str = "http_reports_txt";
/// Source kind: a local ZeuS file-mode `reports.txt`.
pub const KIND_FILE_REPORTS_TXT: &str = "file_reports_txt";

/// Source kind: an HTTP(S) URL serving raw form-grab text (grabs one after another, as drop
/// scripts dump them), appended over time.
pub const KIND_HTTP_GRABS_TXT: &str = "http_grabs_txt";
/// Source kind: a local file of raw form-grab text.
pub const KIND_FILE_GRABS_TXT: &str = "file_grabs_txt";

/// Source kind: an HTTP(S) URL serving a MySQL dump of a seized panel's database (what
/// `mysqldump` writes: `CREATE TABLE` and `INSERT INTO ... VALUES (...),(...);` statements).
pub const KIND_HTTP_SQL_DUMP: &str = "http_sql_dump";
/// Source kind: a local MySQL dump of a seized panel's database.
pub const KIND_FILE_SQL_DUMP: &str = "file_sql_dump";

/// Most fields kept from one CSV record; further fields are scanned and dropped.
pub const MAX_CSV_FIELDS: usize = 256;

/// The line that separates `reports.txt` blocks: 80 `=`.
pub const REPORTS_TXT_SEPARATOR: &[u8; 80] = &[b'='; 80];

/// How a source's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropFormat {
    JsonLines,
    JsonArray,
    Csv,
    ReportsTxt,
    /// Raw form-grab text: the `context` texts alone, one after another (see
    /// [`parse_grabs_txt`]).
    GrabsTxt,
    /// A MySQL dump of a panel database: the day tables' rows (see [`crate::sql_dump`]).
    SqlDump,
}

impl DropFormat {
    /// Append-only formats are resumed from a byte cursor; the others are read whole.
    pub fn is_append_only(self) -> bool {
        !matches!(self, DropFormat::JsonArray)
    }
}

/// Where a source's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    Http,
    File,
}

/// Every byte-oriented source kind, with its transport and format.
pub const BYTE_SOURCE_KINDS: &[(&str, Transport, DropFormat)] = &[
    (
        crate::KIND_HTTP_JSONL,
        Transport::Http,
        DropFormat::JsonLines,
    ),
    (
        crate::KIND_FILE_JSONL,
        Transport::File,
        DropFormat::JsonLines,
    ),
    (KIND_HTTP_JSON, Transport::Http, DropFormat::JsonArray),
    (KIND_FILE_JSON, Transport::File, DropFormat::JsonArray),
    (KIND_HTTP_CSV, Transport::Http, DropFormat::Csv),
    (KIND_FILE_CSV, Transport::File, DropFormat::Csv),
    (
        KIND_HTTP_REPORTS_TXT,
        Transport::Http,
        DropFormat::ReportsTxt,
    ),
    (
        KIND_FILE_REPORTS_TXT,
        Transport::File,
        DropFormat::ReportsTxt,
    ),
    (KIND_HTTP_GRABS_TXT, Transport::Http, DropFormat::GrabsTxt),
    (KIND_FILE_GRABS_TXT, Transport::File, DropFormat::GrabsTxt),
    (KIND_HTTP_SQL_DUMP, Transport::Http, DropFormat::SqlDump),
    (KIND_FILE_SQL_DUMP, Transport::File, DropFormat::SqlDump),
];

/// The transport and format of a byte-oriented source kind.
pub fn byte_source_kind(kind: &str) -> Option<(Transport, DropFormat)> {
    BYTE_SOURCE_KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|&(_, t, f)| (t, f))
}

/// Why one record of a drop could not be read. The rest of the data is read on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    #[error(transparent)]
    Record(#[from] dropwatch_records::RecordError),
    #[error("record of {0} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("not a JSON array of reports: {0}")]
    NotAnArray(String),
    #[error("not a page of reports: {0}")]
    NotAPage(String),
    #[error("CSV has no `context` column (header: {0})")]
    NoContextColumn(String),
    #[error("field {field:?} is not a number")]
    NotANumber { field: &'static str },
    #[error("reports.txt block without a `context=` line")]
    NoContext,
    #[error("not a form grab: {0}")]
    NotAGrab(String),
    #[error("SQL dump: {0}")]
    Sql(String),
}

/// The cursor of a byte-oriented source: the offset after the last complete record, and for
/// CSV the header's column names. Stored as a bare number when there is no header (the
/// original JSON-lines cursor), as JSON otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ByteCursor {
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Vec<String>>,
    /// The HTTP validators of the last complete read (`ETag`, `Last-Modified`), sent back as
    /// `If-None-Match` / `If-Modified-Since`: an unchanged drop answers 304 and costs nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// For a paged listing: the page to read next (the last page read when it had no next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

impl ByteCursor {
    /// Reads a stored cursor; anything unreadable is the start of the source.
    pub fn parse(text: Option<&str>) -> ByteCursor {
        let Some(text) = text.map(str::trim) else {
            return ByteCursor::default();
        };
        if let Ok(offset) = text.parse() {
            return ByteCursor {
                offset,
                ..ByteCursor::default()
            };
        }
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        if self.header.is_none()
            && self.etag.is_none()
            && self.last_modified.is_none()
            && self.page.is_none()
        {
            self.offset.to_string()
        } else {
            serde_json::to_string(self).unwrap_or_else(|_| self.offset.to_string())
        }
    }
}

/// Longest validator kept: a server's `ETag` or `Last-Modified` is attacker-written text that
/// is stored with the cursor and sent back, so anything long or odd is simply not used.
pub const MAX_VALIDATOR_LEN: usize = 200;

/// A validator header's value if it is short visible ASCII, else `None`.
pub fn validator(value: Option<&[u8]>) -> Option<String> {
    let v = value?;
    (!v.is_empty() && v.len() <= MAX_VALIDATOR_LEN && v.iter().all(|b| (0x20..0x7f).contains(b)))
        .then(|| String::from_utf8_lossy(v).into_owned())
}

/// What parsing a chunk of a source gave.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Each record's position (byte offset in the source, or index in a JSON array) and the
    /// report or why it could not be read.
    pub records: Vec<(u64, Result<PanelReport, FormatError>)>,
    /// Bytes of the chunk that were complete records (or skippable blank lines).
    pub consumed: usize,
    /// The CSV header in force after this chunk.
    pub header: Option<Vec<String>>,
}

/// The cursor header after a stretch larger than the read limit was skipped unparsed: for a
/// MySQL dump, the reader no longer knows whether it is inside a string and resynchronises at
/// the next line that starts a statement; other formats keep their header.
pub fn header_after_skip(format: DropFormat, header: Option<Vec<String>>) -> Option<Vec<String>> {
    match format {
        DropFormat::SqlDump => Some(crate::sql_dump::header_after_skip()),
        _ => header,
    }
}

/// Parses the complete records at the front of `data`, which starts at byte `base` of the
/// source. For CSV, `header` is the header read before `base` (none at the start).
pub fn parse_chunk(
    format: DropFormat,
    base: u64,
    data: &[u8],
    header: Option<&[String]>,
) -> Parsed {
    match format {
        DropFormat::JsonLines => {
            let (lines, consumed) = complete_lines(data);
            let records = lines
                .into_iter()
                .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
                .map(|(at, l)| {
                    (
                        base + at as u64,
                        parse_report_line(l).map_err(FormatError::from),
                    )
                })
                .collect();
            Parsed {
                records,
                consumed,
                header: None,
            }
        }
        DropFormat::JsonArray => Parsed {
            records: parse_json_array(data),
            consumed: data.len(),
            header: None,
        },
        DropFormat::Csv => parse_csv(base, data, header),
        DropFormat::ReportsTxt => parse_reports_txt(base, data),
        DropFormat::GrabsTxt => parse_grabs_txt(base, data),
        DropFormat::SqlDump => crate::sql_dump::parse_sql_dump(base, data, header),
    }
}

fn parse_json_array(data: &[u8]) -> Vec<(u64, Result<PanelReport, FormatError>)> {
    let items: Vec<serde_json::Value> = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => return vec![(0, Err(FormatError::NotAnArray(e.to_string())))],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as u64, report_of(v)))
        .collect()
}

/// One page of a paged JSON listing: its reports (with their index on the page) and the link
/// to the next page as written (relative or absolute), if any.
#[derive(Debug, Default)]
pub struct JsonPage {
    pub records: Vec<(u64, Result<PanelReport, FormatError>)>,
    pub next: Option<String>,
}

/// The keys under which listing APIs put their items, in the order they are looked for.
const PAGE_ITEM_KEYS: [&str; 6] = ["records", "reports", "data", "items", "rows", "results"];

/// Reads one page of a listing. A bare JSON array is a page without a next link.
pub fn parse_json_page(data: &[u8]) -> JsonPage {
    let value: serde_json::Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            return JsonPage {
                records: vec![(0, Err(FormatError::NotAPage(e.to_string())))],
                next: None,
            }
        }
    };
    let (items, next) = match value {
        serde_json::Value::Array(items) => (items, None),
        serde_json::Value::Object(mut map) => {
            let next = ["next", "next_page", "nextPage"]
                .iter()
                .find_map(|k| map.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .or_else(|| {
                    ["links", "paging"]
                        .iter()
                        .find_map(|k| map.get(*k)?.get("next")?.as_str().map(str::to_string))
                })
                .filter(|n| !n.is_empty());
            let items = PAGE_ITEM_KEYS.iter().find_map(|k| match map.remove(*k) {
                Some(serde_json::Value::Array(items)) => Some(items),
                _ => None,
            });
            match items {
                Some(items) => (items, next),
                None => {
                    return JsonPage {
                        records: vec![(
                            0,
                            Err(FormatError::NotAPage(format!(
                                "no array under any of {PAGE_ITEM_KEYS:?}"
                            ))),
                        )],
                        next,
                    }
                }
            }
        }
        _ => {
            return JsonPage {
                records: vec![(
                    0,
                    Err(FormatError::NotAPage(
                        "neither an object nor an array".into(),
                    )),
                )],
                next: None,
            }
        }
    };
    JsonPage {
        records: items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as u64, report_of(v)))
            .collect(),
        next,
    }
}

fn report_of(v: serde_json::Value) -> Result<PanelReport, FormatError> {
    serde_json::from_value::<PanelReport>(v).map_err(|e| {
        FormatError::Record(dropwatch_records::RecordError::Json {
            column: 0,
            message: e.to_string(),
        })
    })
}

/// One CSV record: its byte offset and its fields, unquoted.
pub type CsvRecord = (usize, Vec<Vec<u8>>);

/// Splits complete CSV records off the front of `data`: each record's offset and fields, and
/// the bytes they span. A record is complete at a line break outside quotes.
pub fn csv_records(data: &[u8]) -> (Vec<CsvRecord>, usize) {
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut field = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if in_quotes {
            if b == b'"' {
                if data.get(i + 1) == Some(&b'"') {
                    field.push(b'"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(b);
            }
        } else {
            match b {
                b'"' if field.is_empty() => in_quotes = true,
                b',' => push_field(&mut fields, &mut field),
                b'\n' => {
                    if field.last() == Some(&b'\r') {
                        field.pop();
                    }
                    push_field(&mut fields, &mut field);
                    let blank = fields.len() == 1 && fields[0].is_empty();
                    let record = std::mem::take(&mut fields);
                    if !blank {
                        out.push((start, record));
                    }
                    consumed = i + 1;
                    start = i + 1;
                }
                _ => field.push(b),
            }
        }
        i += 1;
    }
    (out, consumed)
}

fn push_field(fields: &mut Vec<Vec<u8>>, field: &mut Vec<u8>) {
    let f = std::mem::take(field);
    if fields.len() < MAX_CSV_FIELDS {
        fields.push(f);
    }
}

fn parse_csv(base: u64, data: &[u8], header: Option<&[String]>) -> Parsed {
    let (rows, consumed) = csv_records(data);
    let mut header: Option<Vec<String>> = header.map(<[String]>::to_vec);
    let mut records = Vec::new();
    for (at, fields) in rows {
        let size: usize = fields.iter().map(Vec::len).sum();
        let at = base + at as u64;
        let Some(names) = &header else {
            header = Some(
                fields
                    .iter()
                    .map(|f| {
                        let f = f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f);
                        String::from_utf8_lossy(f).trim().to_ascii_lowercase()
                    })
                    .collect(),
            );
            continue;
        };
        if size > MAX_RECORD_BYTES {
            records.push((at, Err(FormatError::TooLarge(size))));
            continue;
        }
        let get = |name: &str| -> Option<String> {
            let i = names.iter().position(|n| n == name)?;
            fields
                .get(i)
                .map(|f| String::from_utf8_lossy(f).into_owned())
        };
        let report = (|| {
            let context =
                get("context").ok_or_else(|| FormatError::NoContextColumn(names.join(",")))?;
            Ok(PanelReport {
                id: number(get("id"), "id")?.unwrap_or(at),
                bot_id: get("bot_id").unwrap_or_default(),
                botnet: get("botnet").unwrap_or_default(),
                report_type: number(get("type"), "type")?.unwrap_or(0),
                path_source: get("path_source").unwrap_or_default(),
                context,
                ipv4: get("ipv4").unwrap_or_default(),
                country: get("country").unwrap_or_default(),
                rtime: number(get("rtime"), "rtime")?.unwrap_or(0),
            })
        })();
        records.push((at, report));
    }
    Parsed {
        records,
        consumed,
        header,
    }
}

/// An optional number; blank is absent, anything else must parse.
fn number<T: std::str::FromStr>(
    value: Option<String>,
    field: &'static str,
) -> Result<Option<T>, FormatError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| FormatError::NotANumber { field }),
    }
}

/// Splits complete `reports.txt` blocks off the front of `data`: each block's offset and bytes
/// (separator excluded), and the bytes they span with their separators. Blank blocks (a
/// leading separator) are skipped.
pub fn report_blocks(data: &[u8]) -> (Vec<(usize, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut block_start = 0;
    let mut consumed = 0;
    let mut line_start = 0;
    while let Some(n) = memchr_nl(&data[line_start..]) {
        let line_end = line_start + n;
        let line = &data[line_start..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == REPORTS_TXT_SEPARATOR {
            let block = &data[block_start..line_start];
            if !block.iter().all(u8::is_ascii_whitespace) {
                out.push((block_start, block));
            }
            block_start = line_end + 1;
            consumed = block_start;
        }
        line_start = line_end + 1;
    }
    (out, consumed)
}

fn memchr_nl(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

fn parse_reports_txt(base: u64, data: &[u8]) -> Parsed {
    let (blocks, consumed) = report_blocks(data);
    let records = blocks
        .into_iter()
        .map(|(at, block)| {
            let at = base + at as u64;
            (at, parse_report_block(at, block))
        })
        .collect();
    Parsed {
        records,
        consumed,
        header: None,
    }
}

/// Raw form-grab text: what a drop script dumps when it writes the grabs' `context` texts to a
/// file one after another, without the panel's fields.
///
/// A grab starts at a line beginning with `http://` or `https://` (the grabbed URL, perhaps
/// followed by ` *BLOCKED*`) whose next line begins with `Referer:` (ZeuS 2.x, Citadel and KINS
/// form grabs), or at a line `Grabbed data from: <URL>` (webinject captures). It ends where
/// the next grab starts or at a separator line (ten or more of one of `=`, `-`, `*`, `#`),
/// which belongs to no grab. A grab not yet followed by either may still be growing: it is
/// left for the next read, as a `reports.txt` block waits for its separator. Text before the
/// first grab is one bad record. A grab becomes a report with its URL as `path_source`, no bot
/// id (grabs from different bots with identical data are one record) and the record's offset
/// as id.
pub fn parse_grabs_txt(base: u64, data: &[u8]) -> Parsed {
    let mut records = Vec::new();
    // Line starts, and for each whether a grab starts or a separator sits there.
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    while at < data.len() {
        starts.push(at);
        at = memchr_nl(&data[at..]).map_or(data.len(), |n| at + n + 1);
    }
    let line = |i: usize| -> &[u8] {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        let l = &data[starts[i]..end];
        let l = l.strip_suffix(b"\n").unwrap_or(l);
        l.strip_suffix(b"\r").unwrap_or(l)
    };
    let complete_line = |i: usize| i + 1 < starts.len() || data.ends_with(b"\n");
    let is_separator = |l: &[u8]| {
        l.len() >= 10 && matches!(l[0], b'=' | b'-' | b'*' | b'#') && l.iter().all(|&c| c == l[0])
    };
    let is_url = |l: &[u8]| l.starts_with(b"http://") || l.starts_with(b"https://");
    // What each complete line is: a grab start, a separator, or content.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Start,
        Separator,
        Content,
    }
    let mut marks = Vec::with_capacity(starts.len());
    for i in 0..starts.len() {
        let l = line(i);
        let mark = if !complete_line(i) {
            Mark::Content
        } else if is_separator(l) {
            Mark::Separator
        } else if l.starts_with(b"Grabbed data from: ")
            || (is_url(l) && i + 1 < starts.len() && line(i + 1).starts_with(b"Referer:"))
        {
            Mark::Start
        } else {
            Mark::Content
        };
        marks.push(mark);
    }
    let mut consumed = 0;
    let mut open: Option<usize> = None; // line index where the current grab (or junk) began
    let mut junk_from: Option<usize> = None;
    for i in 0..=starts.len() {
        let mark = marks.get(i).copied();
        let ends_here = matches!(mark, Some(Mark::Start) | Some(Mark::Separator));
        if !ends_here && mark.is_some() {
            if open.is_none() && junk_from.is_none() && !line(i).iter().all(u8::is_ascii_whitespace)
            {
                junk_from = Some(i);
            }
            continue;
        }
        if mark.is_none() {
            break; // end of data: an open grab may still grow
        }
        let here = starts[i];
        if let Some(j) = junk_from.take() {
            let at = starts[j];
            records.push((
                base + at as u64,
                Err(FormatError::NotAGrab(format!(
                    "{} bytes of text before a grab starts",
                    here - at
                ))),
            ));
        }
        if let Some(g) = open.take() {
            let at = starts[g];
            records.push((
                base + at as u64,
                grab_report(base + at as u64, &data[at..here]),
            ));
        }
        consumed = if mark == Some(Mark::Separator) {
            starts.get(i + 1).copied().unwrap_or(data.len())
        } else {
            here
        };
        if mark == Some(Mark::Start) {
            open = Some(i);
        }
    }
    Parsed {
        records,
        consumed,
        header: None,
    }
}

/// One grab's text as a report.
fn grab_report(id: u64, block: &[u8]) -> Result<PanelReport, FormatError> {
    if block.len() > MAX_RECORD_BYTES {
        return Err(FormatError::TooLarge(block.len()));
    }
    let text = String::from_utf8_lossy(block);
    let text = text.trim_end_matches(['\r', '\n']);
    let first = text.lines().next().unwrap_or_default();
    let (url, report_type) = match first.strip_prefix("Grabbed data from: ") {
        Some(url) => (url.trim(), 201),
        None => {
            let url = first.trim_end().trim_end_matches("*BLOCKED*").trim_end();
            (url, if url.starts_with("https://") { 12 } else { 11 })
        }
    };
    Ok(PanelReport {
        id,
        bot_id: String::new(),
        botnet: String::new(),
        report_type,
        path_source: url.to_string(),
        context: text.to_string(),
        ipv4: String::new(),
        country: String::new(),
        rtime: 0,
    })
}

/// One `reports.txt` block; `id` is its offset in the file.
pub fn parse_report_block(id: u64, block: &[u8]) -> Result<PanelReport, FormatError> {
    if block.len() > MAX_RECORD_BYTES {
        return Err(FormatError::TooLarge(block.len()));
    }
    let mut report = PanelReport {
        id,
        bot_id: String::new(),
        botnet: String::new(),
        report_type: 0,
        path_source: String::new(),
        context: String::new(),
        ipv4: String::new(),
        country: String::new(),
        rtime: 0,
    };
    let mut rest = block;
    while !rest.is_empty() {
        if let Some(ctx) = rest.strip_prefix(b"context=") {
            let ctx = ctx.strip_suffix(b"\n").unwrap_or(ctx);
            let ctx = ctx.strip_suffix(b"\r").unwrap_or(ctx);
            report.context = String::from_utf8_lossy(ctx).into_owned();
            return Ok(report);
        }
        let (line, next) = match memchr_nl(rest) {
            Some(n) => (&rest[..n], &rest[n + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "bot_id" => report.bot_id = value,
            "botnet" => report.botnet = value,
            "type" => {
                report.report_type = number(Some(value), "type")?.unwrap_or(0);
            }
            "rtime" => report.rtime = number(Some(value), "rtime")?.unwrap_or(0),
            "ipv4" => report.ipv4 = value,
            "country" => report.country = value,
            "path_source" => report.path_source = value,
            _ => {}
        }
    }
    Err(FormatError::NoContext)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: &str = "https://ib.a-bank.example/login.do\nReferer: https://ib.a-bank.example/\nUser input: x\nPOST data:\n\nkouza_no=123-4567\npassword=S3cr3t%21pw\n";

    fn block(bot: &str, ctx: &str) -> String {
        format!(
            "bot_id={bot}\nbotnet=bn1\nbot_version=33556745\nipv4=203.0.113.9\ncountry=JP\ntype=12\nrtime=1795000000\ntime_system=1795000000\nprocess_name=iexplore.exe\npath_source=https://ib.a-bank.example/login.do\ncontext={ctx}\n{}\n",
            "=".repeat(80)
        )
    }

    #[test]
    fn kinds_map_to_transport_and_format() {
        assert_eq!(
            byte_source_kind(KIND_HTTP_CSV),
            Some((Transport::Http, DropFormat::Csv))
        );
        assert_eq!(
            byte_source_kind(crate::KIND_FILE_JSONL),
            Some((Transport::File, DropFormat::JsonLines))
        );
        assert_eq!(byte_source_kind("panel_mysql"), None);
        assert!(!DropFormat::JsonArray.is_append_only());
    }

    #[test]
    fn cursors_keep_the_old_form_and_carry_a_header() {
        assert_eq!(ByteCursor::parse(Some("42")).offset, 42);
        assert_eq!(ByteCursor::parse(Some("42")).to_text(), "42");
        assert_eq!(ByteCursor::parse(None), ByteCursor::default());
        assert_eq!(ByteCursor::parse(Some("junk")), ByteCursor::default());
        let c = ByteCursor {
            offset: 7,
            header: Some(vec!["id".into(), "context".into()]),
            ..ByteCursor::default()
        };
        assert_eq!(ByteCursor::parse(Some(&c.to_text())), c);
        let v = ByteCursor {
            etag: Some("\"abc\"".into()),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            ..ByteCursor::default()
        };
        assert_eq!(ByteCursor::parse(Some(&v.to_text())), v);
    }

    #[test]
    fn raw_grabs_are_split_at_their_urls_and_wait_until_complete() {
        let grab = |n: u32| {
            format!(
                "https://ib.a-bank.example/login.do\r\nReferer: https://ib.a-bank.example/\r\nUser input: u{n}\r\nPOST data:\r\n\r\nkouza_no=100-{n:04}\r\npassword=Pw{n}\r\n\r\n"
            )
        };
        let capture = "Grabbed data from: https://ib.a-bank.example/otp\n\nonetime=123456\n";
        let data = format!(
            "junk before\n{}{}{capture}{}\n{}",
            grab(1),
            grab(2),
            "=".repeat(20),
            grab(3)
        );
        let p = parse_chunk(DropFormat::GrabsTxt, 1000, data.as_bytes(), None);
        assert_eq!(
            p.records.len(),
            4,
            "junk, two grabs, the capture; the last grab waits"
        );
        assert!(matches!(p.records[0].1, Err(FormatError::NotAGrab(_))));
        let r1 = p.records[1].1.as_ref().unwrap();
        assert_eq!(
            (r1.report_type, r1.path_source.as_str()),
            (12, "https://ib.a-bank.example/login.do")
        );
        assert!(r1.context.ends_with("password=Pw1"));
        assert_eq!(r1.id, 1000 + "junk before\n".len() as u64);
        let cap = p.records[3].1.as_ref().unwrap();
        assert_eq!(
            (cap.report_type, cap.path_source.as_str()),
            (201, "https://ib.a-bank.example/otp")
        );
        // Everything up to the third grab is consumed; it is read again with what follows.
        assert_eq!(&data[p.consumed..], grab(3));
        let more = format!("{}{}", grab(3), grab(4));
        let q = parse_chunk(DropFormat::GrabsTxt, 0, more.as_bytes(), None);
        assert_eq!(q.records.len(), 1);
        assert!(q.records[0].1.as_ref().unwrap().context.contains("u3"));
        // A URL line without its Referer yet is not a start: nothing is cut there.
        let partial = format!("{}https://ib.a-bank.example/login.do\n", grab(5));
        assert!(
            parse_chunk(DropFormat::GrabsTxt, 0, partial.as_bytes(), None)
                .records
                .is_empty()
        );
    }

    #[test]
    fn pages_name_their_items_and_next_link_in_the_usual_ways() {
        let r = r#"{"id":1,"bot_id":"B","botnet":"n","type":12,"path_source":"https://x.example/","context":"https://x.example/"}"#;
        let p = parse_json_page(format!(r#"{{"records":[{r},{r}],"next":"/api?p=2"}}"#).as_bytes());
        assert_eq!((p.records.len(), p.next.as_deref()), (2, Some("/api?p=2")));
        let p = parse_json_page(format!(r#"{{"data":[{r}],"links":{{"next":null}}}}"#).as_bytes());
        assert_eq!((p.records.len(), p.next), (1, None));
        let p = parse_json_page(
            format!(r#"{{"items":[{r}],"paging":{{"next":"?page=3"}}}}"#).as_bytes(),
        );
        assert_eq!(p.next.as_deref(), Some("?page=3"));
        let p = parse_json_page(format!("[{r}]").as_bytes());
        assert_eq!((p.records.len(), p.next), (1, None));
        assert!(p.records[0].1.is_ok());
        for bad in [&b"{}"[..], b"42", b"{\"data\": 5}", b"not json"] {
            let p = parse_json_page(bad);
            assert_eq!(p.records.len(), 1);
            assert!(matches!(p.records[0].1, Err(FormatError::NotAPage(_))));
        }
    }

    #[test]
    fn validators_are_short_visible_ascii_or_nothing() {
        assert_eq!(validator(Some(b"W/\"x1\"")), Some("W/\"x1\"".into()));
        assert_eq!(validator(None), None);
        assert_eq!(validator(Some(b"")), None);
        assert_eq!(validator(Some(b"a\r\nSet-Cookie: x")), None);
        assert_eq!(validator(Some("\u{e9}".as_bytes())), None);
        assert_eq!(validator(Some(&[b'a'; MAX_VALIDATOR_LEN + 1])), None);
        assert!(validator(Some(&[b'a'; MAX_VALIDATOR_LEN])).is_some());
    }

    #[test]
    fn reports_txt_blocks_wait_for_their_separator() {
        let a = block("BOT_A", CTX);
        let b = block("BOT_B", "line one\r\nline two");
        // A leading separator, two complete blocks and a partial third.
        let data = format!("{}\n{a}{b}bot_id=BOT_C\ncontext=half", "=".repeat(80));
        let p = parse_chunk(DropFormat::ReportsTxt, 100, data.as_bytes(), None);
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.consumed, 81 + a.len() + b.len());
        let r = p.records[0].1.as_ref().unwrap();
        assert_eq!(p.records[0].0, 181);
        assert_eq!(r.id, 181);
        assert_eq!(r.bot_id, "BOT_A");
        assert_eq!(r.botnet, "bn1");
        assert_eq!(r.report_type, 12);
        assert_eq!(r.rtime, 1_795_000_000);
        assert_eq!(r.country, "JP");
        assert_eq!(r.path_source, "https://ib.a-bank.example/login.do");
        assert_eq!(r.context, CTX);
        let r = p.records[1].1.as_ref().unwrap();
        assert_eq!(r.context, "line one\r\nline two");
        // Resuming after the consumed bytes gives the third block once it is complete.
        let tail = format!("{}\n{}\n", &data[p.consumed..], "=".repeat(80));
        let q = parse_chunk(
            DropFormat::ReportsTxt,
            100 + p.consumed as u64,
            tail.as_bytes(),
            None,
        );
        assert_eq!(q.records.len(), 1);
        assert_eq!(q.records[0].1.as_ref().unwrap().bot_id, "BOT_C");
        assert_eq!(q.consumed, tail.len());
    }

    #[test]
    fn reports_txt_bad_blocks_are_errors() {
        let sep = "=".repeat(80);
        let data = format!("bot_id=X\nno context here\n{sep}\ntype=abc\ncontext=x\n{sep}\n");
        let p = parse_chunk(DropFormat::ReportsTxt, 0, data.as_bytes(), None);
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.records[0].1, Err(FormatError::NoContext));
        assert_eq!(
            p.records[1].1,
            Err(FormatError::NotANumber { field: "type" })
        );
        // 79 or 81 `=` is not a separator.
        let near = format!("context=x\n{}\n{}\n", "=".repeat(79), "=".repeat(81));
        assert_eq!(report_blocks(near.as_bytes()).1, 0);
    }

    #[test]
    fn csv_with_header_quotes_and_resumption() {
        let header = "id,bot_id,botnet,type,path_source,context,ipv4,country,rtime,extra\r\n";
        let row1 = format!(
            "5,BOT_A,bn1,12,https://ib.a-bank.example/login.do,\"{}\",203.0.113.9,JP,1795000000,z\r\n",
            CTX.replace('"', "\"\"")
        );
        let row2 = "6,BOT_B,,11,http://x.example/,\"say \"\"hi\"\", ok\",,,,\n";
        let partial = "7,BOT_C,,12,https://y.example/,\"unterminated\nstill";
        let data = format!("{header}{row1}\n{row2}{partial}");
        let p = parse_chunk(DropFormat::Csv, 0, data.as_bytes(), None);
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.consumed, data.len() - partial.len());
        let r = p.records[0].1.as_ref().unwrap();
        assert_eq!((r.id, r.bot_id.as_str(), r.report_type), (5, "BOT_A", 12));
        assert_eq!(r.context, CTX);
        assert_eq!(r.rtime, 1_795_000_000);
        let r = p.records[1].1.as_ref().unwrap();
        assert_eq!(r.context, "say \"hi\", ok");
        assert_eq!(r.botnet, "");
        let header_names = p.header.clone().unwrap();
        assert_eq!(header_names[5], "context");
        // Resumed later from the cursor, without the header in the data.
        let rest = format!("{partial}\"\n");
        let q = parse_chunk(
            DropFormat::Csv,
            p.consumed as u64,
            rest.as_bytes(),
            Some(&header_names),
        );
        assert_eq!(q.records.len(), 1);
        let r = q.records[0].1.as_ref().unwrap();
        assert_eq!(r.context, "unterminated\nstill");
        assert_eq!(r.id, 7);
    }

    #[test]
    fn csv_without_context_or_with_bad_numbers() {
        let p = parse_chunk(DropFormat::Csv, 0, b"id,bot_id\n1,A\n", None);
        assert!(matches!(
            p.records[0].1,
            Err(FormatError::NoContextColumn(_))
        ));
        let p = parse_chunk(DropFormat::Csv, 0, b"context,type\nx,12a\n", None);
        assert_eq!(
            p.records[0].1,
            Err(FormatError::NotANumber { field: "type" })
        );
        // No id column: the record's offset is its id.
        let p = parse_chunk(DropFormat::Csv, 10, b"context\nabc\n", None);
        assert_eq!(p.records[0].1.as_ref().unwrap().id, 18);
    }

    #[test]
    fn json_array_listing() {
        let data = br#"[{"id":1,"bot_id":"A","type":12,"path_source":"https://a.example/","context":"x"},
                        {"id":2,"bot_id":"B"},
                        {"id":3,"bot_id":"C","type":11,"path_source":"http://c.example/","context":"y","country":"JP"}]"#;
        let p = parse_chunk(DropFormat::JsonArray, 0, data, None);
        assert_eq!(p.consumed, data.len());
        assert_eq!(p.records.len(), 3);
        assert_eq!(p.records[0].1.as_ref().unwrap().bot_id, "A");
        assert!(p.records[1].1.is_err());
        assert_eq!(p.records[2].1.as_ref().unwrap().country, "JP");
        let p = parse_chunk(DropFormat::JsonArray, 0, b"[{\"id\":1,", None);
        assert!(matches!(p.records[0].1, Err(FormatError::NotAnArray(_))));
    }

    #[test]
    fn hostile_input_never_panics_and_stays_bounded() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let alphabet = b"=\n\r\",{}[]:context=bot_id=type=12\xff\x00abc";
        for _ in 0..3_000 {
            let n = rng.random_range(0..400);
            let mut bytes: Vec<u8> = (0..n)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            if rng.random_bool(0.3) {
                bytes.extend_from_slice(REPORTS_TXT_SEPARATOR);
                bytes.push(b'\n');
            }
            for format in [
                DropFormat::JsonLines,
                DropFormat::JsonArray,
                DropFormat::Csv,
                DropFormat::ReportsTxt,
            ] {
                let p = parse_chunk(format, 0, &bytes, None);
                assert!(p.consumed <= bytes.len());
                for (at, _) in &p.records {
                    assert!(format == DropFormat::JsonArray || (*at as usize) < bytes.len().max(1));
                }
            }
        }
        // A CSV record with a million commas keeps a bounded number of fields.
        let mut wide = b"context\n".to_vec();
        wide.extend(std::iter::repeat_n(b',', 1_000_000));
        wide.push(b'\n');
        let (rows, _) = csv_records(&wide);
        assert_eq!(rows[1].1.len(), MAX_CSV_FIELDS);
        // An oversized block is refused, not returned.
        let huge = format!(
            "bot_id=A\ncontext={}\n{}\n",
            "x".repeat(MAX_RECORD_BYTES),
            "=".repeat(80)
        );
        let p = parse_chunk(DropFormat::ReportsTxt, 0, huge.as_bytes(), None);
        assert!(matches!(p.records[0].1, Err(FormatError::TooLarge(_))));
    }
}
