//! Item decoding: from a verified [`Storage`] to a [`Config`].
//!
//! Format facts (`configs.md` §1.4, §1.5, §2.2; `webinjects.md` §1.2):
//! * Ids: 20001 version (u32; `09 08 00 02` = 0x02000809 = 2.0.8.9, a.b.c.d = bytes 3..0),
//!   20002 loader URL, 20003 C2 gate URL (strings, no NUL), 20004 backup config URLs,
//!   20005 WebFilters (multi-strings: NUL-terminated strings, then an extra NUL), 20006
//!   WebDataFilters (pairs of url mask and `;`-separated variable names), 20007 the inject
//!   header list, and items `1..N` flagged `ITEMF_IS_HTTP_INJECT` holding inject #k's blocks.
//!   Ids from 20009 on are variant-specific and only named, never decoded, here.
//! * ZeuS inject header: 8 WORDs `flags, size, urlMask, fakeUrl, postDataBlackMask,
//!   postDataWhiteMask, blockOnUrl, contextMask`; `size` covers the whole record, the others are
//!   byte offsets from the record start to NUL-terminated strings, 0 = absent. Flags:
//!   IS_FAKE 0x1, IS_MIRRORFAKE 0x2, IS_INJECT 0x4, IS_CAPTURE 0x8 (L), ONCE_PER_DAY 0x10 (D),
//!   POST 0x20 (P), GET 0x40 (G), NOTPARSE 0x100 (H), TOFILE 0x200 (F), URL_CI 0x1000 (I),
//!   CONTEXT_CI 0x2000 (C).
//! * Citadel inject header: 6 WORDs `flags, size, urlMask, postDataBlackMask, postDataWhiteMask,
//!   contextMask`; flags IS_INJECT 0x1, IS_CAPTURE 0x2, POST 0x4, GET 0x8, ONCE_PER_DAY 0x10,
//!   NOTPARSE 0x100, TOFILE 0x200, URL_CI 0x1000, CONTEXT_CI 0x2000.
//! * Block item of record #k (1-based over all records, fakes included; fakes have none):
//!   `{WORD size (incl. this 4-byte header), WORD flags}` + bytes, repeated, in triplets
//!   ordered before, **after**, inject.

use std::collections::HashMap;

use dropwatch_model::{Inject, InjectBlock, InjectFormat, MaskKind};

use crate::binstorage::{item_flags, Item, Storage};
use crate::diag::{Diagnostic, Diagnostics};
use crate::types::{
    Config, Family, ItemSummary, Keys, StorageSummary, Variant, WebDataFilter, WebFilter,
};

pub const CFGID_LAST_VERSION: u32 = 20001;
pub const CFGID_LAST_VERSION_URL: u32 = 20002;
pub const CFGID_URL_SERVER_0: u32 = 20003;
pub const CFGID_URL_ADV_SERVERS: u32 = 20004;
pub const CFGID_HTTP_FILTER: u32 = 20005;
pub const CFGID_HTTP_POSTDATA_FILTER: u32 = 20006;
pub const CFGID_HTTP_INJECTS_LIST: u32 = 20007;
pub const CFGID_DNS_LIST: u32 = 20008;
/// Citadel `CFGID_WEBINJECTS_URL`: injects fetched from a URL.
pub const CITADEL_CFGID_WEBINJECTS_URL: u32 = 20018;

/// At most this many inject records are decoded.
pub const MAX_INJECTS: usize = 65_536;
/// At most this many before/inject/after triplets are decoded over the whole config.
pub const MAX_TRIPLETS: usize = 262_144;
/// Total bytes all items may decompress to.
pub const MAX_TOTAL_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// One inject flag bit and its `set_url` letter.
pub(crate) struct FlagTable {
    pub header_words: usize,
    pub is_fake: u16,
    pub is_mirror_fake: u16,
    pub is_inject: u16,
    /// Letters in output order: G P L H F D I C.
    pub letters: [(char, u16); 8],
}

pub(crate) const ZEUS_FLAGS: FlagTable = FlagTable {
    header_words: 8,
    is_fake: 0x1,
    is_mirror_fake: 0x2,
    is_inject: 0x4,
    letters: [
        ('G', 0x40),
        ('P', 0x20),
        ('L', 0x08),
        ('H', 0x100),
        ('F', 0x200),
        ('D', 0x10),
        ('I', 0x1000),
        ('C', 0x2000),
    ],
};

pub(crate) const CITADEL_FLAGS: FlagTable = FlagTable {
    header_words: 6,
    is_fake: 0,
    is_mirror_fake: 0,
    is_inject: 0x1,
    letters: [
        ('G', 0x08),
        ('P', 0x04),
        ('L', 0x02),
        ('H', 0x100),
        ('F', 0x200),
        ('D', 0x10),
        ('I', 0x1000),
        ('C', 0x2000),
    ],
};

impl FlagTable {
    pub(crate) fn for_family(family: Family) -> &'static FlagTable {
        match family {
            Family::Zeus => &ZEUS_FLAGS,
            Family::Citadel => &CITADEL_FLAGS,
        }
    }

    fn capture_bit(&self) -> u16 {
        self.letters[2].1
    }

    fn known_bits(&self) -> u16 {
        self.letters.iter().fold(
            self.is_fake | self.is_mirror_fake | self.is_inject,
            |acc, (_, b)| acc | b,
        )
    }
}

/// The name of an item id in `variant`, for diagnostics.
pub fn item_name(variant: Variant, id: u32) -> Option<&'static str> {
    let common = match id {
        20001 => Some("CFGID_LAST_VERSION"),
        20002 => Some("CFGID_LAST_VERSION_URL"),
        20003 => Some("CFGID_URL_SERVER_0"),
        20004 => Some("CFGID_URL_ADV_SERVERS"),
        20005 => Some("CFGID_HTTP_FILTER"),
        20006 => Some("CFGID_HTTP_POSTDATA_FILTER"),
        20007 => Some("CFGID_HTTP_INJECTS_LIST"),
        20008 => Some("CFGID_DNS_LIST"),
        _ => None,
    };
    common.or(match variant {
        Variant::Evolution => match id {
            20009 => Some("Z purse"),
            20010 => Some("R purse"),
            20011 => Some("QIWI purse"),
            20012 => Some("YAD purse"),
            20013 => Some("PERF_G"),
            20014 => Some("PERF_E"),
            20015 => Some("LR purse"),
            20016 => Some("RBK purse"),
            20100 => Some("PROCESS_KEY_LOGGER"),
            _ => None,
        },
        Variant::CitadelAes => match id {
            20009 => Some("CFGID_DNS_FILTER"),
            20010 => Some("CFGID_CMD_LIST"),
            20011 => Some("CFGID_HTTP_MAGICURI_LIST"),
            20012 => Some("CFGID_FILESEARCH_KEYWORDS"),
            20013 => Some("CFGID_FILESEARCH_EXCLUDES_NAME"),
            20014 => Some("CFGID_FILESEARCH_EXCLUDES_PATH"),
            20015 => Some("CFGID_KEYLOGGER_PROCESSES"),
            20016 => Some("CFGID_KEYLOGGER_TIME"),
            20017 => Some("CFGID_FILESEARCH_MINYEAR"),
            20018 => Some("CFGID_WEBINJECTS_URL"),
            20019 => Some("CFGID_TOKENSPY_URL"),
            20020 => Some("CFGID_HTTPVIP_URLS"),
            20033 => Some("CFGID_FILEGATE_URL"),
            _ => None,
        },
        Variant::Zeus2 | Variant::IceIx => None,
    })
}

/// Formats a `MAKE_VERSION` u32: a.b.c.d = bytes 3..0.
pub fn format_version(v: u32) -> String {
    let b = v.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

/// Decodes the items of a verified storage. Item-level problems become diagnostics.
pub fn decode(storage: &Storage, variant: Variant, keys: Keys) -> Config {
    let family = variant.family();
    let mut d = Diagnostics::default();
    d.extend(storage.diagnostics.iter().cloned());
    let mut cfg = Config::empty(variant);
    cfg.keys = keys;
    cfg.storage = StorageSummary {
        random_prefix: hex::encode(&storage.header.random_prefix),
        size: storage.header.size,
        flags: storage.header.flags,
        count: storage.header.count,
        md5: hex::encode(storage.header.md5),
        items: storage
            .items
            .iter()
            .map(|i| ItemSummary {
                id: i.id,
                flags: i.flags,
                offset: i.offset,
                size: i.payload.len() as u32,
                real_size: i.real_size,
                compressed: i.is_compressed(),
            })
            .collect(),
    };

    let mut budget = MAX_TOTAL_DECOMPRESSED;
    let mut seen_options: HashMap<u32, usize> = HashMap::new();
    let mut block_items: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut inject_list: Option<(Vec<u8>, usize)> = None;

    for item in &storage.items {
        let is = item.flags & item_flags::IS_MASK;
        if is == item_flags::IS_HTTP_INJECT {
            if block_items.contains_key(&item.id) {
                d.push(
                    Diagnostic::at(
                        "duplicate_item",
                        item.offset,
                        "a second block list for this inject is ignored (the bot reads the first)",
                    )
                    .item(item.id),
                );
                continue;
            }
            if let Some(data) = item_data(item, &mut budget, &mut d) {
                block_items.insert(item.id, data);
            }
            continue;
        }
        if is != item_flags::IS_OPTION {
            d.push(
                Diagnostic::at(
                    "item_not_option",
                    item.offset,
                    format!(
                        "item flags 0x{:08x} lack ITEMF_IS_OPTION; decoded anyway",
                        item.flags
                    ),
                )
                .item(item.id),
            );
        }
        if let Some(first) = seen_options.insert(item.id, item.offset) {
            d.push(
                Diagnostic::at(
                    "duplicate_item",
                    item.offset,
                    format!("ignored: the bot reads the first one, at offset {first}"),
                )
                .item(item.id),
            );
            seen_options.insert(item.id, first);
            continue;
        }
        let known = matches!(
            item.id,
            CFGID_LAST_VERSION
                | CFGID_LAST_VERSION_URL
                | CFGID_URL_SERVER_0
                | CFGID_URL_ADV_SERVERS
                | CFGID_HTTP_FILTER
                | CFGID_HTTP_POSTDATA_FILTER
                | CFGID_HTTP_INJECTS_LIST
        ) || (family == Family::Citadel && item.id == CITADEL_CFGID_WEBINJECTS_URL);
        if !known {
            let name = item_name(variant, item.id)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            d.push(
                Diagnostic::at(
                    "unknown_item",
                    item.offset,
                    format!(
                        "item {}{name} of {} bytes not decoded",
                        item.id,
                        item.payload.len()
                    ),
                )
                .item(item.id)
                .size(item.payload.len() as u32),
            );
            continue;
        }
        let Some(data) = item_data(item, &mut budget, &mut d) else {
            continue;
        };
        match item.id {
            CFGID_LAST_VERSION => match <[u8; 4]>::try_from(data.as_slice()) {
                Ok(b) => cfg.version = Some(format_version(u32::from_le_bytes(b))),
                Err(_) => d.push(
                    Diagnostic::at(
                        "bad_version",
                        item.offset,
                        format!("version is {} bytes, expected 4", data.len()),
                    )
                    .item(item.id),
                ),
            },
            CFGID_LAST_VERSION_URL => cfg.loader_url = Some(text(&data, item, &mut d)),
            CFGID_URL_SERVER_0 => cfg.c2_urls.push(text(&data, item, &mut d)),
            CITADEL_CFGID_WEBINJECTS_URL => cfg.config_urls.push(text(&data, item, &mut d)),
            CFGID_URL_ADV_SERVERS => cfg.config_urls.extend(multi_string(&data, item, &mut d)),
            CFGID_HTTP_FILTER => {
                cfg.webfilters = multi_string(&data, item, &mut d)
                    .iter()
                    .map(|f| WebFilter::parse(f, family))
                    .collect()
            }
            CFGID_HTTP_POSTDATA_FILTER => {
                let strings = multi_string(&data, item, &mut d);
                if strings.len() % 2 != 0 {
                    d.push(Diagnostic::at("odd_pairs", item.offset, format!("{} strings do not make (url, variables) pairs; the last is dropped", strings.len())).item(item.id));
                }
                cfg.webdata_filters = strings
                    .chunks_exact(2)
                    .map(|p| WebDataFilter {
                        url_mask: p[0].clone(),
                        variables: split_variables(&p[1]),
                    })
                    .collect();
            }
            CFGID_HTTP_INJECTS_LIST => inject_list = Some((data, item.offset)),
            _ => {}
        }
    }

    if let Some((data, offset)) = inject_list {
        cfg.injects = decode_injects(&data, offset, family, &mut block_items, &mut d);
    }
    let mut orphans: Vec<u32> = block_items.keys().copied().collect();
    orphans.sort_unstable();
    for id in orphans {
        d.push(
            Diagnostic::new(
                "orphan_blocks",
                format!("block list {id} belongs to no inject record"),
            )
            .item(id),
        );
    }
    cfg.diagnostics = d.into_vec();
    cfg
}

pub(crate) fn split_variables(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(';').map(str::to_string).collect()
    }
}

/// An item's data within the whole-config decompression budget.
fn item_data(item: &Item, budget: &mut usize, d: &mut Diagnostics) -> Option<Vec<u8>> {
    if item.is_compressed() {
        let real = item.real_size as usize;
        if real > *budget {
            d.push(
                Diagnostic::at(
                    "decompress_budget",
                    item.offset,
                    format!(
                        "real size {real} exceeds the remaining budget of {} bytes",
                        *budget
                    ),
                )
                .item(item.id),
            );
            return None;
        }
        *budget -= real;
    }
    match item.data() {
        Ok(data) => Some(data.into_owned()),
        Err(e) => {
            d.push(Diagnostic::at("item_data", item.offset, e.to_string()).item(item.id));
            None
        }
    }
}

/// A string item: UTF-8 with no NUL; trailing NULs are tolerated, invalid UTF-8 is replaced.
fn text(data: &[u8], item: &Item, d: &mut Diagnostics) -> String {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    lossy(&data[..end], item.offset, item.id, d)
}

fn lossy(bytes: &[u8], offset: usize, id: u32, d: &mut Diagnostics) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            d.push(
                Diagnostic::at(
                    "not_utf8",
                    offset,
                    "string is not UTF-8; invalid bytes replaced",
                )
                .item(id),
            );
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

/// A multi-string: NUL-terminated strings ended by an empty one.
fn multi_string(data: &[u8], item: &Item, d: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = data[pos..].iter().position(|&b| b == 0).map(|p| pos + p);
        let Some(end) = end else {
            d.push(
                Diagnostic::at(
                    "unterminated_string",
                    item.offset,
                    format!("string at data offset {pos} has no NUL; kept"),
                )
                .item(item.id),
            );
            out.push(lossy(&data[pos..], item.offset, item.id, d));
            return out;
        };
        if end == pos {
            if end + 1 < data.len() {
                d.push(
                    Diagnostic::at(
                        "trailing_bytes",
                        item.offset,
                        format!(
                            "{} bytes after the list's end ignored",
                            data.len() - end - 1
                        ),
                    )
                    .item(item.id),
                );
            }
            return out;
        }
        out.push(lossy(&data[pos..end], item.offset, item.id, d));
        pos = end + 1;
    }
    if !out.is_empty() {
        d.push(
            Diagnostic::at(
                "unterminated_list",
                item.offset,
                "list lacks its final empty string",
            )
            .item(item.id),
        );
    }
    out
}

fn word(data: &[u8], at: usize) -> u16 {
    match data.get(at..).and_then(|r| r.first_chunk::<2>()) {
        Some(b) => u16::from_le_bytes(*b),
        None => 0,
    }
}

/// The inject records of item 20007, with their block lists attached (taken out of `blocks`).
fn decode_injects(
    data: &[u8],
    item_offset: usize,
    family: Family,
    blocks: &mut HashMap<u32, Vec<u8>>,
    d: &mut Diagnostics,
) -> Vec<Inject> {
    let table = FlagTable::for_family(family);
    let hdr_len = table.header_words * 2;
    let list_id = CFGID_HTTP_INJECTS_LIST;
    let mut out = Vec::new();
    let mut triplets = 0usize;
    let mut off = 0usize;
    let mut index: u32 = 0;
    while off < data.len() {
        let diag_at =
            |code: &str, msg: String| Diagnostic::at(code, item_offset, msg).item(list_id);
        if data.len() - off < hdr_len {
            d.push(diag_at("inject_truncated", format!("{} bytes at data offset {off} are too short for a {hdr_len}-byte inject header", data.len() - off)));
            break;
        }
        if out.len() >= MAX_INJECTS {
            d.push(diag_at(
                "too_many_injects",
                format!("more than {MAX_INJECTS} inject records; the rest ignored"),
            ));
            break;
        }
        let flags = word(data, off);
        let size = usize::from(word(data, off + 2));
        if size < hdr_len || size > data.len() - off {
            d.push(diag_at(
                "inject_size",
                format!(
                    "inject record at data offset {off} has size {size}, outside [{hdr_len}, {}]",
                    data.len() - off
                ),
            ));
            break;
        }
        index += 1;
        let rec = &data[off..off + size];
        let field = |n: usize| word(rec, n * 2);
        let mut string = |n: usize, name: &str| -> Option<String> {
            let at = usize::from(field(n));
            if at == 0 {
                return None;
            }
            if at < hdr_len || at >= size {
                d.push(diag_at(
                    "inject_string",
                    format!(
                        "inject #{index} {name} offset {at} outside its record [{hdr_len}, {size})"
                    ),
                ));
                return None;
            }
            let s = &rec[at..];
            let end = s.iter().position(|&b| b == 0).unwrap_or_else(|| {
                d.push(diag_at(
                    "inject_string",
                    format!("inject #{index} {name} at record offset {at} has no NUL"),
                ));
                s.len()
            });
            Some(lossy(&s[..end], item_offset, list_id, d))
        };
        let (url_mask, fake_url, post_black, post_white, url_block, context) =
            if table.header_words == 8 {
                (
                    string(2, "url mask"),
                    string(3, "fake url"),
                    string(4, "post blacklist"),
                    string(5, "post whitelist"),
                    string(6, "block url"),
                    string(7, "context mask"),
                )
            } else {
                (
                    string(2, "url mask"),
                    None,
                    string(3, "post blacklist"),
                    string(4, "post whitelist"),
                    None,
                    string(5, "context mask"),
                )
            };

        let mut letters = String::new();
        let is_fake = flags & (table.is_fake | table.is_mirror_fake) != 0;
        for (c, bit) in table.letters {
            if flags & bit != 0 {
                letters.push(c);
            }
        }
        let mut attributes = Vec::new();
        let mut endpoints = Vec::new();
        if is_fake {
            if flags & table.is_mirror_fake != 0 {
                letters.push('S');
            }
            attributes.push((
                "fake".to_string(),
                if flags & table.is_mirror_fake != 0 {
                    "mirror"
                } else {
                    "redirect"
                }
                .to_string(),
            ));
            if let Some(u) = &fake_url {
                attributes.push(("fake_url".to_string(), u.clone()));
                endpoints.push(u.clone());
            }
        } else if (flags & table.is_inject != 0) == (flags & table.capture_bit() != 0) {
            d.push(diag_at("inject_flags", format!("inject #{index} flags 0x{flags:04x}: exactly one of IS_INJECT and IS_CAPTURE (L) expected")));
        }
        let unknown = flags & !table.known_bits();
        if unknown != 0 {
            attributes.push(("unknown_flags".to_string(), format!("0x{unknown:04x}")));
            d.push(diag_at(
                "inject_flags",
                format!("inject #{index} has unknown flag bits 0x{unknown:04x}"),
            ));
        }
        if url_mask.is_none() {
            d.push(diag_at(
                "inject_string",
                format!("inject #{index} has no url mask"),
            ));
        }

        let mut inj_blocks = Vec::new();
        match blocks.remove(&index) {
            Some(list) if is_fake => {
                d.push(
                    Diagnostic::new(
                        "fake_with_blocks",
                        format!(
                            "fake #{index} has a block list of {} bytes; ignored",
                            list.len()
                        ),
                    )
                    .item(index),
                );
            }
            Some(list) => {
                inj_blocks = decode_blocks(&list, index, MAX_TRIPLETS - triplets, d);
                triplets += inj_blocks.len();
            }
            None if !is_fake => d.push(
                Diagnostic::new(
                    "missing_blocks",
                    format!("inject #{index} has no block list item"),
                )
                .item(index),
            ),
            None => {}
        }

        out.push(Inject {
            format: if family == Family::Citadel {
                InjectFormat::CitadelBinary
            } else {
                InjectFormat::ZeusBinary
            },
            url_mask: url_mask.unwrap_or_default(),
            mask_kind: MaskKind::ZeusGlob,
            flags: letters,
            post_blacklist: post_black,
            post_whitelist: post_white,
            url_block,
            matched_context: context,
            blocks: inj_blocks,
            endpoints,
            attributes,
            line: None,
        });
        off += size;
    }
    out
}

/// A block list: `{WORD size, WORD flags}` + bytes, grouped in triplets before, after, inject.
fn decode_blocks(
    data: &[u8],
    id: u32,
    max_triplets: usize,
    d: &mut Diagnostics,
) -> Vec<InjectBlock> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut off = 0;
    while off < data.len() {
        if data.len() - off < 4 {
            d.push(
                Diagnostic::new(
                    "block_truncated",
                    format!(
                        "{} bytes at data offset {off} are too short for a block header",
                        data.len() - off
                    ),
                )
                .item(id),
            );
            break;
        }
        let size = usize::from(word(data, off));
        if size < 4 || size > data.len() - off {
            d.push(
                Diagnostic::new(
                    "block_size",
                    format!(
                        "block at data offset {off} has size {size}, outside [4, {}]",
                        data.len() - off
                    ),
                )
                .item(id),
            );
            break;
        }
        parts.push(&data[off + 4..off + size]);
        off += size;
    }
    if parts.len() % 3 != 0 {
        d.push(
            Diagnostic::new(
                "block_triplet",
                format!(
                    "{} blocks do not make before/after/inject triplets; the last {} dropped",
                    parts.len(),
                    parts.len() % 3
                ),
            )
            .item(id),
        );
    }
    let total = parts.len() / 3;
    if total > max_triplets {
        d.push(
            Diagnostic::new(
                "too_many_blocks",
                format!("over {MAX_TRIPLETS} triplets in the config; the rest ignored"),
            )
            .item(id),
        );
    }
    parts
        .chunks_exact(3)
        .take(max_triplets)
        .map(|t| InjectBlock {
            before: t[0].to_vec(),
            after: t[1].to_vec(),
            inject: t[2].to_vec(),
        })
        .collect()
}
