//! Standard base64 (RFC 4648 §4: alphabet `A–Z a–z 0–9 + /`, `=` padding).
//!
//! Used only to carry non-UTF-8 path bytes in JSON (see [`crate::PathText`]).
//! The encoder always pads. The decoder is strict, so each byte string has
//! exactly one accepted encoding: the length must be a multiple of four,
//! padding may appear only at the very end, whitespace and other characters
//! are rejected, and the unused low bits of the last character must be zero.
//! Decoding never panics, whatever the input.

use thiserror::Error;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a base64 string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The text is not made of whole four-character groups.
    #[error("base64 text has length {0}, which is not a multiple of 4")]
    Length(usize),
    /// A character outside the standard alphabet.
    #[error("invalid base64 character {byte:#04x} at offset {offset}")]
    Character {
        /// The offending byte of the text.
        byte: u8,
        /// Its offset in the text.
        offset: usize,
    },
    /// `=` somewhere other than the last one or two characters.
    #[error("misplaced base64 padding at offset {0}")]
    Padding(usize),
    /// The last character carries bits that no byte uses (non-canonical).
    #[error("base64 text has non-zero bits after its last byte")]
    TrailingBits,
}

/// Encodes `input` as padded standard base64.
pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A chunk of n bytes (1..=3) needs n + 1 characters; the rest is padding.
        let used = chunk.len() + 1;
        for i in 0..4 {
            if i < used {
                let sextet = (group >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[sextet as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes padded standard base64, strictly (see the module documentation).
pub fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return Err(DecodeError::Length(bytes.len()));
    }
    let groups = bytes.len() / 4;
    let mut out = Vec::with_capacity(groups * 3);
    for (g, quad) in bytes.chunks_exact(4).enumerate() {
        let is_last = g + 1 == groups;
        let padding = match (quad[2], quad[3]) {
            (b'=', b'=') => 2,
            (_, b'=') => 1,
            _ => 0,
        };
        if padding > 0 && !is_last {
            return Err(DecodeError::Padding(g * 4 + 4 - padding));
        }
        let mut group = 0u32;
        for (i, &c) in quad.iter().enumerate() {
            let value = if i >= 4 - padding {
                0
            } else if c == b'=' {
                return Err(DecodeError::Padding(g * 4 + i));
            } else {
                sextet(c).ok_or(DecodeError::Character {
                    byte: c,
                    offset: g * 4 + i,
                })?
            };
            group = (group << 6) | value;
        }
        let [_, b0, b1, b2] = group.to_be_bytes();
        match padding {
            0 => out.extend_from_slice(&[b0, b1, b2]),
            1 if b2 == 0 => out.extend_from_slice(&[b0, b1]),
            2 if b1 == 0 && b2 == 0 => out.push(b0),
            _ => return Err(DecodeError::TrailingBits),
        }
    }
    Ok(out)
}

/// The value of one alphabet character, or `None` for anything else.
fn sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10 test vectors.
    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors_encode() {
        for (plain, encoded) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), *encoded, "encoding {plain:?}");
        }
    }

    #[test]
    fn rfc4648_vectors_decode() {
        for (plain, encoded) in VECTORS {
            assert_eq!(
                decode(encoded).unwrap(),
                plain.as_bytes(),
                "decoding {encoded:?}"
            );
        }
    }

    #[test]
    fn binary_bytes_use_the_whole_alphabet() {
        // 0xfb 0xff 0xbf is 111110 111111 111110 111111: '+', '/', '+', '/'.
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "+/+/");
        assert_eq!(decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        // A path with an invalid UTF-8 byte, as PathText would carry it.
        assert_eq!(encode(b"/tmp/\xff"), "L3RtcC//");
        assert_eq!(decode("L3RtcC//").unwrap(), b"/tmp/\xff");
    }

    #[test]
    fn every_byte_value_round_trips_at_every_length() {
        let all: Vec<u8> = (0..=255u8).collect();
        for len in 0..all.len() {
            let slice = &all[..len];
            assert_eq!(decode(&encode(slice)).unwrap(), slice, "length {len}");
        }
    }

    #[test]
    fn bad_lengths_are_rejected() {
        assert_eq!(decode("Zg="), Err(DecodeError::Length(3)));
        assert_eq!(decode("Zm9vY"), Err(DecodeError::Length(5)));
    }

    #[test]
    fn bad_characters_are_rejected() {
        assert_eq!(
            decode("Zm9v Yg=="),
            Err(DecodeError::Length(9)),
            "whitespace is not skipped"
        );
        assert_eq!(
            decode("Zm-v"),
            Err(DecodeError::Character {
                byte: b'-',
                offset: 2
            })
        );
        assert_eq!(
            decode("Zm9\u{e9}"),
            Err(DecodeError::Length(5)),
            "non-ASCII counts in bytes"
        );
        assert_eq!(
            decode("Zm\u{e9}"),
            Err(DecodeError::Character {
                byte: 0xc3,
                offset: 2
            })
        );
    }

    #[test]
    fn misplaced_padding_is_rejected() {
        assert_eq!(decode("Zg==Zg=="), Err(DecodeError::Padding(2)));
        assert_eq!(decode("Z=g="), Err(DecodeError::Padding(1)));
        assert_eq!(decode("===="), Err(DecodeError::Padding(0)));
        assert_eq!(decode("Z==="), Err(DecodeError::Padding(1)));
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        assert_eq!(decode("Zh=="), Err(DecodeError::TrailingBits));
        assert_eq!(decode("Zm9="), Err(DecodeError::TrailingBits));
    }
}
