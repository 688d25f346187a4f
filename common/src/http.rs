//! The HTTP/1.1 field-value tokens both the server (reading requests) and the load generator
//! (reading responses) parse: optional whitespace, decimal lengths and the `Connection`
//! options. httparse splits a head into fields; what a field's value means is decided here, so
//! the two sides cannot read the same bytes differently.

/// Digits of `u64::MAX` (18446744073709551615): the most [`parse_digits`] can ever accept.
pub const U64_DIGITS: usize = 20;

/// Trims optional whitespace (SP and HTAB, RFC 9110 section 5.6.3) from both ends.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses 1..=`max_digits` ASCII decimal digits and nothing else (no sign, no whitespace, no
/// list); None if malformed, longer than `max_digits`, or too large for a u64. Leading zeros
/// count as digits.
pub fn parse_digits(s: &[u8], max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits {
        return None;
    }
    s.iter().try_fold(0u64, |value, &b| {
        if b.is_ascii_digit() {
            value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// What the `Connection` fields of one message say about keeping the connection
/// (RFC 9112 section 9.3). Other tokens (`upgrade`, field names) do not matter here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// A `close` token: the connection ends after this message.
    pub close: bool,
    /// A `keep-alive` token: how an HTTP/1.0 peer asks to keep the connection.
    pub keep_alive: bool,
}

impl ConnectionOptions {
    /// Adds the tokens of one `Connection` field value: a comma list, any case, optional
    /// whitespace around each token. Call it once per field; tokens accumulate.
    pub fn add_field(&mut self, value: &[u8]) {
        for token in value.split(|&b| b == b',') {
            let token = trim_ows(token);
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
        }
    }

    /// Whether the connection stays open after the message: HTTP/1.1 unless `close`;
    /// HTTP/1.0 only with `keep-alive`, and `close` wins over it.
    pub fn persists(self, http10: bool) -> bool {
        !self.close && (!http10 || self.keep_alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_ows_strips_sp_and_htab_only() {
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b"  close"), b"close");
        assert_eq!(trim_ows(b"close\t "), b"close");
        assert_eq!(trim_ows(b"\t5 5 "), b"5 5");
        // CR, LF and other whitespace are not OWS.
        assert_eq!(trim_ows(b"\r5\n"), b"\r5\n");
        assert_eq!(trim_ows(b"\x0b5"), b"\x0b5");
    }

    #[test]
    fn parse_digits_takes_plain_decimal_only() {
        assert_eq!(parse_digits(b"0", 20), Some(0));
        assert_eq!(parse_digits(b"007", 20), Some(7));
        assert_eq!(parse_digits(b"5000000", 19), Some(5_000_000));
        for bad in [
            &b""[..],
            b" 5",
            b"5 ",
            b"+5",
            b"-1",
            b"0x10",
            b"5,5",
            b"5 5",
            b"1e3",
            b"\xd9\xa1",
        ] {
            assert_eq!(parse_digits(bad, 20), None, "{bad:?}");
        }
    }

    #[test]
    fn parse_digits_caps_length_and_overflow() {
        assert_eq!(
            parse_digits(b"18446744073709551615", U64_DIGITS),
            Some(u64::MAX)
        );
        assert_eq!(parse_digits(b"18446744073709551616", U64_DIGITS), None);
        assert_eq!(parse_digits(b"99999999999999999999", U64_DIGITS), None);
        // Fits a u64 but is longer than the caller allows.
        assert_eq!(parse_digits(b"12345678901234567890", 19), None);
        assert_eq!(
            parse_digits(b"9999999999999999999", 19),
            Some(9_999_999_999_999_999_999)
        );
        // Leading zeros count against the cap, so a padded small number is refused too.
        assert_eq!(parse_digits(b"000000000000000000001", U64_DIGITS), None);
        assert_eq!(parse_digits(b"12", 1), None);
    }

    fn options(fields: &[&[u8]]) -> ConnectionOptions {
        let mut options = ConnectionOptions::default();
        for field in fields {
            options.add_field(field);
        }
        options
    }

    #[test]
    fn connection_tokens_any_case_in_lists() {
        let close = ConnectionOptions {
            close: true,
            keep_alive: false,
        };
        let keep = ConnectionOptions {
            close: false,
            keep_alive: true,
        };
        assert_eq!(options(&[b""]), ConnectionOptions::default());
        assert_eq!(options(&[b"close"]), close);
        assert_eq!(options(&[b"CLOSE"]), close);
        assert_eq!(options(&[b"Keep-Alive"]), keep);
        assert_eq!(options(&[b" upgrade ,\tClose "]), close);
        assert_eq!(options(&[b",,keep-alive,"]), keep);
        assert_eq!(
            options(&[b"keep-alive, close"]),
            ConnectionOptions {
                close: true,
                keep_alive: true
            }
        );
        // Across fields the tokens accumulate.
        assert_eq!(
            options(&[b"keep-alive", b"close"]),
            options(&[b"keep-alive, close"])
        );
        // Only whole tokens count.
        for other in [
            &b"closed"[..],
            b"keep alive",
            b"keep-alive-ish",
            b"close;x",
            b"clo se",
        ] {
            assert_eq!(options(&[other]), ConnectionOptions::default(), "{other:?}");
        }
    }

    #[test]
    fn persistence_by_version() {
        let none = ConnectionOptions::default();
        let close = options(&[b"close"]);
        let keep = options(&[b"keep-alive"]);
        let both = options(&[b"keep-alive, close"]);
        assert!(none.persists(false));
        assert!(!none.persists(true));
        assert!(!close.persists(false));
        assert!(!close.persists(true));
        assert!(keep.persists(false));
        assert!(keep.persists(true));
        assert!(!both.persists(false));
        assert!(!both.persists(true));
    }
}
