//! The generated drop data in every layout the monitors read.
//!
//! [`crate::Generated::write_to`] writes each drop as JSON lines, the way the simulated drop
//! server serves it. Drops are also seen as a JSON array listing, as CSV with a header row
//! named like the panel's `botnet_reports` columns, and as the ZeuS panel's file-mode
//! `reports.txt` blocks (`../shared/design/formats/drops-and-sharing.md` §1.1). The encoders
//! here write exactly what `dropwatch_monitor::formats` reads, record for record and in the
//! same order, so a test can check every format against the same [`crate::GroundTruth`].
//!
//! The JSON lines' malformed (truncated) line has a counterpart in each format — an array
//! element that is not a report, a CSV row whose `type` is not a number, a block without its
//! `context=` line — so every format also holds exactly `GroundTruth::malformed_lines` bad
//! records.

use std::io;
use std::path::{Path, PathBuf};

use dropwatch_model::PanelReport;

use crate::generate::{DropData, Generated};

/// The line that separates `reports.txt` blocks: 80 `=`.
pub const REPORTS_TXT_SEPARATOR: &str =
    "================================================================================";

/// The CSV columns written, in order (named like the panel's `botnet_reports` columns).
pub const CSV_COLUMNS: [&str; 9] = [
    "id",
    "bot_id",
    "botnet",
    "type",
    "path_source",
    "context",
    "ipv4",
    "country",
    "rtime",
];

/// A layout of drop data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropFormat {
    JsonLines,
    JsonArray,
    Csv,
    ReportsTxt,
    /// A `mysqldump` of the panel database: day tables `botnet_reports_YYMMDD`.
    SqlDump,
}

impl DropFormat {
    pub const ALL: [DropFormat; 5] = [
        DropFormat::JsonLines,
        DropFormat::JsonArray,
        DropFormat::Csv,
        DropFormat::ReportsTxt,
        DropFormat::SqlDump,
    ];

    /// The file name suffix used by [`write_drop_formats`].
    pub fn extension(self) -> &'static str {
        match self {
            DropFormat::JsonLines => "jsonl",
            DropFormat::JsonArray => "json",
            DropFormat::Csv => "csv",
            DropFormat::ReportsTxt => "reports.txt",
            DropFormat::SqlDump => "sql",
        }
    }

    /// The monitor source kind reading this format from a file or over HTTP.
    pub fn source_kind(self, http: bool) -> &'static str {
        match (self, http) {
            (DropFormat::JsonLines, false) => "file_jsonl",
            (DropFormat::JsonLines, true) => "http_jsonl",
            (DropFormat::JsonArray, false) => "file_json",
            (DropFormat::JsonArray, true) => "http_json",
            (DropFormat::Csv, false) => "file_csv",
            (DropFormat::Csv, true) => "http_csv",
            (DropFormat::ReportsTxt, false) => "file_reports_txt",
            (DropFormat::ReportsTxt, true) => "http_reports_txt",
            (DropFormat::SqlDump, false) => "file_sql_dump",
            (DropFormat::SqlDump, true) => "http_sql_dump",
        }
    }
}

/// One stored line of a drop: a panel report, or a line that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropRecord {
    Report(PanelReport),
    Malformed,
}

/// The drop's lines as records, in order.
pub fn drop_records(drop: &DropData) -> Vec<DropRecord> {
    drop.lines
        .iter()
        .map(|l| match serde_json::from_str::<PanelReport>(l) {
            Ok(r) => DropRecord::Report(r),
            Err(_) => DropRecord::Malformed,
        })
        .collect()
}

/// The drop's valid reports, in order.
pub fn drop_reports(drop: &DropData) -> Vec<PanelReport> {
    drop_records(drop)
        .into_iter()
        .filter_map(|r| match r {
            DropRecord::Report(r) => Some(r),
            DropRecord::Malformed => None,
        })
        .collect()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Encodes a drop in `format`. Fails (rather than writing something the reader would read
/// differently) when a report cannot be represented in the format.
pub fn encode(format: DropFormat, drop: &DropData) -> io::Result<Vec<u8>> {
    match format {
        DropFormat::JsonLines => {
            let mut body = drop.lines.join("\n");
            body.push('\n');
            Ok(body.into_bytes())
        }
        DropFormat::JsonArray => encode_json_array(&drop_records(drop)),
        DropFormat::Csv => Ok(encode_csv(&drop_records(drop))),
        DropFormat::ReportsTxt => encode_reports_txt(&drop_records(drop)),
        DropFormat::SqlDump => Ok(encode_sql_dump(&drop_records(drop))),
    }
}

/// A JSON array of reports; a malformed record is an element lacking the report's fields.
pub fn encode_json_array(records: &[DropRecord]) -> io::Result<Vec<u8>> {
    let items: Vec<serde_json::Value> = records
        .iter()
        .map(|r| match r {
            DropRecord::Report(r) => serde_json::to_value(r),
            DropRecord::Malformed => Ok(serde_json::json!({ "id": 0, "bot_id": "TRUNCATED" })),
        })
        .collect::<Result<_, _>>()?;
    // One element per line, as panels' listing pages commonly are.
    let mut out = b"[\n".to_vec();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        serde_json::to_writer(&mut out, item)?;
    }
    out.extend_from_slice(b"\n]\n");
    Ok(out)
}

/// One RFC 4180 field, always quoted.
fn csv_field(out: &mut String, value: &str) {
    out.push('"');
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

/// CSV with a header row of [`CSV_COLUMNS`], CRLF record ends, every field quoted (a quoted
/// `context` keeps its line breaks); a malformed record has a `type` that is not a number.
pub fn encode_csv(records: &[DropRecord]) -> Vec<u8> {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for r in records {
        let row: [String; 9] = match r {
            DropRecord::Report(r) => [
                r.id.to_string(),
                r.bot_id.clone(),
                r.botnet.clone(),
                r.report_type.to_string(),
                r.path_source.clone(),
                r.context.clone(),
                r.ipv4.clone(),
                r.country.clone(),
                r.rtime.to_string(),
            ],
            DropRecord::Malformed => [
                "0".into(),
                "TRUNCATED".into(),
                String::new(),
                "12\"path_sou".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        for (i, field) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, field);
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// A MySQL string literal as `mysqldump` writes it: `\0 \n \r \\ \' \" \Z` escaped.
fn sql_string(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// The ZeuS day table a report lands in: `botnet_reports_` + its UTC day as `YYMMDD`.
fn day_table(rtime: i64) -> String {
    let day = dropwatch_model::time::format_zulu(rtime.max(0) * 1_000_000, 0);
    // `YYYY-MM-DDT...`
    format!("botnet_reports_{}{}{}", &day[2..4], &day[5..7], &day[8..10])
}

/// A `mysqldump` of a ZeuS 2.0.8.9 panel database: per UTC day of the reports, `DROP TABLE`,
/// `CREATE TABLE botnet_reports_YYMMDD` (the panel's columns, some the reader ignores) and
/// extended `INSERT`s of up to 16 rows, between the dump's usual session settings and
/// `LOCK TABLES`; a `botnet_list` table the reader skips. A malformed record is a row with
/// too few values. Records keep their order within a day table; days are written in order.
pub fn encode_sql_dump(records: &[DropRecord]) -> Vec<u8> {
    let mut days: std::collections::BTreeMap<String, Vec<&DropRecord>> =
        std::collections::BTreeMap::new();
    let mut last_table = day_table(0);
    for r in records {
        if let DropRecord::Report(rep) = r {
            last_table = day_table(rep.rtime);
        }
        days.entry(last_table.clone()).or_default().push(r);
    }
    let mut out = String::from(
        "-- MySQL dump 10.13  Distrib 5.1.73, for debian-linux-gnu (x86_64)\n--\n-- Host: localhost    Database: cpdb\n-- ------------------------------------------------------\n\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8 */;\n/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\n--\n-- Table structure for table `botnet_list`\n--\n\nDROP TABLE IF EXISTS `botnet_list`;\nCREATE TABLE `botnet_list` (\n  `bot_id` varchar(100) NOT NULL,\n  `botnet` varchar(20) NOT NULL,\n  `comment` text NOT NULL,\n  PRIMARY KEY (`bot_id`)\n) ENGINE=MyISAM DEFAULT CHARSET=utf8;\nINSERT INTO `botnet_list` VALUES ('PC_X','net','drop; (not a report)');\n",
    );
    for (table, rows) in &days {
        out.push_str(&format!(
            "\n--\n-- Table structure for table `{table}`\n--\n\nDROP TABLE IF EXISTS `{table}`;\nCREATE TABLE `{table}` (\n  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,\n  `bot_id` varchar(100) NOT NULL DEFAULT '',\n  `botnet` varchar(20) NOT NULL DEFAULT '-- default --',\n  `bot_version` int(10) unsigned NOT NULL DEFAULT '0',\n  `type` tinyint(3) unsigned NOT NULL DEFAULT '0',\n  `path_source` text NOT NULL,\n  `context` longblob NOT NULL,\n  `ipv4` varchar(15) NOT NULL DEFAULT '0.0.0.0',\n  `country` char(2) NOT NULL DEFAULT '--',\n  `rtime` int(10) unsigned NOT NULL DEFAULT '0',\n  PRIMARY KEY (`id`),\n  KEY `bot_id` (`bot_id`)\n) ENGINE=MyISAM DEFAULT CHARSET=utf8;\n\nLOCK TABLES `{table}` WRITE;\n/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;\n"
        ));
        for chunk in rows.chunks(16) {
            out.push_str(&format!("INSERT INTO `{table}` VALUES "));
            for (i, r) in chunk.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('(');
                match r {
                    DropRecord::Report(r) => {
                        out.push_str(&format!("{},", r.id));
                        sql_string(&mut out, &r.bot_id);
                        out.push(',');
                        sql_string(&mut out, &r.botnet);
                        out.push_str(&format!(",33557249,{},", r.report_type));
                        sql_string(&mut out, &r.path_source);
                        out.push(',');
                        sql_string(&mut out, &r.context);
                        out.push(',');
                        sql_string(&mut out, &r.ipv4);
                        out.push(',');
                        sql_string(&mut out, &r.country);
                        out.push_str(&format!(",{}", r.rtime));
                    }
                    DropRecord::Malformed => out.push_str("0,'TRUNCATED','net'"),
                }
                out.push(')');
            }
            out.push_str(";\n");
        }
        out.push_str(&format!(
            "/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;\nUNLOCK TABLES;\n"
        ));
    }
    out.push_str("\n/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n-- Dump completed on 2026-11-26  0:00:00\n");
    out.into_bytes()
}

/// ZeuS file-mode `reports.txt`: `key=value` lines, `context=` and the raw log, then a line of
/// 80 `=`; a malformed record is a block cut before its `context=` line. The format has no
/// escaping, so a report whose short fields hold a line break, or whose log holds a
/// separator line or ends with a carriage return, is refused.
pub fn encode_reports_txt(records: &[DropRecord]) -> io::Result<Vec<u8>> {
    let mut out = String::new();
    for r in records {
        match r {
            DropRecord::Report(r) => {
                for (key, value) in [
                    ("bot_id", r.bot_id.as_str()),
                    ("botnet", r.botnet.as_str()),
                    ("ipv4", r.ipv4.as_str()),
                    ("country", r.country.as_str()),
                    ("path_source", r.path_source.as_str()),
                ] {
                    if value.contains(['\n', '\r']) || value.trim() != value {
                        return Err(invalid(format!(
                            "report {}: {key} cannot be written to reports.txt",
                            r.id
                        )));
                    }
                    out.push_str(&format!("{key}={value}\n"));
                }
                out.push_str(&format!("type={}\nrtime={}\n", r.report_type, r.rtime));
                if r.context.ends_with('\r')
                    || r.context
                        .split('\n')
                        .any(|l| l.trim_end_matches('\r') == REPORTS_TXT_SEPARATOR)
                {
                    return Err(invalid(format!(
                        "report {}: its log cannot be written to reports.txt",
                        r.id
                    )));
                }
                out.push_str("context=");
                out.push_str(&r.context);
                out.push('\n');
            }
            DropRecord::Malformed => out.push_str("bot_id=TRUNCATED\ntype=12\npath_sou\n"),
        }
        out.push_str(REPORTS_TXT_SEPARATOR);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// A drop written in one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropFile {
    /// The drop's URL path on the drop host.
    pub drop_path: String,
    pub format: DropFormat,
    pub file: PathBuf,
}

/// Writes every drop of `generated` in every format to `dir` (`<drop>.<extension>`), and
/// returns what was written, drop by drop in format order.
pub fn write_drop_formats(generated: &Generated, dir: &Path) -> io::Result<Vec<DropFile>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for drop in &generated.drops {
        let stem = drop.path.trim_matches('/').replace('/', "_");
        for format in DropFormat::ALL {
            let file = dir.join(format!("{stem}.{}", format.extension()));
            std::fs::write(&file, encode(format, drop)?)?;
            out.push(DropFile {
                drop_path: drop.path.clone(),
                format,
                file,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{generate, GenerateOptions};

    fn generated(seed: u64) -> Generated {
        generate(&GenerateOptions {
            seed,
            drop_base: "http://127.0.0.1:18080".into(),
        })
    }

    #[test]
    fn records_keep_the_lines_order_and_the_malformed_ones() {
        let g = generated(3);
        let all: Vec<DropRecord> = g.drops.iter().flat_map(drop_records).collect();
        assert_eq!(all.len(), g.truth.report_lines);
        let bad = all.iter().filter(|r| **r == DropRecord::Malformed).count();
        assert_eq!(bad, g.truth.malformed_lines);
    }

    #[test]
    fn every_format_is_written_and_json_lines_are_the_original_bytes() {
        let g = generated(5);
        let dir = tempfile::tempdir().unwrap();
        let files = write_drop_formats(&g, dir.path()).unwrap();
        assert_eq!(files.len(), g.drops.len() * DropFormat::ALL.len());
        g.write_to(&dir.path().join("orig")).unwrap();
        for f in files.iter().filter(|f| f.format == DropFormat::JsonLines) {
            let name = f.file.file_name().unwrap();
            assert_eq!(
                std::fs::read(&f.file).unwrap(),
                std::fs::read(dir.path().join("orig/drops").join(name)).unwrap()
            );
        }
        // The array is valid JSON with one element per stored line.
        let f = files
            .iter()
            .find(|f| f.format == DropFormat::JsonArray)
            .unwrap();
        let items: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&f.file).unwrap()).unwrap();
        let drop = g.drops.iter().find(|d| d.path == f.drop_path).unwrap();
        assert_eq!(items.len(), drop.lines.len());
    }

    #[test]
    fn reports_txt_refuses_what_it_cannot_hold() {
        let report = |context: &str, bot_id: &str| {
            DropRecord::Report(PanelReport {
                id: 1,
                bot_id: bot_id.into(),
                botnet: String::new(),
                report_type: 12,
                path_source: "https://a.example/".into(),
                context: context.into(),
                ipv4: String::new(),
                country: String::new(),
                rtime: 0,
            })
        };
        assert!(encode_reports_txt(&[report("ok\n", "A")]).is_ok());
        assert!(encode_reports_txt(&[report("ok", "A\nB")]).is_err());
        assert!(encode_reports_txt(&[report("x\r", "A")]).is_err());
        let sep = format!("a\n{REPORTS_TXT_SEPARATOR}\nb");
        assert!(encode_reports_txt(&[report(&sep, "A")]).is_err());
    }

    #[test]
    fn csv_quotes_every_field() {
        let out = encode_csv(&[DropRecord::Report(PanelReport {
            id: 9,
            bot_id: "B\"1".into(),
            botnet: "bn,1".into(),
            report_type: 12,
            path_source: "u".into(),
            context: "l1\r\nl2".into(),
            ipv4: String::new(),
            country: "JP".into(),
            rtime: 5,
        })]);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "id,bot_id,botnet,type,path_source,context,ipv4,country,rtime\r\n\
             \"9\",\"B\"\"1\",\"bn,1\",\"12\",\"u\",\"l1\r\nl2\",\"\",\"JP\",\"5\"\r\n"
        );
    }
}
