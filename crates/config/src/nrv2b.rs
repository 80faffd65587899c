//! UCL NRV2B, little-endian 32-bit bit-buffer variant (`ucl_nrv2b_decompress_le32`).
//!
//! Written from the algorithm as `configs.md` §1.3 gives it (the ZeuS kit's `_DecompressNRV2B`
//! matches Debian `libucl1`):
//! * Bits come MSB first out of 32-bit little-endian words that are read from the input when
//!   the previous word is used up; literal bytes and offset low bytes are read from the same
//!   input between words.
//! * `1` bits each announce a literal byte. Then an Elias-gamma-like offset code (start 1,
//!   `m = 2m + bit` while the next bit is 0): 2 means "the previous offset", otherwise
//!   `m_off = (m - 3) * 256 + byte`, where `0xFFFFFFFF` ends the stream, else `m_off + 1` is the
//!   distance back. Then 2 length bits; 0 means a gamma-coded length plus 2. Distances above
//!   0xD00 add 1 to the length; `m_len + 1` bytes are copied, byte by byte (overlap allowed).
//! * Safe-variant checks: offset code above `0xFFFFFF + 3`, a distance beyond what is already
//!   produced, input or output overrun; success requires the whole input consumed and exactly
//!   the announced output length.
//!
//! The decoder never allocates more than the `expected_len` the caller passes (the item's
//! `realSize`, itself capped by the container) and never panics.
//!
//! The encoder ([`compress`], [`compress_literals`]) exists to make test data: a greedy
//! matcher over a short window, not the UCL compressor.

/// Largest offset code the safe decoder accepts (`0xFFFFFF + 3`); the end marker is exactly it.
const MAX_OFFSET_CODE: u32 = 0x00FF_FFFF + 3;
/// Distances above this cost one more length unit.
const FAR_DISTANCE: u32 = 0xD00;

/// Why an NRV2B stream was refused. `offset` is the input position where the check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Nrv2bError {
    #[error("nrv2b input overrun at offset {offset}: the bit stream needs more bytes")]
    InputOverrun { offset: usize },
    #[error("nrv2b output overrun at input offset {offset}: the stream produces more than {limit} bytes")]
    OutputOverrun { offset: usize, limit: usize },
    #[error("nrv2b look-behind overrun at input offset {offset}: distance {distance} but only {produced} bytes produced")]
    LookbehindOverrun {
        offset: usize,
        distance: u32,
        produced: usize,
    },
    #[error("nrv2b offset code too large at input offset {offset}")]
    OffsetCodeTooLarge { offset: usize },
    #[error("nrv2b input not consumed: end marker at offset {offset} of {len}")]
    InputNotConsumed { offset: usize, len: usize },
    #[error("nrv2b output underrun: stream ended after {produced} bytes, expected {expected}")]
    OutputUnderrun { produced: usize, expected: usize },
}

struct BitReader<'a> {
    src: &'a [u8],
    pos: usize,
    bb: u32,
    bc: u32,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Result<u32, Nrv2bError> {
        if self.bc > 0 {
            self.bc -= 1;
            return Ok((self.bb >> self.bc) & 1);
        }
        let word = self
            .src
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<4>())
            .ok_or(Nrv2bError::InputOverrun { offset: self.pos })?;
        self.bb = u32::from_le_bytes(*word);
        self.pos += 4;
        self.bc = 31;
        Ok(self.bb >> 31)
    }

    fn byte(&mut self) -> Result<u8, Nrv2bError> {
        let b = *self
            .src
            .get(self.pos)
            .ok_or(Nrv2bError::InputOverrun { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    /// A gamma code: start at 1, `v = 2v + bit` until a 1 terminator bit; refused above `max`.
    fn gamma(&mut self, max: u32) -> Result<Option<u32>, Nrv2bError> {
        let mut v: u32 = 1;
        loop {
            let bit = self.bit()?;
            v = match v.checked_mul(2).and_then(|d| d.checked_add(bit)) {
                Some(n) => n,
                None => return Ok(None),
            };
            if v > max {
                // Consuming the rest of the code would not change the verdict.
                return Ok(None);
            }
            if self.bit()? == 1 {
                return Ok(Some(v));
            }
        }
    }
}

/// Decompresses an NRV2B le32 stream that must produce exactly `expected_len` bytes.
pub fn decompress(src: &[u8], expected_len: usize) -> Result<Vec<u8>, Nrv2bError> {
    // Grows past 1 MiB only as the stream really produces bytes.
    let mut out: Vec<u8> = Vec::with_capacity(expected_len.min(1 << 20));
    let mut r = BitReader {
        src,
        pos: 0,
        bb: 0,
        bc: 0,
    };
    let mut last_m_off: u32 = 1;
    loop {
        while r.bit()? == 1 {
            let b = r.byte()?;
            if out.len() >= expected_len {
                return Err(Nrv2bError::OutputOverrun {
                    offset: r.pos,
                    limit: expected_len,
                });
            }
            out.push(b);
        }
        let code_at = r.pos;
        let code = match r.gamma(MAX_OFFSET_CODE) {
            Ok(Some(c)) => c,
            Ok(None) => return Err(Nrv2bError::OffsetCodeTooLarge { offset: code_at }),
            Err(e) => return Err(e),
        };
        let m_off = if code == 2 {
            last_m_off
        } else {
            let low = r.byte()?;
            // code >= 3 here; (code - 3) <= 0xFFFFFF so the product fits in u32.
            let raw = (code - 3) * 256 + u32::from(low);
            if raw == u32::MAX {
                break;
            }
            last_m_off = raw + 1;
            last_m_off
        };
        let mut m_len = r.bit()?;
        m_len = m_len * 2 + r.bit()?;
        if m_len == 0 {
            // Any length beyond the output limit is an overrun; stop decoding it there.
            let cap = u32::try_from(expected_len)
                .unwrap_or(u32::MAX)
                .min(u32::MAX - 3);
            m_len = match r.gamma(cap)? {
                Some(v) => v + 2,
                None => {
                    return Err(Nrv2bError::OutputOverrun {
                        offset: r.pos,
                        limit: expected_len,
                    })
                }
            };
        }
        if m_off > FAR_DISTANCE {
            m_len += 1;
        }
        let distance = m_off as usize;
        if distance > out.len() {
            return Err(Nrv2bError::LookbehindOverrun {
                offset: r.pos,
                distance: m_off,
                produced: out.len(),
            });
        }
        let count = (m_len as usize).saturating_add(1);
        if count > expected_len - out.len() {
            return Err(Nrv2bError::OutputOverrun {
                offset: r.pos,
                limit: expected_len,
            });
        }
        // Byte by byte: the source may overlap what this copy writes.
        let from = out.len() - distance;
        for k in from..from + count {
            let b = out[k];
            out.push(b);
        }
    }
    if r.pos != src.len() {
        return Err(Nrv2bError::InputNotConsumed {
            offset: r.pos,
            len: src.len(),
        });
    }
    if out.len() != expected_len {
        return Err(Nrv2bError::OutputUnderrun {
            produced: out.len(),
            expected: expected_len,
        });
    }
    Ok(out)
}

/// Writes bits MSB first into 32-bit little-endian words reserved in the output stream at the
/// moment their first bit is written, so they precede the bytes the decoder reads after them.
struct BitWriter {
    out: Vec<u8>,
    word_at: usize,
    bb: u32,
    bc: u32,
}

impl BitWriter {
    fn bit(&mut self, bit: bool) {
        if self.bc == 0 {
            self.word_at = self.out.len();
            self.out.extend_from_slice(&[0; 4]);
        }
        if bit {
            self.bb |= 1 << (31 - self.bc);
        }
        self.bc += 1;
        if self.bc == 32 {
            self.flush_word();
        }
    }

    fn flush_word(&mut self) {
        self.out[self.word_at..self.word_at + 4].copy_from_slice(&self.bb.to_le_bytes());
        self.bb = 0;
        self.bc = 0;
    }

    fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    /// Gamma code of `v >= 2`: the bits after the leading 1, each followed by "last?".
    fn gamma(&mut self, v: u32) {
        debug_assert!(v >= 2);
        let n = 32 - v.leading_zeros();
        for i in (0..n - 1).rev() {
            self.bit((v >> i) & 1 == 1);
            self.bit(i == 0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        // End marker: offset code 0xFFFFFF + 3 and low byte 0xFF make (code - 3) * 256 + 0xFF = u32::MAX.
        self.bit(false);
        self.gamma(MAX_OFFSET_CODE);
        self.byte(0xFF);
        if self.bc > 0 {
            self.flush_word();
        }
        self.out
    }
}

/// Encodes `data` as literals only: always valid, about 1/8 larger than the input.
pub fn compress_literals(data: &[u8]) -> Vec<u8> {
    let mut w = BitWriter {
        out: Vec::with_capacity(data.len() + data.len() / 8 + 16),
        word_at: 0,
        bb: 0,
        bc: 0,
    };
    for &b in data {
        w.bit(true);
        w.byte(b);
    }
    w.finish()
}

/// Encodes `data` with greedy matches over a 4 KiB window (plus the repeat-offset code), so
/// that test streams exercise every branch of the decoder. Quadratic in the window: test data only.
pub fn compress(data: &[u8]) -> Vec<u8> {
    const WINDOW: usize = 0x1000 + 0x200; // reaches past FAR_DISTANCE
    const MAX_LEN: usize = 0x2000;
    let mut w = BitWriter {
        out: Vec::with_capacity(data.len() + 16),
        word_at: 0,
        bb: 0,
        bc: 0,
    };
    let mut last: usize = 1;
    let mut i = 0;
    while i < data.len() {
        let mut best = (0usize, 0usize); // (length, distance)
        let start = i.saturating_sub(WINDOW);
        for cand in (start..i).rev() {
            let d = i - cand;
            let mut l = 0;
            while i + l < data.len() && l < MAX_LEN && data[cand + l] == data[i + l] {
                l += 1;
            }
            let min = if d as u32 > FAR_DISTANCE { 3 } else { 2 };
            // Prefer the previous distance on ties: it is cheaper to encode.
            if l >= min && (l > best.0 || (l == best.0 && d == last)) {
                best = (l, d);
            }
        }
        let (len, dist) = best;
        if len == 0 {
            w.bit(true);
            w.byte(data[i]);
            i += 1;
            continue;
        }
        w.bit(false);
        if dist == last {
            w.gamma(2);
        } else {
            let raw = (dist - 1) as u32;
            w.gamma((raw >> 8) + 3);
            w.byte((raw & 0xFF) as u8);
            last = dist;
        }
        let far = u32::from(dist as u32 > FAR_DISTANCE);
        let code = len as u32 - 1 - far;
        if (1..=3).contains(&code) {
            w.bit(code & 2 != 0);
            w.bit(code & 1 != 0);
        } else {
            w.bit(false);
            w.bit(false);
            w.gamma(code - 2);
        }
        i += len;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A stream assembled by hand from the format description: literal 'a', a match at
    /// distance 1 copying 3 bytes, the end marker.
    #[test]
    fn hand_assembled_stream_decodes() {
        // bit sequence: literal flag 1; match flag 0; offset gamma 3 = data bit 1, stop 1;
        // low byte 0x00 -> distance 1; length bits 1,0 -> m_len 2 -> copy 3 bytes;
        // then end: 0, gamma(0x1000002), byte 0xFF.
        let mut bits: Vec<u32> = vec![1, 0, 1, 1, 1, 0, 0];
        let v = MAX_OFFSET_CODE;
        let n = 32 - v.leading_zeros();
        for i in (0..n - 1).rev() {
            bits.push((v >> i) & 1);
            bits.push(u32::from(i == 0));
        }
        assert!(bits.len() <= 64);
        let mut w0: u32 = 0;
        let mut w1: u32 = 0;
        for (k, b) in bits.iter().enumerate() {
            if k < 32 {
                w0 |= b << (31 - k);
            } else {
                w1 |= b << (63 - k);
            }
        }
        // Layout: word0, 'a' (read after the first bit), 0x00 (offset low), word1 (bits 32..), 0xFF.
        let mut src = Vec::new();
        src.extend_from_slice(&w0.to_le_bytes());
        src.push(b'a');
        src.push(0x00);
        src.extend_from_slice(&w1.to_le_bytes());
        src.push(0xFF);
        assert_eq!(decompress(&src, 4), Ok(b"aaaa".to_vec()));
    }

    #[test]
    fn empty_stream_is_just_the_end_marker() {
        let s = compress_literals(b"");
        assert_eq!(decompress(&s, 0), Ok(vec![]));
        assert!(matches!(
            decompress(&s, 1),
            Err(Nrv2bError::OutputUnderrun {
                produced: 0,
                expected: 1
            })
        ));
    }

    #[test]
    fn round_trips_over_many_seeds() {
        for seed in 0..300u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let len = rng.random_range(0..6000);
            // Low-entropy data so that matches (near, far, repeated offsets, long runs) occur.
            let alphabet = rng.random_range(1..=256u32);
            let mut data: Vec<u8> = Vec::with_capacity(len);
            while data.len() < len {
                if !data.is_empty() && rng.random_bool(0.3) {
                    let d = rng.random_range(1..=data.len());
                    let l = rng.random_range(1..200).min(len - data.len());
                    for _ in 0..l {
                        data.push(data[data.len() - d]);
                    }
                } else {
                    data.push((rng.random_range(0..alphabet)) as u8);
                }
            }
            let c = compress(&data);
            assert_eq!(
                decompress(&c, data.len()).as_deref(),
                Ok(data.as_slice()),
                "seed {seed} (matching)"
            );
            let l = compress_literals(&data);
            assert_eq!(
                decompress(&l, data.len()).as_deref(),
                Ok(data.as_slice()),
                "seed {seed} (literals)"
            );
        }
    }

    #[test]
    fn far_matches_and_repeat_offsets_are_used() {
        // A 0x1100-byte random block repeated: the second copy is a match at distance > 0xD00.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let block: Vec<u8> = (0..0x1100).map(|_| rng.random()).collect();
        let mut data = block.clone();
        data.extend_from_slice(&block);
        let c = compress(&data);
        assert!(
            c.len() < data.len() * 3 / 4,
            "far match not used: {} bytes",
            c.len()
        );
        assert_eq!(decompress(&c, data.len()), Ok(data));
    }

    #[test]
    fn output_is_bounded_by_the_expected_length() {
        let data = vec![b'x'; 5000];
        let c = compress(&data);
        assert!(c.len() < 40);
        assert!(matches!(
            decompress(&c, 4999),
            Err(Nrv2bError::OutputOverrun { limit: 4999, .. })
        ));
        assert!(matches!(
            decompress(&compress_literals(b"abc"), 2),
            Err(Nrv2bError::OutputOverrun { limit: 2, .. })
        ));
    }

    #[test]
    fn a_huge_expected_length_is_not_preallocated() {
        let c = compress(&[b'z'; 100]);
        assert!(matches!(
            decompress(&c, usize::MAX),
            Err(Nrv2bError::OutputUnderrun {
                produced: 100,
                expected: usize::MAX
            })
        ));
    }

    #[test]
    fn malformed_streams_are_errors_not_panics() {
        let good = compress(b"hello hello hello hello");
        // Truncation anywhere is an input overrun.
        for cut in 0..good.len() {
            assert!(decompress(&good[..cut], 23).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            decompress(&trailing, 23),
            Err(Nrv2bError::InputNotConsumed { .. })
        ));
        // A match before any output is a look-behind overrun: bits 0 (match), gamma 3, byte 0.
        let word = (0b011u32 << 28).to_le_bytes();
        let mut src = word.to_vec();
        src.push(0);
        assert!(matches!(
            decompress(&src, 10),
            Err(Nrv2bError::LookbehindOverrun {
                distance: 1,
                produced: 0,
                ..
            })
        ));
        // All-zero input: an endless offset code, refused once it exceeds the limit.
        assert!(matches!(
            decompress(&[0u8; 64], 10),
            Err(Nrv2bError::OffsetCodeTooLarge { .. })
        ));
        // Random streams never panic and never exceed the limit.
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        for _ in 0..5000 {
            let len = rng.random_range(0..64);
            let src: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if let Ok(out) = decompress(&src, 100) {
                assert_eq!(out.len(), 100);
            }
        }
    }
}
