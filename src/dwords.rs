//! Reading PM4 streams from files: binary little-endian dwords or text hex dwords.

/// Why a file could not be read as a dword stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DwordsError {
    /// A binary file whose length is not a multiple of 4.
    #[error("binary stream of {len} bytes is not a whole number of dwords")]
    Ragged {
        /// File length in bytes.
        len: usize,
    },
    /// A text file with a token that is not a 32-bit hex number.
    #[error("line {line}: {token:?} is not a 32-bit hex dword")]
    BadToken {
        /// 1-based line number.
        line: usize,
        /// The offending token.
        token: String,
    },
}

/// Parse a dword stream. Text is recognised when the bytes are UTF-8 made only of hex digits,
/// an optional `0x` prefix per token, whitespace, commas and `#` comments; each token is one
/// dword (one or more per line). Anything else is binary little-endian dwords.
///
/// Errors: [`DwordsError`] naming the line or length.
pub fn parse(bytes: &[u8]) -> Result<Vec<u32>, DwordsError> {
    match std::str::from_utf8(bytes) {
        Ok(text) if looks_like_text(text) => parse_text(text),
        _ => parse_binary(bytes),
    }
}

fn looks_like_text(text: &str) -> bool {
    !text.trim().is_empty()
        && text.chars().all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace())
        && text.lines().any(|l| {
            let l = l.split('#').next().unwrap_or("").trim();
            !l.is_empty()
        })
}

fn parse_text(text: &str) -> Result<Vec<u32>, DwordsError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.split('#').next().unwrap_or("");
        for token in body.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()) {
            let digits =
                token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")).unwrap_or(token);
            let ok = !digits.is_empty() && digits.len() <= 8;
            match u32::from_str_radix(digits, 16) {
                Ok(v) if ok => out.push(v),
                _ => return Err(DwordsError::BadToken { line: i + 1, token: token.to_string() }),
            }
        }
    }
    Ok(out)
}

fn parse_binary(bytes: &[u8]) -> Result<Vec<u32>, DwordsError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(DwordsError::Ragged { len: bytes.len() });
    }
    Ok(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_prefixes_commas_and_comments() {
        let t = "# header\n0xC0011000 0x00000000, deadbeef\n  \n10 # trailing\n";
        assert_eq!(parse(t.as_bytes()).unwrap(), vec![0xC001_1000, 0, 0xDEAD_BEEF, 0x10]);
    }

    #[test]
    fn binary_little_endian() {
        assert_eq!(
            parse(&[0x00, 0x10, 0x01, 0xC0, 0xFF, 0, 0, 0]).unwrap(),
            vec![0xC001_1000, 0xFF]
        );
    }

    #[test]
    fn bad_token_names_line() {
        assert_eq!(
            parse(b"0x1\n0x123456789\n"),
            Err(DwordsError::BadToken { line: 2, token: "0x123456789".into() })
        );
        assert_eq!(
            parse(b"0x1 zz\n").unwrap_err(),
            DwordsError::BadToken { line: 1, token: "zz".into() }
        );
    }

    #[test]
    fn ragged_binary() {
        assert_eq!(parse(&[1, 2, 3, 0xFF, 0x80]), Err(DwordsError::Ragged { len: 5 }));
    }
}
