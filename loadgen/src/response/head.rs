//! Parsing one HTTP/1.1 response head with httparse into what the reader needs to frame the
//! body: status, version, Content-Length (one value, or a list of equal ones),
//! Transfer-Encoding and the Connection tokens; and finding where a split head can end.

use std::mem::MaybeUninit;

use common::http::{ConnectionOptions, U64_DIGITS, parse_digits, trim_ows};

use super::{MAX_HEAD, MAX_HEADERS, ResponseError};

/// What the head of one response says, taken out of the parse so the buffer can be reused.
#[derive(Clone, Copy, Debug)]
pub(super) struct HeadInfo {
    /// Bytes the head occupies.
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) http10: bool,
    pub(super) content_length: Option<u64>,
    /// Transfer-Encoding is present.
    pub(super) transfer_encoding: bool,
    /// chunked is the final transfer coding.
    pub(super) chunked: bool,
    /// The `Connection` tokens.
    pub(super) connection: ConnectionOptions,
}

/// Parses a response head at the start of `buf`; None if incomplete.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<HeadInfo>, ResponseError> {
    // Uninitialised slots: httparse writes each before exposing it, and zeroing all 64 on
    // every response would be wasted work.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(ResponseError::MalformedHead(error)),
    };
    if len > MAX_HEAD {
        return Err(ResponseError::HeadTooLarge);
    }
    let (Some(version), Some(status)) = (response.version, response.code) else {
        // A complete parse always sets both; treat the impossible as a bad status line.
        return Err(ResponseError::MalformedHead(httparse::Error::Status));
    };
    let mut info = HeadInfo {
        len,
        status,
        http10: version == 0,
        content_length: None,
        transfer_encoding: false,
        chunked: false,
        connection: ConnectionOptions::default(),
    };
    for header in response.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            // A list of equal values ("5, 5") is one length (RFC 9110 section 8.6).
            for item in header.value.split(|&b| b == b',') {
                let n = parse_digits(trim_ows(item), U64_DIGITS)
                    .ok_or(ResponseError::InvalidContentLength)?;
                if info.content_length.is_some_and(|seen| seen != n) {
                    return Err(ResponseError::InvalidContentLength);
                }
                info.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            info.transfer_encoding = true;
            // Only the last coding of the last field decides; any later field overrides.
            if let Some(last) = header.value.rsplit(|&b| b == b',').next() {
                info.chunked = trim_ows(last).eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            info.connection.add_field(header.value);
        }
    }
    Ok(Some(info))
}

/// Where in `input` the head could end: just past the first LF that completes an empty line
/// (CRLF CRLF, or LF LF as httparse also accepts), looking back into `buffered` for the bytes
/// before `input`. None if no such LF is in `input`.
pub(super) fn head_end(buffered: &[u8], input: &[u8]) -> Option<usize> {
    let (mut back2, mut back1) = match buffered {
        [.., a, b] => (*a, *b),
        [b] => (0, *b),
        [] => (0, 0),
    };
    for (i, &byte) in input.iter().enumerate() {
        if byte == b'\n' && (back1 == b'\n' || (back1 == b'\r' && back2 == b'\n')) {
            return Some(i + 1);
        }
        back2 = back1;
        back1 = byte;
    }
    None
}
