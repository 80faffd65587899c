//! A read-only view of an unpacked 32-bit PE image: headers, sections, and virtual addresses
//! mapped to file bytes. Nothing is ever loaded, relocated or executed.
//!
//! Format facts (`configs.md` §1.7): the ZeuS 2.x / Citadel client is a PE32 (x86) image; its
//! base config sits at an absolute VA in a section's raw data, and its XOR key is the in-memory
//! content of section index 2 (0-based), whose bytes past `SizeOfRawData` are zero when loaded.
//! Headers are parsed with the `object` crate; the checks this module adds first (MZ, `PE\0\0`,
//! machine and optional-header magic) exist so that a refusal names the exact check.

use object::pe::{ImageDosHeader, ImageNtHeaders32};
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader};
use object::LittleEndian as LE;

/// Images larger than this are refused before parsing (unpacked ZeuS-family clients are
/// 100–500 KiB; a process dump of one module stays far below).
pub const MAX_IMAGE_LEN: usize = 64 * 1024 * 1024;
/// The PE format allows at most 96 sections.
pub const MAX_SECTIONS: usize = 96;

const DOS_HEADER_LEN: usize = 64;
const E_LFANEW_OFFSET: usize = 0x3C;
/// `IMAGE_FILE_MACHINE_I386`.
const MACHINE_I386: u16 = 0x014C;
const OPTIONAL_MAGIC_PE32: u16 = 0x10B;
const OPTIONAL_MAGIC_PE32_PLUS: u16 = 0x20B;
/// `IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE`.
const SCN_CODE_OR_EXECUTE: u32 = 0x0000_0020 | 0x2000_0000;

/// Why bytes are not a PE32 image this crate can read. Each names the check and its offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeError {
    #[error("no PE header: {len} bytes is shorter than the {DOS_HEADER_LEN}-byte DOS header")]
    TooShort { len: usize },
    #[error("no PE header: no MZ signature at offset 0")]
    NoMz,
    #[error(
        "no PE header: e_lfanew 0x{e_lfanew:x} (at offset 0x3c) points past the {len}-byte file"
    )]
    BadLfanew { e_lfanew: u32, len: usize },
    #[error("no PE header: no PE\\0\\0 signature at offset 0x{offset:x}")]
    NoPeSignature { offset: usize },
    #[error(
        "not a PE32 x86 image: machine 0x{machine:04x} at offset 0x{offset:x} (expected 0x014c)"
    )]
    Machine { machine: u16, offset: usize },
    #[error("not a PE32 image: optional header magic 0x{magic:04x} at offset 0x{offset:x} (expected 0x010b{})", if *.magic == OPTIONAL_MAGIC_PE32_PLUS { "; PE32+ is 64-bit" } else { "" })]
    OptionalMagic { magic: u16, offset: usize },
    #[error("malformed PE header at offset 0x{offset:x}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("section count check failed: {count} sections (at most {MAX_SECTIONS})")]
    TooManySections { count: usize },
    #[error("length check failed: {len} bytes is over the {MAX_IMAGE_LEN}-byte image limit")]
    TooLarge { len: usize },
}

/// One section header, with its raw data range clamped to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// 0-based index in the section table.
    pub index: usize,
    /// The 8-byte name, NULs trimmed, lossily decoded, `\n`, quotes and non-ASCII escaped
    /// (`char::escape_default`).
    pub name: String,
    pub virtual_address: u32,
    pub virtual_size: u32,
    /// File offset of the raw data.
    pub raw_offset: usize,
    /// Raw data length present in the file (`SizeOfRawData`, clamped to the file's end).
    pub raw_len: usize,
    pub characteristics: u32,
}

impl Section {
    /// Whether the section holds code or is executable.
    pub fn is_code(&self) -> bool {
        self.characteristics & SCN_CODE_OR_EXECUTE != 0
    }

    /// The loaded length: `VirtualSize`, or `SizeOfRawData` when a linker left it 0.
    fn mem_len(&self) -> u64 {
        if self.virtual_size == 0 {
            self.raw_len as u64
        } else {
            u64::from(self.virtual_size)
        }
    }
}

/// A parsed PE32 image over borrowed bytes.
#[derive(Debug, Clone)]
pub struct PeImage<'a> {
    data: &'a [u8],
    image_base: u32,
    entry_point: u32,
    sections: Vec<Section>,
}

impl<'a> PeImage<'a> {
    /// Parses the DOS, NT and section headers of a PE32 (x86) image.
    pub fn parse(data: &'a [u8]) -> Result<PeImage<'a>, PeError> {
        if data.len() > MAX_IMAGE_LEN {
            return Err(PeError::TooLarge { len: data.len() });
        }
        if data.len() < DOS_HEADER_LEN {
            return Err(PeError::TooShort { len: data.len() });
        }
        if !data.starts_with(b"MZ") {
            return Err(PeError::NoMz);
        }
        let e_lfanew = le32(data, E_LFANEW_OFFSET).unwrap_or(u32::MAX);
        let nt = e_lfanew as usize;
        // Signature (4) + file header (20) + optional-header magic (2).
        let Some(magic_at) = nt.checked_add(24).filter(|&m| m + 2 <= data.len()) else {
            return Err(PeError::BadLfanew {
                e_lfanew,
                len: data.len(),
            });
        };
        if data.get(nt..nt + 4) != Some(b"PE\0\0".as_slice()) {
            return Err(PeError::NoPeSignature { offset: nt });
        }
        let machine = le16(data, nt + 4).unwrap_or(0);
        if machine != MACHINE_I386 {
            return Err(PeError::Machine {
                machine,
                offset: nt + 4,
            });
        }
        let magic = le16(data, magic_at).unwrap_or(0);
        if magic != OPTIONAL_MAGIC_PE32 {
            return Err(PeError::OptionalMagic {
                magic,
                offset: magic_at,
            });
        }

        let dos = ImageDosHeader::parse(data).map_err(|e| PeError::Malformed {
            offset: 0,
            what: e.to_string(),
        })?;
        let mut offset = u64::from(dos.nt_headers_offset());
        let (nt_headers, _dirs) =
            ImageNtHeaders32::parse(data, &mut offset).map_err(|e| PeError::Malformed {
                offset: nt,
                what: e.to_string(),
            })?;
        let count = usize::from(nt_headers.file_header().number_of_sections.get(LE));
        if count > MAX_SECTIONS {
            return Err(PeError::TooManySections { count });
        }
        let table = nt_headers
            .sections(data, offset)
            .map_err(|e| PeError::Malformed {
                offset: usize::try_from(offset).unwrap_or(usize::MAX),
                what: e.to_string(),
            })?;
        let sections = table
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let raw_offset = s.pointer_to_raw_data.get(LE) as usize;
                let raw_size = s.size_of_raw_data.get(LE) as usize;
                let raw_len = if raw_offset >= data.len() {
                    0
                } else {
                    raw_size.min(data.len() - raw_offset)
                };
                let name = s.raw_name();
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                Section {
                    index,
                    // Printable for one-line messages: control characters are escaped.
                    name: String::from_utf8_lossy(&name[..end])
                        .chars()
                        .flat_map(char::escape_default)
                        .collect(),
                    virtual_address: s.virtual_address.get(LE),
                    virtual_size: s.virtual_size.get(LE),
                    raw_offset,
                    raw_len,
                    characteristics: s.characteristics.get(LE).0,
                }
            })
            .collect();
        let opt = nt_headers.optional_header();
        Ok(PeImage {
            data,
            // PE32: the image base is a u32 field.
            image_base: u32::try_from(opt.image_base()).unwrap_or(u32::MAX),
            entry_point: opt.address_of_entry_point(),
            sections,
        })
    }

    /// The whole file.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn image_base(&self) -> u32 {
        self.image_base
    }

    /// `AddressOfEntryPoint` (an RVA).
    pub fn entry_point(&self) -> u32 {
        self.entry_point
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The section whose loaded range holds the RVA.
    pub fn section_of_rva(&self, rva: u32) -> Option<&Section> {
        self.sections.iter().find(|s| {
            rva.checked_sub(s.virtual_address)
                .is_some_and(|off| u64::from(off) < s.mem_len())
        })
    }

    /// The file bytes of `len` bytes at absolute virtual address `va`, when they all lie in one
    /// section's raw data (bytes past the raw data exist only in memory, as zeros).
    pub fn read_va(&self, va: u32, len: usize) -> Option<(&'a [u8], usize, &Section)> {
        let rva = va.checked_sub(self.image_base)?;
        let s = self.section_of_rva(rva)?;
        let within = (rva - s.virtual_address) as usize;
        let end = within.checked_add(len)?;
        if end > s.raw_len {
            return None;
        }
        let start = s.raw_offset.checked_add(within)?;
        let bytes = self.data.get(start..start.checked_add(len)?)?;
        Some((bytes, start, s))
    }

    /// The first `len` bytes of a section as loaded: its raw data, then zeros.
    pub fn section_memory(&self, index: usize, len: usize) -> Option<Vec<u8>> {
        let s = self.sections.get(index)?;
        let raw = self
            .data
            .get(s.raw_offset..s.raw_offset + s.raw_len)
            .unwrap_or(&[]);
        let mut out = vec![0u8; len];
        let n = raw.len().min(len);
        out[..n].copy_from_slice(&raw[..n]);
        Some(out)
    }
}

pub(crate) fn le32(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..)?
        .first_chunk::<4>()
        .map(|b| u32::from_le_bytes(*b))
}

pub(crate) fn le16(buf: &[u8], at: usize) -> Option<u16> {
    buf.get(at..)?
        .first_chunk::<2>()
        .map(|b| u16::from_le_bytes(*b))
}
