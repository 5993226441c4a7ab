//! Strict GGUF (v2 / v3) reader over a byte slice.
//!
//! Layout (little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata
//! count; metadata key/value pairs (`string` key, `u32` value type, value); tensor infos
//! (`string` name, `u32` n_dims, `u64` dims innermost first, `u32` ggml type, `u64` offset
//! relative to the data section); the data section starts at the next multiple of
//! `general.alignment` (default 32). A `string` is a `u64` byte length and UTF-8 bytes.
//!
//! Every read is bounds-checked; malformed input yields a [`GgufError`] naming the problem
//! and the byte offset, never a panic. Counts are validated against the bytes that remain
//! before anything is allocated.

use pm4rt_sim::kernels::WeightType;

/// Default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest nesting of metadata arrays accepted (arrays of arrays of ...).
const MAX_ARRAY_DEPTH: u32 = 4;
/// Most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
const MAX_DIMS: u32 = 4;

/// Problems found while reading a GGUF file or looking up a tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufError {
    /// The file ends inside a field.
    #[error("truncated GGUF: {what} at byte {offset} needs {need} bytes, file has {len}")]
    Truncated {
        /// Field being read.
        what: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// Bytes the field needs.
        need: u64,
        /// File length.
        len: usize,
    },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic {found:02x?} at byte 0 (expected \"GGUF\")")]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// Only versions 2 and 3 are read.
    #[error("unsupported GGUF version {version} at byte 4 (2 and 3 are supported)")]
    UnsupportedVersion {
        /// Version found.
        version: u32,
    },
    /// A metadata value type id outside 0..=12.
    #[error("unknown metadata value type {ty} at byte {offset}")]
    BadValueType {
        /// Type id found.
        ty: u32,
        /// Byte offset of the type field.
        offset: usize,
    },
    /// A string that is not UTF-8.
    #[error("invalid UTF-8 in {what} at byte {offset}")]
    BadUtf8 {
        /// Which string (key, tensor name, value).
        what: &'static str,
        /// Byte offset of the string's bytes.
        offset: usize,
    },
    /// A count or size that cannot fit in the rest of the file.
    #[error("{what} {count} at byte {offset} cannot fit in the file ({len} bytes)")]
    CountTooLarge {
        /// Which count.
        what: &'static str,
        /// Value found.
        count: u64,
        /// Byte offset of the count.
        offset: usize,
        /// File length.
        len: usize,
    },
    /// Metadata arrays nested deeper than supported.
    #[error("metadata arrays nested deeper than {MAX_ARRAY_DEPTH} at byte {offset}")]
    ArrayTooDeep {
        /// Byte offset of the innermost array header.
        offset: usize,
    },
    /// `general.alignment` is zero, not a power of two, or not a `u32`.
    #[error("bad general.alignment at byte {offset}: {reason}")]
    BadAlignment {
        /// Byte offset of the value.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A tensor info is malformed (dims, offset alignment, size overflow, duplicate name).
    #[error("tensor `{name}` (info at byte {offset}): {reason}")]
    BadTensorInfo {
        /// Tensor name.
        name: String,
        /// Byte offset of the tensor info.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's data extends past the end of the file.
    #[error("tensor `{name}` data [{start}, {end}) lies beyond the end of the file ({len} bytes)")]
    DataOutOfBounds {
        /// Tensor name.
        name: String,
        /// Absolute start offset of the data.
        start: u64,
        /// Absolute end offset of the data.
        end: u64,
        /// File length.
        len: usize,
    },
    /// No tensor with this name.
    #[error("no tensor named `{name}`")]
    NoSuchTensor {
        /// Requested name.
        name: String,
    },
    /// The tensor's type has no DMMV kernel (the supported ones are [`SUPPORTED_TYPES`]).
    #[error("tensor `{name}` has ggml type {type_name} ({id}), which has no DMMV kernel (supported: {SUPPORTED_TYPES})")]
    UnsupportedType {
        /// Tensor name.
        name: String,
        /// ggml type id.
        id: u32,
        /// ggml type name (`Q4_K`, `Q6_K`, `F16`, ... or `unknown`).
        type_name: &'static str,
    },
}

/// The ggml types with DMMV kernels, as listed in [`GgufError::UnsupportedType`] (the names
/// of `WeightType::ALL`, checked by a unit test).
pub const SUPPORTED_TYPES: &str = "F32, Q4_0, Q8_0, F16, BF16, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";

/// ggml type name for an id (ids as in gguf-py's `GGMLQuantizationType`), `unknown` otherwise.
pub fn ggml_type_name(id: u32) -> &'static str {
    const NAMES: &[(u32, &str)] = &[
        (0, "F32"),
        (1, "F16"),
        (2, "Q4_0"),
        (3, "Q4_1"),
        (6, "Q5_0"),
        (7, "Q5_1"),
        (8, "Q8_0"),
        (9, "Q8_1"),
        (10, "Q2_K"),
        (11, "Q3_K"),
        (12, "Q4_K"),
        (13, "Q5_K"),
        (14, "Q6_K"),
        (15, "Q8_K"),
        (16, "IQ2_XXS"),
        (17, "IQ2_XS"),
        (18, "IQ3_XXS"),
        (19, "IQ1_S"),
        (20, "IQ4_NL"),
        (21, "IQ3_S"),
        (22, "IQ2_S"),
        (23, "IQ4_XS"),
        (24, "I8"),
        (25, "I16"),
        (26, "I32"),
        (27, "I64"),
        (28, "F64"),
        (29, "IQ1_M"),
        (30, "BF16"),
        (34, "TQ1_0"),
        (35, "TQ2_0"),
        (39, "MXFP4"),
    ];
    NAMES.iter().find(|(i, _)| *i == id).map_or("unknown", |(_, n)| n)
}

/// `(values per block, bytes per block)` of the ggml types whose size the reader knows.
fn block_layout(id: u32) -> Option<(u64, u64)> {
    Some(match id {
        0 => (1, 4),      // F32
        1 | 30 => (1, 2), // F16, BF16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        _ => return None,
    })
}

/// A parsed metadata value (arrays keep only their element type and length).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Any unsigned integer type (u8, u16, u32, u64), widened.
    Uint(u64),
    /// Any signed integer type (i8, i16, i32, i64), widened.
    Int(i64),
    /// f32 or f64, widened.
    Float(f64),
    /// bool.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array: element type id and element count (elements validated, not stored).
    Array {
        /// Element value type id.
        elem_type: u32,
        /// Number of elements.
        len: u64,
    },
}

/// One metadata key/value pair.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaKv {
    /// Key.
    pub key: String,
    /// Value type id as stored (0..=12).
    pub value_type: u32,
    /// Parsed value.
    pub value: MetaValue,
}

/// One tensor info as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Dimensions, innermost first (`[cols, rows]` for a row-major matrix).
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Offset of the data relative to the data section.
    pub offset: u64,
    /// Byte length of the data (known for the types of [`ggml_type_name`] with a block layout).
    pub size: Option<u64>,
}

/// A tensor ready for a DMMV kernel: row-major `rows x cols` in a supported format.
#[derive(Debug, Clone, Copy)]
pub struct MatTensor<'a> {
    /// Rows (product of every dimension but the innermost).
    pub rows: usize,
    /// Columns (the innermost dimension).
    pub cols: usize,
    /// Weight format.
    pub ty: WeightType,
    /// The tensor's bytes (exactly `rows * ty.row_bytes(cols)`).
    pub bytes: &'a [u8],
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    data: &'a [u8],
    /// Format version (2 or 3).
    pub version: u32,
    /// Data alignment (`general.alignment` or 32).
    pub alignment: u64,
    /// Absolute byte offset of the data section.
    pub data_offset: u64,
    /// Metadata in file order.
    pub metadata: Vec<MetaKv>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], GgufError> {
        let trunc = GgufError::Truncated { what, offset: self.pos, need: n, len: self.data.len() };
        let n = usize::try_from(n).map_err(|_| trunc.clone())?;
        let end = self.pos.checked_add(n).ok_or(trunc.clone())?;
        let s = self.data.get(self.pos..end).ok_or(trunc)?;
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        self.arr(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        self.arr(what).map(u64::from_le_bytes)
    }
    fn remaining(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }
    /// Reads a count of items each at least `min_item` bytes, rejecting impossible counts.
    fn count(&mut self, what: &'static str, min_item: u64) -> Result<u64, GgufError> {
        let offset = self.pos;
        let count = self.u64(what)?;
        if count.saturating_mul(min_item) > self.remaining() {
            return Err(GgufError::CountTooLarge { what, count, offset, len: self.data.len() });
        }
        Ok(count)
    }
    fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let len_off = self.pos;
        let len = self.u64(what)?;
        if len > self.remaining() {
            return Err(GgufError::Truncated {
                what,
                offset: len_off,
                need: len.saturating_add(8),
                len: self.data.len(),
            });
        }
        let at = self.pos;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::BadUtf8 { what, offset: at })
    }

    fn value(&mut self, ty: u32, ty_offset: usize, depth: u32) -> Result<MetaValue, GgufError> {
        let scalar = |c: &mut Self, n: u64| -> Result<[u8; 8], GgufError> {
            let s = c.take(n, "metadata value")?;
            let mut a = [0u8; 8];
            a[..s.len()].copy_from_slice(s);
            Ok(a)
        };
        let sext = |a: [u8; 8], bytes: u32| -> i64 {
            let shift = 64 - 8 * bytes;
            (i64::from_le_bytes(a) << shift) >> shift
        };
        Ok(match ty {
            0 => MetaValue::Uint(u64::from_le_bytes(scalar(self, 1)?)),
            1 => MetaValue::Int(sext(scalar(self, 1)?, 1)),
            2 => MetaValue::Uint(u64::from_le_bytes(scalar(self, 2)?)),
            3 => MetaValue::Int(sext(scalar(self, 2)?, 2)),
            4 => MetaValue::Uint(u64::from_le_bytes(scalar(self, 4)?)),
            5 => MetaValue::Int(sext(scalar(self, 4)?, 4)),
            6 => MetaValue::Float(f64::from(f32::from_le_bytes(self.arr("f32 value")?))),
            7 => MetaValue::Bool(self.arr::<1>("bool value")?[0] != 0),
            8 => MetaValue::Str(self.string("string value")?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::ArrayTooDeep { offset: ty_offset });
                }
                let et_off = self.pos;
                let elem_type = self.u32("array element type")?;
                let min = match elem_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    ty => return Err(GgufError::BadValueType { ty, offset: et_off }),
                };
                let len = self.count("array length", min)?;
                if matches!(elem_type, 8 | 9) {
                    for _ in 0..len {
                        self.value(elem_type, et_off, depth + 1)?;
                    }
                } else {
                    self.take(len * min, "array data")?;
                }
                MetaValue::Array { elem_type, len }
            }
            10 => MetaValue::Uint(self.u64("u64 value")?),
            11 => MetaValue::Int(i64::from_le_bytes(self.arr("i64 value")?)),
            12 => MetaValue::Float(f64::from_le_bytes(self.arr("f64 value")?)),
            ty => return Err(GgufError::BadValueType { ty, offset: ty_offset }),
        })
    }
}

impl<'a> Gguf<'a> {
    /// Parses the header, metadata and tensor infos of `data` and checks that every tensor of
    /// a known type lies inside the file.
    ///
    /// # Errors
    /// Any [`GgufError`] except `NoSuchTensor` / `UnsupportedType`.
    pub fn parse(data: &'a [u8]) -> Result<Self, GgufError> {
        let mut c = Cursor { data, pos: 0 };
        let magic = c.arr::<4>("magic")?;
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion { version });
        }
        // Minimal sizes: tensor info = 8 (name) + 4 + 4 + 8; kv = 8 (key) + 4 + 1.
        let n_tensors = c.count("tensor count", 24)?;
        let n_kv = c.count("metadata count", 13)?;
        let mut alignment = DEFAULT_ALIGNMENT;
        let mut metadata = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let ty_off = c.pos;
            let value_type = c.u32("metadata value type")?;
            let val_off = c.pos;
            let value = c.value(value_type, ty_off, 0)?;
            if key == "general.alignment" {
                alignment = match value {
                    MetaValue::Uint(a) if value_type == 4 && a != 0 && a.is_power_of_two() => a,
                    _ => {
                        return Err(GgufError::BadAlignment {
                            offset: val_off,
                            reason: format!("type {value_type}, value {value:?}"),
                        })
                    }
                };
            }
            metadata.push(MetaKv { key, value_type, value });
        }
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        let mut info_offsets = Vec::with_capacity(n_tensors as usize);
        // A set, not a scan of `tensors`: a file of millions of tiny infos must not take
        // quadratic time.
        let mut names: std::collections::HashSet<String> =
            std::collections::HashSet::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let info_off = c.pos;
            let name = c.string("tensor name")?;
            let bad = |reason: String| GgufError::BadTensorInfo {
                name: name.clone(),
                offset: info_off,
                reason,
            };
            let n_dims = c.u32("tensor n_dims")?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(bad(format!("{n_dims} dimensions (1..={MAX_DIMS} allowed)")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64("tensor dim")?);
            }
            // ggml/src/gguf.cpp, gguf_init_from_file_impl: dims are int64 and must not be
            // negative, and the element count must stay below INT64_MAX. Zero dims are skipped
            // in the product, so that [0, 2^40, 2^40] does not hide an overflowing row count.
            if let Some((j, d)) = dims.iter().enumerate().find(|(_, &d)| d > i64::MAX as u64) {
                return Err(bad(format!("dimension {j} is {d}, negative as ggml's int64")));
            }
            let nonzero = dims.iter().filter(|&&d| d != 0);
            if nonzero
                .clone()
                .try_fold(1u64, |a, d| a.checked_mul(*d))
                .is_none_or(|n| n >= i64::MAX as u64)
            {
                return Err(bad(format!(
                    "dims {dims:?}: the element count (zero dims skipped) is not below INT64_MAX"
                )));
            }
            let ggml_type = c.u32("tensor type")?;
            let offset = c.u64("tensor offset")?;
            if !offset.is_multiple_of(alignment) {
                return Err(bad(format!("offset {offset} is not a multiple of {alignment}")));
            }
            if !names.insert(name.clone()) {
                return Err(bad("duplicate tensor name".into()));
            }
            let size = match block_layout(ggml_type) {
                None => None,
                Some((bv, bb)) => {
                    let n = dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d));
                    let n = n.ok_or_else(|| bad(format!("dims {dims:?} overflow")))?;
                    if !dims[0].is_multiple_of(bv) {
                        return Err(bad(format!(
                            "innermost dim {} is not a multiple of the {} block ({bv})",
                            dims[0],
                            ggml_type_name(ggml_type)
                        )));
                    }
                    Some((n / bv).checked_mul(bb).ok_or_else(|| bad("size overflows".into()))?)
                }
            };
            info_offsets.push(info_off);
            tensors.push(TensorInfo { name, dims, ggml_type, offset, size });
        }
        let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
        for t in &tensors {
            let start = data_offset.checked_add(t.offset);
            let end = start.and_then(|s| s.checked_add(t.size.unwrap_or(0)));
            match (start, end) {
                (Some(_), Some(end)) if end <= data.len() as u64 => {}
                _ => {
                    return Err(GgufError::DataOutOfBounds {
                        name: t.name.clone(),
                        start: start.unwrap_or(u64::MAX),
                        end: end.unwrap_or(u64::MAX),
                        len: data.len(),
                    })
                }
            }
        }
        Ok(Gguf { data, version, alignment, data_offset, metadata, tensors })
    }

    /// The metadata value stored under `key`, if any.
    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }

    /// The info of the tensor named `name`.
    ///
    /// # Errors
    /// [`GgufError::NoSuchTensor`].
    pub fn info(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| GgufError::NoSuchTensor { name: name.to_string() })
    }

    /// The tensor `name` as a row-major matrix for a DMMV kernel: `cols` = innermost dim,
    /// `rows` = product of the others, a format of [`SUPPORTED_TYPES`], and its bytes.
    ///
    /// # Errors
    /// [`GgufError::NoSuchTensor`]; [`GgufError::UnsupportedType`] naming the type for any
    /// other ggml type (e.g. `Q8_1` = 9, `Q2_K` = 10, `IQ4_NL` = 20);
    /// [`GgufError::BadTensorInfo`] if the shape does not fit `usize`.
    pub fn matrix(&self, name: &str) -> Result<MatTensor<'a>, GgufError> {
        let t = self.info(name)?;
        let ty =
            WeightType::from_ggml_type(t.ggml_type).ok_or_else(|| GgufError::UnsupportedType {
                name: name.to_string(),
                id: t.ggml_type,
                type_name: ggml_type_name(t.ggml_type),
            })?;
        let bad = |reason: &str| GgufError::BadTensorInfo {
            name: name.to_string(),
            offset: 0,
            reason: reason.to_string(),
        };
        let cols = usize::try_from(t.dims[0]).map_err(|_| bad("cols exceed usize"))?;
        let rows = t.dims[1..].iter().try_fold(1u64, |a, d| a.checked_mul(*d));
        let rows =
            rows.and_then(|r| usize::try_from(r).ok()).ok_or_else(|| bad("rows exceed usize"))?;
        // parse() checked size and bounds for these types.
        let start = (self.data_offset + t.offset) as usize;
        let size = t.size.unwrap_or(0) as usize;
        let bytes = self.data.get(start..start + size).ok_or_else(|| bad("data out of bounds"))?;
        Ok(MatTensor { rows, cols, ty, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid GGUF v3 built by hand from the format description: one u32 KV
    /// (`general.alignment` = 32) and one F32 tensor `t` of dims [2, 1] at offset 0.
    fn tiny() -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes()); // tensors
        b.extend(1u64.to_le_bytes()); // kv
        let key = b"general.alignment";
        b.extend((key.len() as u64).to_le_bytes());
        b.extend(key);
        b.extend(4u32.to_le_bytes());
        b.extend(32u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.push(b't');
        b.extend(2u32.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        b.extend(1.5f32.to_le_bytes());
        b.extend((-2.0f32).to_le_bytes());
        b
    }

    #[test]
    fn tiny_parses() {
        let f = tiny();
        let g = Gguf::parse(&f).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.alignment, 32);
        assert_eq!(g.data_offset, 128); // 98 bytes of header and infos, aligned to 32
        let m = g.matrix("t").unwrap();
        assert_eq!((m.rows, m.cols, m.ty), (1, 2, WeightType::F32));
        assert_eq!(m.bytes, &f[128..136]);
    }

    #[test]
    fn every_truncation_errors() {
        let f = tiny();
        for n in 0..f.len() {
            assert!(Gguf::parse(&f[..n]).is_err(), "length {n}");
        }
    }

    #[test]
    fn bad_header_fields() {
        let mut f = tiny();
        f[0] = b'X';
        assert!(matches!(Gguf::parse(&f), Err(GgufError::BadMagic { .. })));
        let mut f = tiny();
        f[4] = 4;
        assert_eq!(Gguf::parse(&f).unwrap_err(), GgufError::UnsupportedVersion { version: 4 });
        let mut f = tiny();
        f[8] = 0xff; // absurd tensor count
        assert!(matches!(Gguf::parse(&f), Err(GgufError::CountTooLarge { offset: 8, .. })));
        let mut f = tiny();
        f[24 + 8 + 17] = 13; // value type of the KV
        assert!(matches!(Gguf::parse(&f), Err(GgufError::BadValueType { ty: 13, offset: 49 })));
        let mut f = tiny();
        f[24 + 8 + 17 + 4] = 3; // alignment 3
        assert!(matches!(Gguf::parse(&f), Err(GgufError::BadAlignment { .. })));
    }

    /// A GGUF of `n` F32 tensors named `t0`, `t1`, ... (dims [1], all at offset 0), with
    /// `dup` naming the last one like the first.
    fn many(n: usize, dup: bool) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((n as u64).to_le_bytes());
        b.extend(0u64.to_le_bytes());
        for i in 0..n {
            let name = if dup && i == n - 1 { "t0".to_string() } else { format!("t{i}") };
            b.extend((name.len() as u64).to_le_bytes());
            b.extend(name.as_bytes());
            b.extend(1u32.to_le_bytes());
            b.extend(1u64.to_le_bytes());
            b.extend(0u32.to_le_bytes());
            b.extend(0u64.to_le_bytes());
        }
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        b.extend(1.0f32.to_le_bytes());
        b
    }

    #[test]
    fn many_tensor_infos_parse_in_linear_time() {
        // 100k infos: a duplicate check that scans the infos so far does 5e9 comparisons.
        let f = many(100_000, false);
        let t0 = std::time::Instant::now();
        assert_eq!(Gguf::parse(&f).unwrap().tensors.len(), 100_000);
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "took {:?}", t0.elapsed());
        let e = Gguf::parse(&many(3, true)).unwrap_err();
        assert!(matches!(e, GgufError::BadTensorInfo { ref name, .. } if name == "t0"), "{e}");
    }

    /// [`tiny`] with tensor `t`'s two dims replaced (ggml type `ty`).
    fn tiny_dims(d0: u64, d1: u64, ty: u32) -> Vec<u8> {
        let mut f = tiny();
        let dims_at = 24 + 8 + 17 + 8 + 9 + 4;
        f[dims_at..dims_at + 8].copy_from_slice(&d0.to_le_bytes());
        f[dims_at + 8..dims_at + 16].copy_from_slice(&d1.to_le_bytes());
        f[dims_at + 16..dims_at + 20].copy_from_slice(&ty.to_le_bytes());
        f
    }

    #[test]
    fn element_counts_beyond_int64_are_refused() {
        // A zero innermost dim made the checked product 0, hiding 2^40 * 2^40 rows: parse
        // accepted it and `matrix` overflowed computing the rows (found by the gguf fuzzer).
        let ok = tiny_dims(0, 1 << 40, 0);
        assert!(Gguf::parse(&ok).is_ok());
        let mut f = tiny_dims(0, 1 << 40, 0);
        // A third dim: rewrite n_dims and insert it after the second.
        let n_dims_at = 24 + 8 + 17 + 8 + 9;
        f[n_dims_at] = 3;
        let third_at = n_dims_at + 4 + 16;
        f.splice(third_at..third_at, (1u64 << 40).to_le_bytes());
        let e = Gguf::parse(&f).unwrap_err();
        assert!(
            matches!(e, GgufError::BadTensorInfo { ref reason, .. } if reason.contains("INT64_MAX")),
            "{e}"
        );
        // A dim of 2^63 is negative as ggml's int64, whatever the type (type 4 has no block
        // layout the reader knows, so no size is computed that would overflow).
        let e = Gguf::parse(&tiny_dims(1 << 63, 1, 4)).unwrap_err();
        assert!(
            matches!(e, GgufError::BadTensorInfo { ref reason, .. } if reason.contains("negative")),
            "{e}"
        );
        let e = Gguf::parse(&tiny_dims(1 << 32, 1 << 31, 4)).unwrap_err();
        assert!(matches!(e, GgufError::BadTensorInfo { .. }), "{e}");
    }

    #[test]
    fn unsupported_type_named() {
        let mut f = tiny();
        let type_at = 24 + 8 + 17 + 8 + 9 + 4 + 16;
        f[type_at] = 14; // Q6_K: dims[0] = 2 is not a block multiple -> BadTensorInfo
        assert!(matches!(Gguf::parse(&f), Err(GgufError::BadTensorInfo { .. })));
        f[type_at] = 9; // Q8_1: no DMMV kernel
        let g = Gguf::parse(&f).unwrap();
        let e = g.matrix("t").unwrap_err();
        assert_eq!(e, GgufError::UnsupportedType { name: "t".into(), id: 9, type_name: "Q8_1" });
        assert!(e.to_string().contains("Q8_1"), "{e}");
        assert!(e.to_string().contains("supported: F32, Q4_0, Q8_0, F16, BF16"), "{e}");
        f[type_at] = 1; // F16 is supported
        let g = Gguf::parse(&f).unwrap();
        assert_eq!(g.matrix("t").unwrap().ty, WeightType::F16);
        assert_eq!(ggml_type_name(12), "Q4_K");
        assert_eq!(ggml_type_name(14), "Q6_K");
        assert!(matches!(g.matrix("u"), Err(GgufError::NoSuchTensor { .. })));
    }

    #[test]
    fn supported_types_list_every_weight_type_and_its_ggml_name() {
        let names: Vec<&str> = WeightType::ALL.iter().map(|t| t.ggml_name()).collect();
        assert_eq!(SUPPORTED_TYPES, names.join(", "));
        for t in WeightType::ALL {
            assert_eq!(ggml_type_name(t.ggml_type()), t.ggml_name(), "{t:?}");
            assert_eq!(
                block_layout(t.ggml_type()),
                Some((t.block_values() as u64, t.block_bytes() as u64)),
                "{t:?}"
            );
        }
    }
}
