//! MySQL dumps of a seized panel's database: what `mysqldump` (or phpMyAdmin's export) writes,
//! read for the rows of the panel's stolen-data day tables.
//!
//! A seized drop server often arrives as a dump file rather than a running database. The rows
//! are the same as [`crate::panel_db`] reads live (`botnet_reports_YYMMDD` of ZeuS 2.x,
//! Citadel and KINS, SpyEye `rep2_YYYYMMDD`, Tinba `logs_YYMMDD`, same column names), so a
//! dump and a live panel give the same records.
//!
//! # What is read
//! - `CREATE TABLE name (...)`: the column names in order, for the `INSERT`s without a column
//!   list that follow it (mysqldump's default).
//! - `INSERT [LOW_PRIORITY|DELAYED|HIGH_PRIORITY] [IGNORE] [INTO] name [(columns)] VALUES (...),
//!   (...), ...;` and `REPLACE INTO ...`: each row of a panel day table becomes a report; rows
//!   of other tables (`botnet_list`, `ipv4toc`, `cp_users`...) are scanned and dropped.
//! - Everything else (`SET`, `DROP`, `LOCK`, `USE`, `/*!40101 ... */`, `--` and `#` comments)
//!   is skipped. Values: `'...'` and `"..."` strings with MySQL's backslash escapes and doubled
//!   quotes, charset introducers (`_binary '...'`), numbers, `NULL`, `0x...` and `X'...'` hex.
//!
//! # Cursor and resumption
//! Append-only, like the other byte formats: the cursor is the byte offset after the last
//! complete *row* (or statement), so an `INSERT` of any length is read across polls and a
//! dump being written is followed as it grows. The cursor's header carries the context a
//! resumed read cannot see: `["insert", table, columns...]` in the middle of an `INSERT`'s
//! value list (`["skip", table]` for a table that is not read), `["create", table,
//! columns...]` after a `CREATE TABLE` outside an `INSERT`.
//!
//! # Bounds
//! One linear pass; nothing is kept of a row but its values, at most [`MAX_SQL_COLUMNS`] of
//! them and [`MAX_RECORD_BYTES`] bytes in all (a longer row is a bad record, scanned to its
//! end); identifiers are cut at [`MAX_IDENT_BYTES`]. A row that does not parse is a bad record
//! at its byte offset and the reader resynchronises at the end of its statement.

use std::rc::Rc;

use dropwatch_model::PanelReport;
use dropwatch_records::MAX_RECORD_BYTES;

use crate::formats::{FormatError, Parsed};
use crate::panel_db::{layout_of, ColKind, Layout, MAX_FIELD_BYTES};

/// Most values kept from one row (and columns from one column list).
pub const MAX_SQL_COLUMNS: usize = 256;
/// Longest identifier kept.
pub const MAX_IDENT_BYTES: usize = 256;

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    Null,
    Bytes(Vec<u8>),
    /// A bare literal: a number, or a keyword other than `NULL`.
    Num(String),
}

/// A table's name and columns in order. Shared (`Rc`), never copied per statement: a dump of
/// many small `INSERT`s after one wide `CREATE TABLE` must not copy its columns each time.
#[derive(Debug, PartialEq, Eq)]
struct Table {
    name: String,
    cols: Vec<String>,
}

type Create = Option<Rc<Table>>;

/// Where the reader stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between statements; the last `CREATE TABLE` read, if any.
    Top(Create),
    /// Inside the value list of an `INSERT` into `table` (with the columns its rows have);
    /// `keep` is false for tables that are not read; `create` is the context to return to.
    Insert {
        table: Rc<Table>,
        keep: bool,
        create: Create,
    },
    /// After a skipped stretch (a record larger than the read limit): the position is not
    /// known to be outside a string, so the reader waits for a line that starts a statement.
    /// mysqldump escapes line breaks inside strings, so such a line is a statement's start.
    Resync,
}

impl State {
    fn from_header(header: Option<&[String]>) -> State {
        let Some(h) = header else {
            return State::Top(None);
        };
        let table = |name: &String, cols: &[String]| {
            Rc::new(Table {
                name: name.clone(),
                cols: cols.to_vec(),
            })
        };
        match h {
            [mode] if mode == "resync" => State::Resync,
            [mode, name, cols @ ..] if mode == "create" => State::Top(Some(table(name, cols))),
            [mode, name, n, rest @ ..] if mode == "insert" || mode == "skip" => {
                let n = n.parse::<usize>().unwrap_or(0).min(rest.len());
                let (cols, create) = rest.split_at(n);
                State::Insert {
                    table: table(name, cols),
                    keep: mode == "insert" && layout_of(name).is_some(),
                    create: match create {
                        [cname, ccols @ ..] => Some(table(cname, ccols)),
                        [] => None,
                    },
                }
            }
            _ => State::Top(None),
        }
    }

    /// The cursor's header for this state: `["create", table, columns...]`,
    /// `["insert" | "skip", table, N, N columns..., create table, its columns...]`,
    /// `["resync"]`, or none.
    fn to_header(&self) -> Option<Vec<String>> {
        let list = |t: &Table| -> Vec<String> {
            std::iter::once(t.name.clone())
                .chain(t.cols.iter().cloned())
                .collect()
        };
        match self {
            State::Top(None) => None,
            State::Top(Some(t)) => {
                let mut h = vec!["create".to_string()];
                h.extend(list(t));
                Some(h)
            }
            State::Insert {
                table,
                keep,
                create,
            } => {
                let cols: &[String] = if *keep { &table.cols } else { &[] };
                let mut h = vec![
                    if *keep { "insert" } else { "skip" }.to_string(),
                    table.name.clone(),
                    cols.len().to_string(),
                ];
                h.extend(cols.iter().cloned());
                if let Some(c) = create {
                    h.extend(list(c));
                }
                Some(h)
            }
            State::Resync => Some(vec!["resync".to_string()]),
        }
    }

    /// The state after the `INSERT` this state is in.
    fn after_insert(&self) -> State {
        match self {
            State::Insert { create, .. } => State::Top(create.clone()),
            other => other.clone(),
        }
    }
}

/// The header a reader resumes with after the monitor skipped a stretch of a dump it could not
/// parse within one read (see [`State::Resync`]).
pub fn header_after_skip() -> Vec<String> {
    vec!["resync".to_string()]
}

/// What a scan of one construct found.
enum Scan<T> {
    Done(T, usize),
    /// The data ends inside it: wait for more.
    Incomplete,
    /// It does not parse: why, and where.
    Bad(String, usize),
}

/// Line starts mysqldump begins statements (and comments) with.
const STATEMENT_LINE_STARTS: [&[u8]; 10] = [
    b"INSERT ",
    b"REPLACE ",
    b"CREATE ",
    b"DROP ",
    b"LOCK ",
    b"UNLOCK ",
    b"/*",
    b"--",
    b"SET ",
    b"USE ",
];

/// The offset of the first line break in `data` that a statement's line follows, or where to
/// wait: `Err(offset of the last line break, or 0)`.
fn resync_point(data: &[u8]) -> Result<usize, usize> {
    let mut last = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        let line = &data[nl + 1..];
        if STATEMENT_LINE_STARTS.iter().any(|s| line.starts_with(s)) {
            return Ok(nl);
        }
        // A statement word cut by the end of the data may still complete.
        if line.len() < 8 {
            return Err(nl);
        }
        last = nl;
    }
    Err(last)
}

/// Parses the complete rows and statements at the front of `data`, which starts at byte `base`
/// of the dump, in the context `header` (the cursor's, see the module docs).
pub fn parse_sql_dump(base: u64, data: &[u8], header: Option<&[String]>) -> Parsed {
    let mut state = State::from_header(header);
    let mut records = Vec::new();
    let mut consumed = 0;
    let mut i = 0;
    loop {
        match &state {
            State::Resync => match resync_point(&data[i..]) {
                Ok(nl) => {
                    i += nl + 1;
                    consumed = i;
                    state = State::Top(None);
                }
                Err(nl) => {
                    consumed = i + nl;
                    break;
                }
            },
            State::Insert { table, keep, .. } => {
                let Some(at) = skip_blank(data, i) else {
                    break;
                };
                let row_at = match data.get(at) {
                    None => break,
                    Some(b';') => {
                        i = at + 1;
                        state = state.after_insert();
                        consumed = i;
                        continue;
                    }
                    Some(b'(') => Some(at),
                    Some(b',') => match skip_blank(data, at + 1) {
                        Some(r) if r >= data.len() => break,
                        None => break,
                        Some(r) if data[r] == b'(' => Some(r),
                        Some(_) => None,
                    },
                    Some(_) => None,
                };
                let scanned = match row_at {
                    Some(r) => parse_row(data, r),
                    None => {
                        // `ON DUPLICATE KEY UPDATE ...` ends the rows without being one.
                        if keyword(data, at).0 == "ON" {
                            match statement_end(data, at) {
                                Some(end) => {
                                    i = end + 1;
                                    state = state.after_insert();
                                    consumed = i;
                                    continue;
                                }
                                None => break,
                            }
                        }
                        Scan::Bad("expected a row, `,` or `;`".into(), at)
                    }
                };
                let row_at = row_at.unwrap_or(at);
                match scanned {
                    Scan::Incomplete => break,
                    Scan::Done(values, end) => {
                        if *keep {
                            records.push((base + row_at as u64, row_report(table, values)));
                        }
                        i = end;
                        consumed = i;
                    }
                    Scan::Bad(why, pos) => {
                        // Counted once the statement's end is in the data, so that a resumed
                        // read counts it exactly once too.
                        let Some(end) = statement_end(data, pos) else {
                            break;
                        };
                        if *keep {
                            records.push((
                                base + row_at as u64,
                                Err(FormatError::Sql(format!(
                                    "{}: {why} at byte {}",
                                    table.name,
                                    base + pos as u64
                                ))),
                            ));
                        }
                        i = end + 1;
                        state = state.after_insert();
                        consumed = i;
                    }
                }
            }
            State::Top(create) => {
                // Blank and complete comments between statements are consumed as they are
                // seen (up to a comment the data ends in), so a read cut anywhere and resumed
                // consumes what a whole read does.
                let (at, complete) = skip_blank_progress(data, i);
                consumed = at;
                if !complete || at >= data.len() {
                    break;
                }
                match statement(data, at, create) {
                    Scan::Incomplete => break,
                    Scan::Done(Stmt::Create(table), end) => {
                        state = State::Top(Some(Rc::new(table)));
                        i = end;
                        consumed = i;
                    }
                    Scan::Done(Stmt::Insert(next), end) => {
                        state = next;
                        i = end;
                        consumed = i;
                    }
                    Scan::Done(Stmt::Other, end) => {
                        i = end;
                        consumed = i;
                    }
                    Scan::Bad(why, pos) => {
                        let Some(end) = statement_end(data, pos) else {
                            break;
                        };
                        records.push((
                            base + at as u64,
                            Err(FormatError::Sql(format!(
                                "{why} at byte {}",
                                base + pos as u64
                            ))),
                        ));
                        i = end + 1;
                        consumed = i;
                    }
                }
            }
        }
    }
    Parsed {
        records,
        consumed,
        // The loop changes the state only where it also moves `consumed`: this is the state
        // at the cursor.
        header: state.to_header(),
    }
}

/// What a statement at the top level is.
enum Stmt {
    Create(Table),
    /// An `INSERT`: the state at its first row.
    Insert(State),
    Other,
}

/// Reads the statement at `at` (not blank): a `CREATE TABLE` whole, an `INSERT` up to its
/// `VALUES`, anything else to its `;`.
fn statement(data: &[u8], at: usize, create: &Create) -> Scan<Stmt> {
    let (word, after) = keyword(data, at);
    match word.as_str() {
        "CREATE" => {
            let Some(end) = statement_end(data, at) else {
                return Scan::Incomplete;
            };
            match create_table(&data[..end], after) {
                Some((name, cols)) => Scan::Done(Stmt::Create(Table { name, cols }), end + 1),
                None => Scan::Done(Stmt::Other, end + 1),
            }
        }
        "INSERT" | "REPLACE" => insert_head(data, after, create),
        _ => match statement_end(data, at) {
            Some(end) => Scan::Done(Stmt::Other, end + 1),
            None => Scan::Incomplete,
        },
    }
}

/// `INSERT ... INTO name [(cols)] VALUES`: the state at the first row.
fn insert_head(data: &[u8], mut i: usize, create: &Create) -> Scan<Stmt> {
    loop {
        let Some(at) = skip_blank(data, i) else {
            return Scan::Incomplete;
        };
        let (word, after) = keyword(data, at);
        match word.as_str() {
            "LOW_PRIORITY" | "DELAYED" | "HIGH_PRIORITY" | "IGNORE" | "INTO" => i = after,
            _ => break,
        }
    }
    let Some(at) = skip_blank(data, i) else {
        return Scan::Incomplete;
    };
    let name = match identifier(data, at) {
        Scan::Done(t, end) => {
            i = end;
            t
        }
        Scan::Incomplete => return Scan::Incomplete,
        Scan::Bad(why, pos) => return Scan::Bad(format!("INSERT: {why}"), pos),
    };
    let Some(at) = skip_blank(data, i) else {
        return Scan::Incomplete;
    };
    let mut columns: Option<Vec<String>> = None;
    if data.get(at) == Some(&b'(') {
        match column_list(data, at) {
            Scan::Done(cols, end) => {
                columns = Some(cols);
                i = end;
            }
            Scan::Incomplete => return Scan::Incomplete,
            Scan::Bad(why, pos) => return Scan::Bad(format!("INSERT into {name}: {why}"), pos),
        }
    }
    let Some(at) = skip_blank(data, i) else {
        return Scan::Incomplete;
    };
    let (word, after) = keyword(data, at);
    if word != "VALUES" && word != "VALUE" {
        if at >= data.len() || (after >= data.len() && word.len() < 6) {
            return Scan::Incomplete;
        }
        // `INSERT ... SELECT` or `SET`: not a dump's row list.
        return match statement_end(data, at) {
            Some(end) => Scan::Done(Stmt::Other, end + 1),
            None => Scan::Incomplete,
        };
    }
    let keep = layout_of(&name).is_some();
    let table = match columns {
        Some(cols) => Rc::new(Table { name, cols }),
        None => match create {
            Some(t) if t.name == name => t.clone(),
            _ if keep => {
                let why = format!("INSERT into {name} without a column list");
                return Scan::Bad(format!("{why} and no CREATE TABLE {name} before it"), at);
            }
            _ => Rc::new(Table {
                name,
                cols: Vec::new(),
            }),
        },
    };
    // The value list starts with `(`: leave it to the row reader.
    let Some(first) = skip_blank(data, after) else {
        return Scan::Incomplete;
    };
    if first >= data.len() {
        return Scan::Incomplete;
    }
    if data[first] != b'(' {
        return Scan::Bad(
            format!("INSERT into {}: no row after VALUES", table.name),
            first,
        );
    }
    Scan::Done(
        Stmt::Insert(State::Insert {
            table,
            keep,
            create: create.clone(),
        }),
        first,
    )
}

/// `CREATE [TEMPORARY] TABLE [IF NOT EXISTS] name ( definitions )`: the name and the column
/// names in order, or `None` for another `CREATE` (a view, an index...).
fn create_table(stmt: &[u8], mut i: usize) -> Option<(String, Vec<String>)> {
    loop {
        let at = skip_blank(stmt, i)?;
        let (word, after) = keyword(stmt, at);
        match word.as_str() {
            "TEMPORARY" | "IF" | "NOT" | "EXISTS" => i = after,
            "TABLE" => {
                i = after;
                break;
            }
            _ => return None,
        }
    }
    loop {
        let at = skip_blank(stmt, i)?;
        let (word, after) = keyword(stmt, at);
        match word.as_str() {
            "IF" | "NOT" | "EXISTS" => i = after,
            _ => break,
        }
    }
    let at = skip_blank(stmt, i)?;
    let Scan::Done(table, end) = identifier(stmt, at) else {
        return None;
    };
    let open = skip_blank(stmt, end)?;
    if stmt.get(open) != Some(&b'(') {
        return None;
    }
    // Definitions, split at top-level commas; a definition that starts with a key word is an
    // index or constraint, any other starts with its column's name.
    let mut cols = Vec::new();
    let mut def_start = open + 1;
    let mut depth = 0usize;
    let mut j = open + 1;
    while j < stmt.len() {
        match stmt[j] {
            b'\'' | b'"' | b'`' => match skip_quoted(stmt, j) {
                Some(e) => j = e,
                None => return None,
            },
            b'-' | b'#' | b'/' => {
                // A comment inside the definitions (its quotes are not strings).
                let next = skip_blank(stmt, j)?;
                j = if next == j { j + 1 } else { next };
            }
            b'(' => {
                depth += 1;
                j += 1;
            }
            b')' if depth > 0 => {
                depth -= 1;
                j += 1;
            }
            b',' | b')' => {
                if let Some(name) = column_of_definition(stmt, def_start, j) {
                    if cols.len() < MAX_SQL_COLUMNS {
                        cols.push(name);
                    }
                }
                if stmt[j] == b')' {
                    return Some((table, cols));
                }
                j += 1;
                def_start = j;
            }
            _ => j += 1,
        }
    }
    None
}

/// The column a `CREATE TABLE` definition names, unless it is a key or constraint.
fn column_of_definition(stmt: &[u8], from: usize, to: usize) -> Option<String> {
    let def = &stmt[..to];
    let at = skip_blank(def, from)?;
    if at >= to {
        return None;
    }
    if def[at] != b'`' && def[at] != b'"' {
        let (word, _) = keyword(def, at);
        if matches!(
            word.as_str(),
            "PRIMARY"
                | "KEY"
                | "UNIQUE"
                | "INDEX"
                | "CONSTRAINT"
                | "FULLTEXT"
                | "SPATIAL"
                | "FOREIGN"
                | "CHECK"
                | "PERIOD"
        ) {
            return None;
        }
    }
    match identifier(def, at) {
        Scan::Done(name, _) => Some(name),
        _ => None,
    }
}

/// `(a, `b`, c)`: the names.
fn column_list(data: &[u8], open: usize) -> Scan<Vec<String>> {
    let mut cols = Vec::new();
    let mut i = open + 1;
    loop {
        let Some(at) = skip_blank(data, i) else {
            return Scan::Incomplete;
        };
        if at >= data.len() {
            return Scan::Incomplete;
        }
        if data[at] == b')' && cols.is_empty() {
            return Scan::Done(cols, at + 1);
        }
        match identifier(data, at) {
            Scan::Done(name, end) => {
                if cols.len() < MAX_SQL_COLUMNS {
                    cols.push(name);
                }
                i = end;
            }
            Scan::Incomplete => return Scan::Incomplete,
            Scan::Bad(why, pos) => return Scan::Bad(why, pos),
        }
        let Some(at) = skip_blank(data, i) else {
            return Scan::Incomplete;
        };
        match data.get(at) {
            None => return Scan::Incomplete,
            Some(b',') => i = at + 1,
            Some(b')') => return Scan::Done(cols, at + 1),
            Some(_) => return Scan::Bad("bad column list".into(), at),
        }
    }
}

/// One row `( value, ... )` at `open`: its values and the offset after `)`.
fn parse_row(data: &[u8], open: usize) -> Scan<Vec<Val>> {
    if data.get(open) != Some(&b'(') {
        return Scan::Bad("expected a row".into(), open);
    }
    let mut values = Vec::new();
    let mut bytes = 0usize;
    let mut too_large = false;
    let mut i = open + 1;
    loop {
        let Some(at) = skip_blank(data, i) else {
            return Scan::Incomplete;
        };
        let Some(&c) = data.get(at) else {
            return Scan::Incomplete;
        };
        if c == b')' && values.is_empty() {
            return Scan::Done(values, at + 1);
        }
        let (val, end) = match value(data, at) {
            Scan::Done(v, e) => (v, e),
            Scan::Incomplete => return Scan::Incomplete,
            Scan::Bad(why, pos) => return Scan::Bad(why, pos),
        };
        if let Val::Bytes(b) = &val {
            bytes += b.len();
        }
        // The context alone may reach the record limit (as from a live panel); the short
        // fields beside it are cut later.
        if bytes > 2 * MAX_RECORD_BYTES || values.len() >= MAX_SQL_COLUMNS {
            too_large = true;
        } else {
            values.push(val);
        }
        let Some(at) = skip_blank(data, end) else {
            return Scan::Incomplete;
        };
        match data.get(at) {
            None => return Scan::Incomplete,
            Some(b',') => i = at + 1,
            Some(b')') if too_large => {
                return Scan::Bad(
                    format!(
                        "row exceeds {MAX_SQL_COLUMNS} values or the {MAX_RECORD_BYTES}-byte limit"
                    ),
                    at,
                )
            }
            Some(b')') => return Scan::Done(values, at + 1),
            Some(_) => return Scan::Bad("expected `,` or `)` in a row".into(), at),
        }
    }
}

/// One value at `at` (not blank).
fn value(data: &[u8], at: usize) -> Scan<Val> {
    let c = data[at];
    match c {
        b'\'' | b'"' => string(data, at),
        b'_' => {
            // A charset introducer: `_binary '...'`, `_utf8mb4'...'`.
            let (word, after) = keyword(data, at);
            if after >= data.len() {
                return Scan::Incomplete;
            }
            if word.len() < 2 {
                return Scan::Bad("bad value".into(), at);
            }
            match skip_blank(data, after) {
                Some(q) if matches!(data.get(q), Some(b'\'' | b'"')) => string(data, q),
                Some(q) if q >= data.len() => Scan::Incomplete,
                _ => Scan::Bad("charset introducer without a string".into(), after),
            }
        }
        b'x' | b'X' if data.get(at + 1) == Some(&b'\'') => {
            let Some(close) = data[at + 2..].iter().position(|&b| b == b'\'') else {
                return Scan::Incomplete;
            };
            match hex::decode(&data[at + 2..at + 2 + close]) {
                Ok(b) => Scan::Done(Val::Bytes(b), at + 3 + close),
                Err(_) => Scan::Bad("bad hex string".into(), at),
            }
        }
        _ => {
            let end = data[at..]
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+')))
                .map_or(data.len(), |n| at + n);
            if end == data.len() {
                return Scan::Incomplete;
            }
            if end == at {
                return Scan::Bad(format!("unexpected byte 0x{c:02x} in a row"), at);
            }
            let word = &data[at..end];
            if word.eq_ignore_ascii_case(b"NULL") {
                return Scan::Done(Val::Null, end);
            }
            if word.len() > 2 && (word.starts_with(b"0x") || word.starts_with(b"0X")) {
                return match hex::decode(&word[2..]) {
                    Ok(b) => Scan::Done(Val::Bytes(b), end),
                    Err(_) => Scan::Bad("bad hex literal".into(), at),
                };
            }
            if word.len() > 64 {
                return Scan::Bad("literal too long".into(), at);
            }
            Scan::Done(Val::Num(String::from_utf8_lossy(word).into_owned()), end)
        }
    }
}

/// A quoted string at `at`: MySQL's backslash escapes and doubled quotes.
fn string(data: &[u8], at: usize) -> Scan<Val> {
    let q = data[at];
    let mut out = Vec::new();
    let mut i = at + 1;
    while i < data.len() {
        let b = data[i];
        if b == b'\\' {
            let Some(&e) = data.get(i + 1) else {
                return Scan::Incomplete;
            };
            // `\%` and `\_` keep their backslash; any other escaped byte stands for itself.
            if out.len() > 2 * MAX_RECORD_BYTES {
                i += 2;
                continue;
            }
            if matches!(e, b'%' | b'_') {
                out.push(b'\\');
            }
            out.push(match e {
                b'0' => 0,
                b'b' => 8,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'Z' => 26,
                other => other,
            });
            i += 2;
        } else if b == q {
            if data.get(i + 1) == Some(&q) {
                out.push(q);
                i += 2;
            } else if i + 1 == data.len() {
                // A doubled quote may follow in the next chunk.
                return Scan::Incomplete;
            } else {
                return Scan::Done(Val::Bytes(out), i + 1);
            }
        } else {
            if out.len() <= 2 * MAX_RECORD_BYTES {
                out.push(b);
            }
            i += 1;
        }
    }
    Scan::Incomplete
}

/// An identifier at `at`: `` `quoted` `` (doubled backticks inside), `"quoted"`, or bare;
/// `db.table` keeps the last part.
fn identifier(data: &[u8], at: usize) -> Scan<String> {
    let mut i = at;
    let mut name;
    loop {
        match data.get(i) {
            None => return Scan::Incomplete,
            Some(&q @ (b'`' | b'"')) => {
                let mut out = Vec::new();
                let mut j = i + 1;
                loop {
                    match data.get(j) {
                        None => return Scan::Incomplete,
                        Some(&b) if b == q => {
                            if data.get(j + 1) == Some(&q) {
                                out.push(q);
                                j += 2;
                            } else if j + 1 == data.len() {
                                return Scan::Incomplete;
                            } else {
                                j += 1;
                                break;
                            }
                        }
                        Some(&b) => {
                            if out.len() < MAX_IDENT_BYTES {
                                out.push(b);
                            }
                            j += 1;
                        }
                    }
                }
                name = String::from_utf8_lossy(&out).into_owned();
                i = j;
            }
            Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$') => {
                let end = data[i..]
                    .iter()
                    .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$')))
                    .map_or(data.len(), |n| i + n);
                if end == data.len() {
                    return Scan::Incomplete;
                }
                name = String::from_utf8_lossy(&data[i..end.min(i + MAX_IDENT_BYTES)]).into_owned();
                i = end;
            }
            Some(&b) => return Scan::Bad(format!("expected a name, found byte 0x{b:02x}"), i),
        }
        if data.get(i) == Some(&b'.') {
            i += 1;
            continue;
        }
        return Scan::Done(name, i);
    }
}

/// The upper-cased bare word at `at` (empty if none) and the offset after it.
fn keyword(data: &[u8], at: usize) -> (String, usize) {
    let end = data
        .get(at..)
        .unwrap_or_default()
        .iter()
        .take(32)
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .map_or((at + 32).min(data.len()), |n| at + n);
    (
        String::from_utf8_lossy(&data[at.min(end)..end]).to_ascii_uppercase(),
        end,
    )
}

/// The offset of the first byte at or after `i` that is neither blank nor in a comment;
/// `None` when the data ends inside a comment. `/*! ... */` conditional comments are skipped
/// as comments: in a dump they only hold session settings.
fn skip_blank(data: &[u8], i: usize) -> Option<usize> {
    let (at, complete) = skip_blank_progress(data, i);
    complete.then_some(at)
}

/// As [`skip_blank`], and when the data ends inside a comment, the comment's start and `false`.
fn skip_blank_progress(data: &[u8], mut i: usize) -> (usize, bool) {
    loop {
        while data.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let rest = data.get(i..).unwrap_or_default();
        // MySQL: `--` starts a comment when a blank or control character follows it.
        let comment_end = if rest.starts_with(b"--")
            && rest
                .get(2)
                .is_none_or(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            || rest.starts_with(b"#")
        {
            rest.iter().position(|&b| b == b'\n').map(|n| n + 1)
        } else if rest.starts_with(b"/*") {
            memchr::memmem::find(&rest[2..], b"*/").map(|n| n + 4)
        } else {
            return (i, true);
        };
        match comment_end {
            Some(n) => i += n,
            None => return (i, false),
        }
    }
}

/// The end of the quoted token at `at`, or `None` if the data ends inside it.
fn skip_quoted(data: &[u8], at: usize) -> Option<usize> {
    let q = data[at];
    let mut i = at + 1;
    while i < data.len() {
        let b = data[i];
        if b == b'\\' && q != b'`' {
            i += 2;
        } else if b == q {
            if data.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return Some(i + 1);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The offset of the `;` that ends the statement going on at `i` (outside strings and
/// comments), or `None` if the data ends first.
fn statement_end(data: &[u8], mut i: usize) -> Option<usize> {
    while i < data.len() {
        match data[i] {
            b';' => return Some(i),
            b'\'' | b'"' | b'`' => i = skip_quoted(data, i)?,
            b'-' | b'#' | b'/' => {
                let next = skip_blank(data, i)?;
                i = if next == i { i + 1 } else { next };
            }
            _ => i += 1,
        }
    }
    None
}

/// A row of a panel table as a report.
fn row_report(table: &Table, values: Vec<Val>) -> Result<PanelReport, FormatError> {
    let Some(layout) = layout_of(&table.name) else {
        return Err(FormatError::Sql(format!(
            "{} is not a panel table",
            table.name
        )));
    };
    if values.len() != table.cols.len() {
        return Err(FormatError::Sql(format!(
            "{}: a row of {} values for {} columns",
            table.name,
            values.len(),
            table.cols.len()
        )));
    }
    report_of(layout, &table.name, &table.cols, &values)
}

fn report_of(
    layout: &Layout,
    table: &str,
    columns: &[String],
    values: &[Val],
) -> Result<PanelReport, FormatError> {
    let get = |name: &str| -> Option<&Val> {
        columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .and_then(|i| values.get(i))
    };
    let missing = |col: &str| FormatError::Sql(format!("{table} has no `{col}` column"));
    let id = get(layout.id).ok_or_else(|| missing(layout.id))?;
    let bot_id = get(layout.bot_id).ok_or_else(|| missing(layout.bot_id))?;
    let context = get(layout.context).ok_or_else(|| missing(layout.context))?;
    let context = bytes_of(context);
    if context.len() > MAX_RECORD_BYTES {
        return Err(FormatError::TooLarge(context.len()));
    }
    let mut report = PanelReport {
        id: uint_of(id).unwrap_or(0),
        bot_id: text_of(bot_id, MAX_FIELD_BYTES),
        botnet: String::new(),
        report_type: 0,
        path_source: String::new(),
        context: String::from_utf8_lossy(&context).into_owned(),
        ipv4: String::new(),
        country: String::new(),
        rtime: 0,
    };
    for (field, col, kind) in layout.optional {
        let Some(v) = col.and_then(get) else {
            continue;
        };
        match (field, kind) {
            ("type", _) => {
                if *v == Val::Null {
                    continue;
                }
                report.report_type = uint_of(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or(FormatError::NotANumber { field: "type" })?;
            }
            ("rtime", _) | (_, ColKind::Time) => report.rtime = time_of(v),
            ("botnet", _) => report.botnet = text_of(v, MAX_FIELD_BYTES),
            ("path_source", _) => report.path_source = text_of(v, MAX_FIELD_BYTES),
            ("ipv4", _) => report.ipv4 = text_of(v, MAX_FIELD_BYTES),
            ("country", _) => report.country = text_of(v, MAX_FIELD_BYTES),
            _ => {}
        }
    }
    Ok(report)
}

fn bytes_of(v: &Val) -> Vec<u8> {
    match v {
        Val::Null => Vec::new(),
        Val::Bytes(b) => b.clone(),
        Val::Num(n) => n.as_bytes().to_vec(),
    }
}

fn text_of(v: &Val, max: usize) -> String {
    let b = bytes_of(v);
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

fn uint_of(v: &Val) -> Option<u64> {
    match v {
        Val::Num(n) => n.parse().ok(),
        Val::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        Val::Null => None,
    }
}

/// Unix seconds from an integer, or from a `YYYY-MM-DD HH:MM:SS` datetime (UTC, as the live
/// reader's session); 0 when neither.
fn time_of(v: &Val) -> i64 {
    match v {
        Val::Num(n) => n.parse().unwrap_or(0),
        Val::Bytes(b) => {
            let Ok(s) = std::str::from_utf8(b) else {
                return 0;
            };
            let s = s.trim();
            if let Ok(n) = s.parse() {
                return n;
            }
            if s.len() == 19 && s.as_bytes()[10] == b' ' {
                let iso = format!("{}T{}Z", &s[..10], &s[11..]);
                if let Some(us) = dropwatch_model::time::parse_rfc3339_utc(&iso) {
                    return us.div_euclid(1_000_000);
                }
            }
            0
        }
        Val::Null => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "-- MySQL dump 10.13  Distrib 5.1.73
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
DROP TABLE IF EXISTS `botnet_reports_261126`;
CREATE TABLE `botnet_reports_261126` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `bot_id` varchar(100) NOT NULL DEFAULT '',
  `botnet` varchar(20) NOT NULL DEFAULT '-- default --',
  `type` tinyint(3) unsigned NOT NULL DEFAULT '0',
  `path_source` text NOT NULL,
  `context` longblob NOT NULL,
  `ipv4` varchar(15) NOT NULL DEFAULT '0.0.0.0',
  `country` char(2) NOT NULL DEFAULT '--',
  `rtime` int(10) unsigned NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`),
  KEY `bot_id` (`bot_id`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8;
LOCK TABLES `botnet_reports_261126` WRITE;
INSERT INTO `botnet_reports_261126` VALUES (1,'PC_1','net',12,'https://ib.a.example/login','Referer: x\\nPOST data:\\nuser=a;b\\'c\\npass=\\\"q\\\"','10.0.0.1','JP',1764115200),(2,'PC_2','net',12,'https://ib.a.example/login',_binary 'ctx two','10.0.0.2','JP',1764115201);
UNLOCK TABLES;
INSERT INTO `botnet_list` VALUES ('PC_1','net',';(','x');
INSERT INTO botnet_reports_261126 (bot_id, context, id) VALUES ('PC_3', 0x637478, 3);
";

    fn all(data: &[u8]) -> Parsed {
        parse_sql_dump(0, data, None)
    }

    #[test]
    fn rows_of_day_tables_are_read_with_escapes_and_column_lists() {
        let p = all(DUMP.as_bytes());
        assert_eq!(p.consumed, DUMP.len());
        let reports: Vec<PanelReport> = p.records.into_iter().map(|(_, r)| r.unwrap()).collect();
        assert_eq!(reports.len(), 3);
        assert_eq!(reports[0].id, 1);
        assert_eq!(reports[0].bot_id, "PC_1");
        assert_eq!(reports[0].report_type, 12);
        assert_eq!(
            reports[0].context,
            "Referer: x\nPOST data:\nuser=a;b'c\npass=\"q\""
        );
        assert_eq!(reports[0].rtime, 1_764_115_200);
        assert_eq!(reports[1].context, "ctx two");
        assert_eq!(reports[2].id, 3);
        assert_eq!(reports[2].bot_id, "PC_3");
        assert_eq!(reports[2].context, "ctx");
        // The cursor keeps the table's columns (the explicit list of the last INSERT does not
        // replace them).
        let header = p.header.unwrap();
        assert_eq!(header[..3], ["create", "botnet_reports_261126", "id"]);
        assert_eq!(header.len(), 11);
    }

    #[test]
    fn a_dump_read_in_pieces_gives_the_same_rows_at_every_cut() {
        let whole: Vec<_> = all(DUMP.as_bytes())
            .records
            .into_iter()
            .map(|(at, r)| (at, r.unwrap()))
            .collect();
        let data = DUMP.as_bytes();
        for step in [1usize, 7, 64, 300] {
            let mut got = Vec::new();
            let (mut offset, mut header) = (0usize, None::<Vec<String>>);
            let mut end = 0;
            while offset < data.len() {
                end = (end + step).max(offset).min(data.len());
                let p = parse_sql_dump(offset as u64, &data[offset..end], header.as_deref());
                got.extend(p.records.into_iter().map(|(at, r)| (at, r.unwrap())));
                offset += p.consumed;
                header = p.header;
                if end == data.len() && p.consumed == 0 {
                    break;
                }
            }
            assert_eq!(offset, data.len(), "step {step}");
            assert_eq!(got, whole, "step {step}");
        }
    }

    #[test]
    fn bad_rows_are_counted_and_the_rest_is_read() {
        let dump = "CREATE TABLE `logs_261126` (`log_id` int, `bot_uid` varchar(64), `bot_net` text, `data_type` int, `data` text, `timestamp` datetime);
INSERT INTO `logs_261126` VALUES (1,'B','n',1,'grab one','2026-11-26 00:00:01'),(2,'B','n'),(3,'B','n',1,'grab three',NULL);
INSERT INTO `logs_261126` VALUES (4,'B','n',1,'x' 'y');
INSERT INTO `rep2_20261126` VALUES (1,'G','grab','2026-11-26 00:00:00');
INSERT INTO `logs_261126` VALUES (5,'B','n',1,'grab five',1764115205);
";
        let p = all(dump.as_bytes());
        assert_eq!(p.consumed, dump.len());
        let ok: Vec<_> = p
            .records
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .collect();
        let bad: Vec<_> = p
            .records
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .collect();
        assert_eq!(
            ok.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![1, 3, 5],
            "{bad:?}"
        );
        assert_eq!(ok[0].rtime, 1_795_651_201); // 2026-11-26T00:00:01Z
        assert_eq!(ok[0].botnet, "n");
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0]
            .to_string()
            .contains("a row of 3 values for 6 columns"));
        assert!(bad[1].to_string().contains("expected `,` or `)`"));
        assert!(bad[2].to_string().contains("without a column list"));
    }

    /// Every cut of `data`, resumed from the cursor, gives the whole read's records and
    /// consumption.
    fn assert_resumes(data: &[u8]) {
        let whole = all(data);
        for cut in 0..=data.len() {
            let first = all(&data[..cut]);
            let rest = parse_sql_dump(
                first.consumed as u64,
                &data[first.consumed..],
                first.header.as_deref(),
            );
            assert_eq!(first.consumed + rest.consumed, whole.consumed, "cut {cut}");
            let resumed: Vec<_> = first.records.iter().chain(&rest.records).collect();
            assert_eq!(
                resumed,
                whole.records.iter().collect::<Vec<_>>(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn every_cut_resumes_to_the_whole_read() {
        assert_resumes(DUMP.as_bytes());
        // Found by the fuzzer: blank, then a comment the data ends in.
        assert_resumes(b" \n\n\n\n\n\n\n\n\n\n\n\n\n\n\n#2.22");
        assert_resumes(
            b"INSERT INTO `logs_261126` VALUES (1,'B','n',1,'x','2026-11-26 00:00:01');\n/* open",
        );
    }

    #[test]
    fn review_findings_stay_fixed() {
        // An empty identifier (two backticks) in a column list survives resumption.
        let d = b"INSERT INTO `logs_261126` (`log_id`,``,`bot_uid`,`data`) VALUES (1,'e','B','grab one'),(2,'e','B','grab two');\n";
        assert_resumes(d);
        assert_eq!(all(d).records.iter().filter(|(_, r)| r.is_ok()).count(), 2);
        // `ON DUPLICATE KEY UPDATE` ends the rows without a bad record.
        let d = b"INSERT INTO `logs_261126` (`log_id`,`bot_uid`,`data`) VALUES (1,'B','x') ON DUPLICATE KEY UPDATE data='y';\n";
        let p = all(d);
        assert_eq!(p.consumed, d.len());
        assert_eq!(p.records.len(), 1);
        assert!(p.records[0].1.is_ok());
        // A comment with a quote inside a CREATE TABLE keeps its columns.
        let d = b"CREATE TABLE `logs_261126` (\n `log_id` int, -- the bot's row\n `bot_uid` text, # it's\n `data` text /* don't */);\nINSERT INTO `logs_261126` VALUES (1,'B','grab');\n";
        let p = all(d);
        assert!(p.records[0].1.is_ok(), "{:?}", p.records);
        // A row list broken by a stray token: a bad record, no panic, the next statement read.
        let d = b"INSERT INTO `logs_261126` (`log_id`,`bot_uid`,`data`) VALUES (1,'B','x'),X2,'c','d');\nINSERT INTO `logs_261126` (`log_id`,`bot_uid`,`data`) VALUES (3,'B','z');\n";
        let p = all(d);
        let ids: Vec<_> = p
            .records
            .iter()
            .map(|(_, r)| r.as_ref().map(|r| r.id).ok())
            .collect();
        assert_eq!(ids, vec![Some(1), None, Some(3)]);
        assert_resumes(d);
    }

    #[test]
    fn after_a_skipped_stretch_the_reader_waits_for_a_statement_line() {
        // The monitor skipped the front of a huge row: the rest starts inside a string that
        // holds what looks like SQL, on one line (mysqldump escapes line breaks).
        let rest = b"junk'),(9,'B','n',1,'x; INSERT INTO `logs_261126` VALUES (66,6,6,6,6,6)',0);\nINSERT INTO `logs_261126` (`log_id`,`bot_uid`,`data`) VALUES (3,'B','three');\n";
        let resync = header_after_skip();
        let p = parse_sql_dump(1000, rest, Some(&resync));
        let ok: Vec<u64> = p
            .records
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.id))
            .collect();
        assert_eq!(ok, vec![3]);
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.consumed, rest.len());
        // Cut anywhere, the resync resumes the same.
        for cut in 0..=rest.len() {
            let first = parse_sql_dump(0, &rest[..cut], Some(&resync));
            let second = parse_sql_dump(
                first.consumed as u64,
                &rest[first.consumed..],
                first.header.as_deref(),
            );
            assert_eq!(first.consumed + second.consumed, rest.len(), "cut {cut}");
            assert_eq!(first.records.len() + second.records.len(), 1, "cut {cut}");
        }
    }

    #[test]
    fn hostile_bytes_never_panic_and_end_consumed_or_waiting() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"(),;'\"`\\-#/*\n INSERTVALUESbotnet_reports_261126CREATE TABLE0x_";
        for len in [0usize, 1, 2, 10, 100, 1000] {
            for _ in 0..300 {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        alphabet[(rng % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let p = all(&data);
                assert!(p.consumed <= data.len());
                // Resuming at any cut gives the records of the whole read, once each.
                let cut = (rng as usize) % (len + 1);
                let first = all(&data[..cut]);
                let rest = parse_sql_dump(
                    first.consumed as u64,
                    &data[first.consumed..],
                    first.header.as_deref(),
                );
                assert_eq!(first.consumed + rest.consumed, p.consumed);
                let resumed: Vec<_> = first.records.iter().chain(&rest.records).collect();
                assert_eq!(resumed, p.records.iter().collect::<Vec<_>>());
            }
        }
    }
}
