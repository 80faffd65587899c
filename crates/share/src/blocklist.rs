//! Blocklists in the abuse.ch style: a CSV with frozen columns and plain-text lists.
//!
//! The CSV starts with `#` comment lines (what it is, TLP, how many entries, how many hosts the
//! allow-list kept out), then one header row and one row per server, sorted by URL and role:
//!
//! | column | meaning |
//! | --- | --- |
//! | `first_seen_utc` | when dropwatch first saw the server named, `YYYY-MM-DD HH:MM:SS` UTC |
//! | `url` | the server's URL, as the malware names it |
//! | `host` | its host (domain or address) |
//! | `ip` | the address when the host is an IP literal, else empty (nothing is resolved) |
//! | `role` | `c2_gate`, `config_url`, `loader`, `drop`, `ats_panel`, `script_host` |
//! | `family` | malware families, `;`-separated, empty when unknown |
//! | `botnet` | botnet names, `;`-separated, empty when unknown |
//! | `last_seen_utc` | when it was last named or last served a record |
//! | `status` | `receiving_data` when dropwatch fetched stolen-data records from it, else `referenced` |
//!
//! **API Boundary:** the columns and their order are frozen ([`CSV_COLUMNS`]); new columns may
//! only be appended. Fields are quoted as RFC 4180 requires; a field that starts with `=`, `+`,
//! `-` or `@` gets a leading `'` so a spreadsheet does not run attacker-written text as a
//! formula.

use std::collections::BTreeSet;

use crate::intel::{family_display, HostKind, Intel};
use crate::time::stix_timestamp;
use crate::ExportOptions;

/// The CSV's columns, in order. Frozen: see the module docs.
pub const CSV_COLUMNS: [&str; 9] = [
    "first_seen_utc",
    "url",
    "host",
    "ip",
    "role",
    "family",
    "botnet",
    "last_seen_utc",
    "status",
];

/// What a plain-text list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Url,
    Domain,
    Ip,
}

impl ListKind {
    pub fn parse(text: &str) -> Option<ListKind> {
        match text {
            "url" => Some(ListKind::Url),
            "domain" => Some(ListKind::Domain),
            "ip" => Some(ListKind::Ip),
            _ => None,
        }
    }

    fn words(self) -> &'static str {
        match self {
            ListKind::Url => "URLs",
            ListKind::Domain => "domains",
            ListKind::Ip => "IP addresses",
        }
    }
}

fn utc(micros: i64) -> String {
    let t = stix_timestamp(micros);
    format!("{} {}", &t[..10], &t[11..19])
}

/// One CSV field, quoted if needed and defused against spreadsheet formulas.
pub fn csv_field(value: &str) -> String {
    let mut v = value.to_string();
    if v.starts_with(['=', '+', '-', '@']) {
        v.insert(0, '\'');
    }
    if v.contains([',', '"', '\n', '\r']) || v.starts_with(' ') || v.ends_with(' ') {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn header(intel: &Intel, opts: &ExportOptions, what: &str, entries: usize) -> String {
    let as_of = intel.servers.iter().map(|s| s.modified()).max();
    let mut h = format!("# dropwatch {what}\n");
    h.push_str("# Banking-trojan servers: C2 gates, config URLs, loaders, drops, ATS panels, script hosts.\n");
    h.push_str(&format!(
        "# {} | producer: {} | entries: {entries} | data as of: {}\n",
        opts.tlp.misp_tag().to_ascii_uppercase(),
        opts.producer.replace(['\n', '\r'], " "),
        as_of.map_or_else(|| "-".to_string(), |t| format!("{} UTC", utc(t)))
    ));
    let by_reason = intel.suppressed_by_reason();
    if by_reason.is_empty() {
        h.push_str("# suppressed by the allow-list: 0\n");
    } else {
        let parts: Vec<String> = by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
        h.push_str(&format!(
            "# suppressed by the allow-list: {} ({})\n",
            intel.suppressed.len(),
            parts.join(", ")
        ));
    }
    h
}

/// The CSV blocklist. See the module docs for the columns.
pub fn csv(intel: &Intel, opts: &ExportOptions) -> String {
    let mut out = header(intel, opts, "blocklist (CSV)", intel.servers.len());
    out.push_str(&CSV_COLUMNS.join(","));
    out.push('\n');
    for s in &intel.servers {
        let ip = match &s.host {
            HostKind::Ipv4(ip) | HostKind::Ipv6(ip) => ip.as_str(),
            HostKind::Domain(_) => "",
        };
        let families: BTreeSet<String> = s
            .botnets
            .iter()
            .filter_map(|b| b.family.as_deref().map(family_display))
            .collect();
        let botnets: BTreeSet<&str> = s
            .botnets
            .iter()
            .filter_map(|b| b.botnet.as_deref())
            .collect();
        let status = if s.counts.records > 0 {
            "receiving_data"
        } else {
            "referenced"
        };
        let fields = [
            utc(s.first_seen),
            s.url.clone(),
            s.host.value().to_string(),
            ip.to_string(),
            s.role.as_str().to_string(),
            families.into_iter().collect::<Vec<_>>().join(";"),
            botnets.into_iter().collect::<Vec<_>>().join(";"),
            utc(s.modified()),
            status.to_string(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// A plain-text list: `#` header lines, then one URL, domain or address per line, sorted and
/// without duplicates. A URL with a line break in it (attacker-written) is left out: it cannot
/// be one line.
pub fn plain(intel: &Intel, opts: &ExportOptions, kind: ListKind) -> String {
    let values: BTreeSet<&str> = intel
        .servers
        .iter()
        .filter_map(|s| match (kind, &s.host) {
            (ListKind::Url, _) => Some(s.url.as_str()),
            (ListKind::Domain, HostKind::Domain(d)) => Some(d.as_str()),
            (ListKind::Ip, HostKind::Ipv4(ip) | HostKind::Ipv6(ip)) => Some(ip.as_str()),
            _ => None,
        })
        .filter(|v| !v.contains(['\n', '\r']) && !v.is_empty())
        .collect();
    let mut out = header(
        intel,
        opts,
        &format!("blocklist ({})", kind.words()),
        values.len(),
    );
    for v in values {
        out.push_str(v);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("http://a.example/x"), "http://a.example/x");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }
}
