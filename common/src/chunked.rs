//! The streaming decoder for `Transfer-Encoding: chunked` bodies, shared by the server (request
//! bodies) and the load generator (response bodies) so both sides accept exactly the same
//! framing. It counts data bytes and keeps none, so decoding allocates nothing.

/// Longest chunk-size line (size digits and extensions, without CRLF) the decoder accepts.
const MAX_CHUNK_LINE: u32 = 4096;
/// Longest trailer field line (without CRLF) the decoder accepts.
const MAX_TRAILER_LINE: u32 = 8192;
/// Most trailer field lines the decoder accepts.
const MAX_TRAILERS: u32 = 100;
/// Most hex digits in a chunk size: 16 fill a u64, so more could only overflow.
const MAX_CHUNK_DIGITS: u32 = 16;

/// What was malformed in a chunked body. After any of these the decoder is stuck and the
/// connection should be closed: where the body ends can no longer be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk-size line did not start with a hex digit, or something other than
    /// whitespace, `;` or CR followed the digits.
    #[error("invalid chunk size")]
    InvalidSize,
    /// The chunk size has more than 16 hex digits, more than a u64 holds.
    #[error("chunk size overflows 64 bits")]
    SizeOverflow,
    /// The chunk-size line (digits and extensions) is longer than 4096 bytes.
    #[error("chunk-size line longer than 4096 bytes")]
    SizeLineTooLong,
    /// A trailer field line is longer than 8192 bytes.
    #[error("trailer line longer than 8192 bytes")]
    TrailerLineTooLong,
    /// More than 100 trailer field lines.
    #[error("more than 100 trailer lines")]
    TooManyTrailers,
    /// A trailer line without a colon, with an empty name, or starting with whitespace
    /// (obs-fold).
    #[error("malformed trailer line")]
    InvalidTrailer,
    /// An LF not preceded by CR.
    #[error("bare LF in chunked framing")]
    BareLf,
    /// A CR not followed by LF, or chunk data not followed by CRLF.
    #[error("missing CRLF in chunked framing")]
    MissingCrlf,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading the chunk-size hex digits.
    #[default]
    Size,
    /// After the digits: whitespace before `;` or CR.
    SizeWs,
    /// Skipping chunk extensions up to CR.
    Ext,
    /// Saw CR ending the size line; LF must follow.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data; CR must follow.
    DataCr,
    /// After chunk data and CR; LF must follow.
    DataLf,
    /// At the start of a trailer line or the final empty line.
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// Saw CR ending a trailer line; LF must follow.
    TrailerLf,
    /// Saw CR of the final empty line; LF must follow.
    FinalLf,
    /// The body is complete.
    Done,
}

/// Streaming decoder for a chunked body; counts data bytes, keeps none.
#[derive(Clone, Debug, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// The chunk size being read, then the data bytes left in the chunk.
    remaining: u64,
    /// Hex digits read of the current chunk size.
    digits: u32,
    /// Bytes on the current size or trailer line, for the line caps.
    line_len: u32,
    /// Trailer lines seen.
    trailers: u32,
    /// The current trailer line has had its colon.
    colon: bool,
}

/// What one [`ChunkedDecoder::feed`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkProgress {
    /// Bytes of the input consumed (framing and data); the rest is for the caller to keep.
    pub consumed: usize,
    /// How many of the consumed bytes were body data.
    pub data: u64,
    /// The body, including trailers and the final CRLF, is complete; `consumed` stops right
    /// after that CRLF.
    pub done: bool,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes a prefix of `input`; returns how many bytes were consumed, how many of them were
    /// body data, and whether the body (incl. trailers and final CRLF) is complete.
    ///
    /// Input may be split at any byte. Once done, further calls consume nothing.
    ///
    /// # Errors
    ///
    /// A [`ChunkError`] for a malformed chunk size, extension or trailer line, a missing CR
    /// or LF, or a line over its cap. The decoder is then stuck; the connection should close.
    pub fn feed(&mut self, input: &[u8]) -> Result<ChunkProgress, ChunkError> {
        let mut pos = 0;
        let mut data = 0u64;
        while pos < input.len() {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Data => {
                    // Data is skipped in bulk: this is where the bytes of a large body go.
                    let available = input.len() - pos;
                    let take =
                        usize::try_from(self.remaining).map_or(available, |r| r.min(available));
                    pos += take;
                    data += take as u64;
                    self.remaining -= take as u64;
                    if self.remaining == 0 {
                        self.state = ChunkState::DataCr;
                    }
                }
                _ => {
                    let byte = input[pos];
                    pos += 1;
                    self.state = self.step(byte)?;
                }
            }
        }
        Ok(ChunkProgress {
            consumed: pos,
            data,
            done: self.state == ChunkState::Done,
        })
    }

    /// True once the body, including trailers and the final CRLF, is complete.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Advances the framing state machine by one byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<ChunkState, ChunkError> {
        let next = match self.state {
            ChunkState::Size => match hex_value(byte) {
                Some(digit) => {
                    if self.digits == MAX_CHUNK_DIGITS {
                        return Err(ChunkError::SizeOverflow);
                    }
                    self.digits += 1;
                    self.remaining = (self.remaining << 4) | digit;
                    self.count_size_line()?;
                    ChunkState::Size
                }
                None if self.digits == 0 => return Err(ChunkError::InvalidSize),
                None => self.after_size(byte)?,
            },
            ChunkState::SizeWs => self.after_size(byte)?,
            ChunkState::Ext => match byte {
                b'\r' => ChunkState::SizeLf,
                b'\n' => return Err(ChunkError::BareLf),
                _ => {
                    self.count_size_line()?;
                    ChunkState::Ext
                }
            },
            ChunkState::SizeLf => {
                if byte != b'\n' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.digits = 0;
                self.line_len = 0;
                if self.remaining == 0 {
                    ChunkState::TrailerStart
                } else {
                    ChunkState::Data
                }
            }
            ChunkState::DataCr if byte == b'\r' => ChunkState::DataLf,
            ChunkState::DataCr if byte == b'\n' => return Err(ChunkError::BareLf),
            ChunkState::DataLf if byte == b'\n' => ChunkState::Size,
            ChunkState::DataCr | ChunkState::DataLf => return Err(ChunkError::MissingCrlf),
            ChunkState::TrailerStart => match byte {
                b'\r' => ChunkState::FinalLf,
                b'\n' => return Err(ChunkError::BareLf),
                // Whitespace here would be obs-fold or a nameless field; colon, an empty name.
                b' ' | b'\t' | b':' => return Err(ChunkError::InvalidTrailer),
                _ => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(ChunkError::TooManyTrailers);
                    }
                    self.line_len = 1;
                    self.colon = false;
                    ChunkState::Trailer
                }
            },
            ChunkState::Trailer => match byte {
                b'\r' if self.colon => ChunkState::TrailerLf,
                b'\r' => return Err(ChunkError::InvalidTrailer),
                b'\n' => return Err(ChunkError::BareLf),
                _ => {
                    self.colon |= byte == b':';
                    self.line_len += 1;
                    if self.line_len > MAX_TRAILER_LINE {
                        return Err(ChunkError::TrailerLineTooLong);
                    }
                    ChunkState::Trailer
                }
            },
            ChunkState::TrailerLf if byte == b'\n' => ChunkState::TrailerStart,
            ChunkState::FinalLf if byte == b'\n' => ChunkState::Done,
            ChunkState::TrailerLf | ChunkState::FinalLf => return Err(ChunkError::MissingCrlf),
            // feed never steps in these states; staying put is the harmless answer.
            ChunkState::Data | ChunkState::Done => self.state,
        };
        Ok(next)
    }

    /// The byte after the size digits: BWS, then extensions or the line end.
    fn after_size(&mut self, byte: u8) -> Result<ChunkState, ChunkError> {
        match byte {
            b' ' | b'\t' => {
                self.count_size_line()?;
                Ok(ChunkState::SizeWs)
            }
            b';' => {
                self.count_size_line()?;
                Ok(ChunkState::Ext)
            }
            b'\r' => Ok(ChunkState::SizeLf),
            b'\n' => Err(ChunkError::BareLf),
            _ => Err(ChunkError::InvalidSize),
        }
    }

    fn count_size_line(&mut self) -> Result<(), ChunkError> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE {
            Err(ChunkError::SizeLineTooLong)
        } else {
            Ok(())
        }
    }
}

fn hex_value(byte: u8) -> Option<u64> {
    match byte {
        b'0'..=b'9' => Some(u64::from(byte - b'0')),
        b'a'..=b'f' => Some(u64::from(byte - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(byte - b'A' + 10)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, as a connection would, stopping at done.
    fn feed_in_steps(input: &[u8], step: usize) -> Result<ChunkProgress, ChunkError> {
        let mut decoder = ChunkedDecoder::new();
        let mut total = ChunkProgress {
            consumed: 0,
            data: 0,
            done: false,
        };
        while !total.done && total.consumed < input.len() {
            let end = (total.consumed + step).min(input.len());
            let progress = decoder.feed(&input[total.consumed..end])?;
            assert!(progress.consumed <= end - total.consumed);
            total.consumed += progress.consumed;
            total.data += progress.data;
            total.done = progress.done;
        }
        Ok(total)
    }

    fn decode(input: &[u8]) -> Result<ChunkProgress, ChunkError> {
        ChunkedDecoder::new().feed(input)
    }

    const BODY: &[u8] = b"5\r\nhello\r\n1A;name=value;q=\"a;b\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n";

    #[test]
    fn chunked_whole_and_byte_by_byte_agree() {
        let pipelined = [BODY, b"GET / HTTP/1.1\r\n"].concat();
        let expected = ChunkProgress {
            consumed: BODY.len(),
            data: 31,
            done: true,
        };
        assert_eq!(decode(&pipelined), Ok(expected));
        for step in [1, 2, 3, 7, 64] {
            assert_eq!(feed_in_steps(&pipelined, step), Ok(expected), "step {step}");
        }
    }

    #[test]
    fn chunked_stops_at_final_crlf() {
        let mut decoder = ChunkedDecoder::new();
        let progress = decoder.feed(b"3\r\nabc\r\n0\r\n\r\nGET /").unwrap();
        assert_eq!(
            progress,
            ChunkProgress {
                consumed: 13,
                data: 3,
                done: true
            }
        );
        assert!(decoder.is_done());
        assert_eq!(
            decoder.feed(b"GET /").unwrap(),
            ChunkProgress {
                consumed: 0,
                data: 0,
                done: true
            }
        );
    }

    #[test]
    fn chunked_partial_progress() {
        let mut decoder = ChunkedDecoder::new();
        assert_eq!(
            decoder.feed(b"a\r\n0123").unwrap(),
            ChunkProgress {
                consumed: 7,
                data: 4,
                done: false
            }
        );
        assert_eq!(
            decoder.feed(b"456789\r").unwrap(),
            ChunkProgress {
                consumed: 7,
                data: 6,
                done: false
            }
        );
        assert_eq!(
            decoder.feed(b"\n0\r\n\r").unwrap(),
            ChunkProgress {
                consumed: 5,
                data: 0,
                done: false
            }
        );
        assert!(!decoder.is_done());
        assert_eq!(
            decoder.feed(b"\n").unwrap(),
            ChunkProgress {
                consumed: 1,
                data: 0,
                done: true
            }
        );
    }

    #[test]
    fn chunk_extensions_and_whitespace() {
        assert_eq!(
            decode(b"4 ;ext\r\nabcd\r\n0;last\r\n\r\n").map(|p| (p.data, p.done)),
            Ok((4, true))
        );
        let long_ext = format!("4;{}\r\nabcd\r\n0\r\n\r\n", "e".repeat(4094));
        assert_eq!(decode(long_ext.as_bytes()).map(|p| p.done), Ok(true));
        let too_long = format!("4;{}\r\nabcd\r\n0\r\n\r\n", "e".repeat(4095));
        assert_eq!(
            decode(too_long.as_bytes()),
            Err(ChunkError::SizeLineTooLong)
        );
    }

    #[test]
    fn chunk_trailers() {
        assert_eq!(
            decode(b"0\r\nA: 1\r\nB:2\r\n\r\n").map(|p| (p.consumed, p.done)),
            Ok((16, true))
        );
        let line = format!("0\r\nX:{}\r\n\r\n", "v".repeat(8190));
        assert_eq!(decode(line.as_bytes()).map(|p| p.done), Ok(true));
        let line = format!("0\r\nX:{}\r\n\r\n", "v".repeat(8191));
        assert_eq!(decode(line.as_bytes()), Err(ChunkError::TrailerLineTooLong));
        let many = format!("0\r\n{}\r\n", "T: v\r\n".repeat(100));
        assert_eq!(decode(many.as_bytes()).map(|p| p.done), Ok(true));
        let many = format!("0\r\n{}\r\n", "T: v\r\n".repeat(101));
        assert_eq!(decode(many.as_bytes()), Err(ChunkError::TooManyTrailers));
        for (bad, error) in [
            (&b"0\r\nno colon\r\n\r\n"[..], ChunkError::InvalidTrailer),
            (b"0\r\n folded: x\r\n\r\n", ChunkError::InvalidTrailer),
            (b"0\r\n: x\r\n\r\n", ChunkError::InvalidTrailer),
            (b"0\r\nA: 1\n\r\n", ChunkError::BareLf),
            (b"0\r\n\rx", ChunkError::MissingCrlf),
        ] {
            assert_eq!(decode(bad), Err(error), "{bad:?}");
        }
    }

    #[test]
    fn chunk_size_errors() {
        for (bad, error) in [
            (&b"g\r\n"[..], ChunkError::InvalidSize),
            (b"\r\n", ChunkError::InvalidSize),
            (b";ext\r\n", ChunkError::InvalidSize),
            (b" 5\r\n", ChunkError::InvalidSize),
            (b"-5\r\n", ChunkError::InvalidSize),
            (b"0x5\r\n", ChunkError::InvalidSize),
            (b"5 5\r\n", ChunkError::InvalidSize),
            (b"5\n", ChunkError::BareLf),
            (b"5\rx", ChunkError::MissingCrlf),
            (b"5\r\nhelloX", ChunkError::MissingCrlf),
            (b"5\r\nhello\n", ChunkError::BareLf),
            (b"5\r\nhello\r\r", ChunkError::MissingCrlf),
            (b"0\r\n\n", ChunkError::BareLf),
            (b"1;a\nb\r\n", ChunkError::BareLf),
            (b"10000000000000000\r\n", ChunkError::SizeOverflow),
            (b"00000000000000001\r\n", ChunkError::SizeOverflow),
        ] {
            assert_eq!(decode(bad), Err(error), "{bad:?}");
            assert_eq!(feed_in_steps(bad, 1), Err(error), "{bad:?}");
        }
        // Sixteen hex digits are the most a u64 holds and are accepted.
        let max = decode(b"ffffffffffffffff\r\nab").unwrap();
        assert_eq!(
            max,
            ChunkProgress {
                consumed: 20,
                data: 2,
                done: false
            }
        );
    }

    #[test]
    fn errors_name_what_was_wrong() {
        assert_eq!(ChunkError::BareLf.to_string(), "bare LF in chunked framing");
        assert_eq!(
            ChunkError::SizeOverflow.to_string(),
            "chunk size overflows 64 bits"
        );
    }
}
