//! A small, strict MessagePack reader for the AMDGPU metadata note.
//!
//! Supports the subset the code-object metadata uses: nil, booleans, integers, floats,
//! strings, binary, arrays and maps. Extension types, the never-used byte 0xC1, invalid UTF-8,
//! lengths running past the input, nesting deeper than [`MAX_DEPTH`] and trailing bytes are
//! errors. Nothing here panics or allocates more than the input can justify: claimed
//! lengths only bound the up-front reservation (at most [`MAX_RESERVE`] elements), memory
//! grows with the elements actually decoded.
//!
//! Format codes from the MessagePack specification (msgpack/msgpack spec.md, "Formats").

use thiserror::Error;

/// Deepest nesting of arrays/maps accepted.
pub const MAX_DEPTH: usize = 32;
/// Most elements reserved up front for an array or map, whatever length it claims.
pub const MAX_RESERVE: usize = 64;

/// A decoded MessagePack value borrowing strings and binary data from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `u64` (all non-negative integers).
    UInt(u64),
    /// A negative integer.
    Int(i64),
    /// A float32 or float64 (widened).
    Float(f64),
    /// A UTF-8 string.
    Str(&'a str),
    /// Binary data.
    Bin(&'a [u8]),
    /// An array.
    Array(Vec<Value<'a>>),
    /// A map, in encoded order (keys may be of any type).
    Map(Vec<(Value<'a>, Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::UInt(v) => Some(*v),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value<'a>, Value<'a>)]> {
        match self {
            Value::Map(v) => Some(v),
            _ => None,
        }
    }

    /// The value of the first entry whose key is the string `key`, if this is a map.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::UInt(_) | Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bin(_) => "binary",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }
}

/// Why MessagePack input was rejected; `offset` is the byte offset in the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MsgpackError {
    /// The input ended inside a value.
    #[error("msgpack: input ends at byte {offset} but {need} more bytes are needed")]
    Truncated {
        /// Where the missing bytes start.
        offset: usize,
        /// How many bytes were needed.
        need: u64,
    },
    /// A format byte outside the supported subset (extension types, 0xC1).
    #[error("msgpack: unsupported format byte {byte:#04x} at byte {offset}")]
    Unsupported {
        /// The format byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// A string that is not UTF-8.
    #[error("msgpack: string at byte {offset} is not UTF-8")]
    BadUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// Arrays/maps nested deeper than [`MAX_DEPTH`].
    #[error("msgpack: nesting deeper than {MAX_DEPTH} at byte {offset}")]
    TooDeep {
        /// Where the too-deep value starts.
        offset: usize,
    },
    /// Bytes left after the top-level value.
    #[error("msgpack: {extra} trailing bytes after the value, at byte {offset}")]
    Trailing {
        /// Where the trailing bytes start.
        offset: usize,
        /// How many there are.
        extra: usize,
    },
}

/// Decode exactly one value spanning all of `input`.
///
/// Errors: [`MsgpackError`] naming the offending byte offset.
pub fn decode(input: &[u8]) -> Result<Value<'_>, MsgpackError> {
    let mut r = Reader { input, pos: 0 };
    let v = r.value(0)?;
    if r.pos != input.len() {
        return Err(MsgpackError::Trailing { offset: r.pos, extra: input.len() - r.pos });
    }
    Ok(v)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], MsgpackError> {
        let rest = self.input.len() - self.pos;
        let trunc = MsgpackError::Truncated { offset: self.pos, need: n };
        let n = usize::try_from(n).map_err(|_| trunc.clone())?;
        if n > rest {
            return Err(trunc);
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, MsgpackError> {
        Ok(self.take(n as u64)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, MsgpackError> {
        let start = self.pos;
        let byte = self.take(1)?[0];
        Ok(match byte {
            0x00..=0x7f => Value::UInt(u64::from(byte)),
            0x80..=0x8f => self.map(u64::from(byte & 0x0f), depth, start)?,
            0x90..=0x9f => self.array(u64::from(byte & 0x0f), depth, start)?,
            0xa0..=0xbf => self.str(u64::from(byte & 0x1f))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = self.be(1)?;
                Value::Bin(self.take(n)?)
            }
            0xc5 => {
                let n = self.be(2)?;
                Value::Bin(self.take(n)?)
            }
            0xc6 => {
                let n = self.be(4)?;
                Value::Bin(self.take(n)?)
            }
            0xca => Value::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Value::Float(f64::from_bits(self.be(8)?)),
            0xcc => Value::UInt(self.be(1)?),
            0xcd => Value::UInt(self.be(2)?),
            0xce => Value::UInt(self.be(4)?),
            0xcf => Value::UInt(self.be(8)?),
            0xd0 => int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => int(self.be(8)? as i64),
            0xd9 => {
                let n = self.be(1)?;
                self.str(n)?
            }
            0xda => {
                let n = self.be(2)?;
                self.str(n)?
            }
            0xdb => {
                let n = self.be(4)?;
                self.str(n)?
            }
            0xdc => {
                let n = self.be(2)?;
                self.array(n, depth, start)?
            }
            0xdd => {
                let n = self.be(4)?;
                self.array(n, depth, start)?
            }
            0xde => {
                let n = self.be(2)?;
                self.map(n, depth, start)?
            }
            0xdf => {
                let n = self.be(4)?;
                self.map(n, depth, start)?
            }
            0xe0..=0xff => Value::Int(i64::from(byte as i8)),
            // 0xc1 (never used), 0xc7-0xc9 and 0xd4-0xd8 (extension types).
            _ => return Err(MsgpackError::Unsupported { byte, offset: start }),
        })
    }

    fn str(&mut self, n: u64) -> Result<Value<'a>, MsgpackError> {
        let offset = self.pos;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map(Value::Str).map_err(|_| MsgpackError::BadUtf8 { offset })
    }

    /// Capacity to reserve for a claimed `n` elements: no more than the remaining input could
    /// hold (each element takes >= 1 byte) and no more than [`MAX_RESERVE`]. The remaining
    /// bytes alone are not a bound: every enclosing array or map would reserve for the same
    /// bytes again, so [`MAX_DEPTH`] nested headers claiming 2^32 - 1 elements over N bytes
    /// would reserve about `MAX_DEPTH * N` elements. Beyond the reserve, vectors grow with
    /// the elements actually decoded.
    fn cap(&self, n: u64) -> usize {
        usize::try_from(n).unwrap_or(usize::MAX).min(self.input.len() - self.pos).min(MAX_RESERVE)
    }

    fn array(&mut self, n: u64, depth: usize, start: usize) -> Result<Value<'a>, MsgpackError> {
        if depth >= MAX_DEPTH {
            return Err(MsgpackError::TooDeep { offset: start });
        }
        let mut v = Vec::with_capacity(self.cap(n));
        for _ in 0..n {
            v.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(v))
    }

    fn map(&mut self, n: u64, depth: usize, start: usize) -> Result<Value<'a>, MsgpackError> {
        if depth >= MAX_DEPTH {
            return Err(MsgpackError::TooDeep { offset: start });
        }
        let mut v = Vec::with_capacity(self.cap(n.saturating_mul(2)) / 2);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let val = self.value(depth + 1)?;
            v.push((k, val));
        }
        Ok(Value::Map(v))
    }
}

/// Non-negative integers are always [`Value::UInt`], whatever their encoding.
fn int(v: i64) -> Value<'static> {
    if v >= 0 {
        Value::UInt(v as u64)
    } else {
        Value::Int(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_front_page_example() {
        // msgpack.org: {"compact":true,"schema":0} is these 18 bytes.
        let b = [
            0x82, 0xa7, b'c', b'o', b'm', b'p', b'a', b'c', b't', 0xc3, 0xa6, b's', b'c', b'h',
            b'e', b'm', b'a', 0x00,
        ];
        let v = decode(&b).unwrap();
        assert_eq!(v.get("compact"), Some(&Value::Bool(true)));
        assert_eq!(v.get("schema").and_then(Value::as_u64), Some(0));
        assert_eq!(v.get("missing"), None);
    }

    #[test]
    fn integer_encodings() {
        // Spec: positive fixint, uint 8/16/32/64 big-endian, negative fixint, int 8/16.
        let cases: &[(&[u8], Value<'_>)] = &[
            (&[0x7f], Value::UInt(127)),
            (&[0xcc, 0xff], Value::UInt(255)),
            (&[0xcd, 0x01, 0x00], Value::UInt(256)),
            (&[0xce, 0x00, 0x01, 0x00, 0x00], Value::UInt(65536)),
            (&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], Value::UInt(u64::MAX)),
            (&[0xff], Value::Int(-1)),
            (&[0xe0], Value::Int(-32)),
            (&[0xd0, 0x80], Value::Int(-128)),
            (&[0xd1, 0x80, 0x00], Value::Int(-32768)),
            (&[0xd0, 0x05], Value::UInt(5)),
            (&[0xca, 0x3f, 0x80, 0x00, 0x00], Value::Float(1.0)),
            (&[0xc0], Value::Nil),
        ];
        for (bytes, want) in cases {
            assert_eq!(&decode(bytes).unwrap(), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn strings_arrays_and_long_forms() {
        let v = decode(&[0x92, 0xd9, 0x02, b'h', b'i', 0xdc, 0x00, 0x01, 0xc2]).unwrap();
        assert_eq!(v, Value::Array(vec![Value::Str("hi"), Value::Array(vec![Value::Bool(false)])]));
        assert_eq!(decode(&[0xc4, 0x02, 1, 2]).unwrap(), Value::Bin(&[1, 2]));
        assert_eq!(decode(&[0xde, 0x00, 0x00]).unwrap(), Value::Map(vec![]));
    }

    #[test]
    fn rejects_bad_input_with_offsets() {
        assert_eq!(decode(&[]), Err(MsgpackError::Truncated { offset: 0, need: 1 }));
        assert_eq!(decode(&[0xa3, b'a']), Err(MsgpackError::Truncated { offset: 1, need: 3 }));
        assert_eq!(decode(&[0x91, 0xc1]), Err(MsgpackError::Unsupported { byte: 0xc1, offset: 1 }));
        assert_eq!(
            decode(&[0xd4, 0x00, 0x00]),
            Err(MsgpackError::Unsupported { byte: 0xd4, offset: 0 })
        );
        assert_eq!(decode(&[0xa1, 0xff]), Err(MsgpackError::BadUtf8 { offset: 1 }));
        assert_eq!(decode(&[0x01, 0x02]), Err(MsgpackError::Trailing { offset: 1, extra: 1 }));
        // A huge claimed length neither allocates nor panics.
        assert!(matches!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated { offset: 5, .. })
        ));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = vec![0x91u8; 1000];
        assert!(matches!(decode(&deep), Err(MsgpackError::TooDeep { .. })));
        let mut ok = vec![0x91u8; MAX_DEPTH];
        ok.push(0xc0);
        assert!(decode(&ok).is_ok());
    }
}
