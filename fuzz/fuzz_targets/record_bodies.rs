//! Record bodies: the input as the POST body of a ZeuS form grab and as the data of a
//! webinject capture (type 201), read as JSON, `multipart/form-data` or URL-encoded, then
//! analysed.
//!
//! Beyond "no panic": the field count stays capped, and no value of a field named like a
//! secret appears in the analysed record (it is kept only as kind, length and HMAC), unless
//! the same text is also a field name, the URL, the bot id or the account, which the record keeps.
#![no_main]

use dropwatch_masks::InstitutionIndex;
use dropwatch_model::{classify_field_name, Institution, PanelReport};
use dropwatch_records::{parse_context, RecordAnalyzer, SecretKey, MAX_BODY_FIELDS};
use libfuzzer_sys::fuzz_target;

const URL: &str = "https://ib.a-bank.example/login.do";

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let analyzer = RecordAnalyzer::new(
        InstitutionIndex::new(vec![Institution {
            id: "jp-a".into(),
            name: "A Bank".into(),
            country: "JP".into(),
            domains: vec!["a-bank.example".into()],
            url_masks: vec![],
            account_fields: vec!["kouza_no".into()],
        }]),
        SecretKey::from_bytes([2; 32]),
    );
    for context in [
        format!("{URL}\nReferer: https://ib.a-bank.example/\nUser input: \nPOST data:\n\n{body}"),
        format!("Grabbed data from: {URL}\n\n{body}"),
    ] {
        let parsed = parse_context(&context);
        assert!(parsed.fields.len() <= MAX_BODY_FIELDS + 2);
        let report = PanelReport {
            id: 1,
            bot_id: "FUZZ_BOT".into(),
            botnet: String::new(),
            report_type: 12,
            path_source: URL.into(),
            context,
            ipv4: String::new(),
            country: String::new(),
            rtime: 0,
        };
        let record = analyzer.analyze(&report);
        // Every text the record keeps; hashes (fingerprint, HMACs) are keyed and excluded.
        let mut kept: Vec<&str> = vec![&record.bot_id, &record.botnet, &record.url];
        kept.extend(record.external_id.as_deref());
        kept.extend(record.institution_id.as_deref());
        kept.extend(record.account_norm.as_deref());
        kept.extend(record.secrets.iter().map(|s| s.field.as_str()));
        kept.extend(record.other_fields.iter().map(String::as_str));
        for (name, value) in &parsed.fields {
            if classify_field_name(name).is_none() || value.len() < 4 {
                continue;
            }
            // The same text may legitimately be kept as something public.
            let public = parsed
                .fields
                .iter()
                .any(|(n, _)| n.contains(value.as_str()))
                || URL
                    .to_ascii_lowercase()
                    .contains(&value.to_ascii_lowercase())
                || "FUZZ_BOT".contains(value.as_str())
                || record.account.as_deref().is_some_and(|a| {
                    a.contains(value.as_str())
                        || dropwatch_records::normalize_account(a)
                            .contains(&dropwatch_records::normalize_account(value))
                });
            if public {
                continue;
            }
            assert!(
                !kept.iter().any(|k| k.contains(value.as_str())),
                "a secret field's value is kept in clear"
            );
        }
    }
});
