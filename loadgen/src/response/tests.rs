//! The response reader's tests: framing, splits at every byte, limits, errors, buffer reuse,
//! the memo of the last head.

use super::*;

const OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world";

/// Feeds `input` in the given pieces after one start; returns the response, the total
/// consumed and the body bytes gathered through `Step::body`.
fn read_in_pieces(
    reader: &mut ResponseReader,
    pieces: &[&[u8]],
) -> (Option<Response>, usize, Vec<u8>, u64) {
    let mut done = None;
    let mut consumed = 0;
    let mut body = Vec::new();
    let mut body_bytes = 0;
    for piece in pieces {
        let step = reader.feed(piece).unwrap();
        assert!(step.consumed <= piece.len());
        assert!(step.body.end <= step.consumed);
        body.extend_from_slice(&piece[step.body.clone()]);
        body_bytes += step.body_bytes;
        consumed += step.consumed;
        if step.done.is_some() {
            assert!(done.is_none(), "two responses from one start");
            done = step.done;
        }
    }
    (done, consumed, body, body_bytes)
}

fn read_all(head_request: bool, input: &[u8]) -> Result<Step, ResponseError> {
    let mut reader = ResponseReader::new();
    reader.start(head_request);
    reader.feed(input)
}

#[test]
fn content_length_split_at_every_byte() {
    let expected = Response {
        status: 200,
        keep_alive: true,
        body_len: 11,
    };
    let mut reader = ResponseReader::new();
    for split in 0..=OK.len() {
        reader.start(false);
        assert!(!reader.started());
        let (done, consumed, body, body_bytes) =
            read_in_pieces(&mut reader, &[&OK[..split], &OK[split..]]);
        assert_eq!(done, Some(expected), "split at {split}");
        assert_eq!(consumed, OK.len(), "split at {split}");
        assert_eq!(body, b"hello world", "split at {split}");
        assert_eq!(body_bytes, 11, "split at {split}");
        assert!(reader.started());
    }
    // And one byte at a time.
    reader.start(false);
    let pieces: Vec<&[u8]> = OK.chunks(1).collect();
    let (done, consumed, body, _) = read_in_pieces(&mut reader, &pieces);
    assert_eq!(done, Some(expected));
    assert_eq!(consumed, OK.len());
    assert_eq!(body, b"hello world");
}

#[test]
fn pipelined_responses_in_one_buffer() {
    let second =
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n";
    let buf = [OK, second].concat();
    let mut reader = ResponseReader::new();
    reader.start(false);
    let step = reader.feed(&buf).unwrap();
    assert_eq!(
        step,
        Step {
            consumed: OK.len(),
            body: OK.len() - 11..OK.len(),
            body_bytes: 11,
            done: Some(Response {
                status: 200,
                keep_alive: true,
                body_len: 11
            }),
        }
    );
    // Without a start nothing more is taken.
    assert_eq!(reader.feed(&buf[step.consumed..]).unwrap().consumed, 0);
    reader.start(false);
    let rest = &buf[step.consumed..];
    let step = reader.feed(rest).unwrap();
    assert_eq!(step.consumed, second.len());
    assert_eq!(&rest[step.body.clone()], b"404 Not Found\n");
    assert_eq!(
        step.done,
        Some(Response {
            status: 404,
            keep_alive: false,
            body_len: 14
        })
    );
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\n\r\n";
    let buf = [&response[..], b"HTTP/1.1 200 OK\r\n"].concat();
    let step = read_all(false, &buf).unwrap();
    assert_eq!(
        step,
        Step {
            consumed: response.len(),
            body: 0..0,
            body_bytes: 31,
            done: Some(Response {
                status: 200,
                keep_alive: true,
                body_len: 31
            }),
        }
    );
    let mut reader = ResponseReader::new();
    reader.start(false);
    let pieces: Vec<&[u8]> = response.chunks(3).collect();
    let (done, consumed, body, body_bytes) = read_in_pieces(&mut reader, &pieces);
    assert_eq!(done.map(|r| r.body_len), Some(31));
    assert_eq!(consumed, response.len());
    assert!(body.is_empty());
    assert_eq!(body_bytes, 31);
}

#[test]
fn chunked_overrides_content_length() {
    let response =
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let step = read_all(false, response).unwrap();
    assert_eq!(step.consumed, response.len());
    assert_eq!(step.done.map(|r| r.body_len), Some(0));
}

#[test]
fn bad_chunked_framing_is_an_error() {
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert_eq!(
        read_all(false, response),
        Err(ResponseError::Chunked(ChunkError::InvalidSize))
    );
}

#[test]
fn interim_100_continue_is_skipped() {
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let buf = [&interim[..], OK].concat();
    let step = read_all(false, &buf).unwrap();
    assert_eq!(step.consumed, buf.len());
    assert_eq!(&buf[step.body.clone()], b"hello world");
    assert_eq!(
        step.done,
        Some(Response {
            status: 200,
            keep_alive: true,
            body_len: 11
        })
    );
    // The interim head alone: consumed, started, nothing done yet.
    let mut reader = ResponseReader::new();
    reader.start(false);
    let step = reader.feed(interim).unwrap();
    assert_eq!(step.consumed, interim.len());
    assert_eq!(step.done, None);
    assert!(reader.started());
    assert_eq!(reader.feed(OK).unwrap().done.map(|r| r.status), Some(200));
}

#[test]
fn head_response_has_no_body() {
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 228\r\n\r\n";
    let buf = [&head[..], b"HTTP/1.1 200 OK\r\n"].concat();
    let step = read_all(true, &buf).unwrap();
    assert_eq!(
        step,
        Step {
            consumed: head.len(),
            body: 0..0,
            body_bytes: 0,
            done: Some(Response {
                status: 200,
                keep_alive: true,
                body_len: 0
            }),
        }
    );
}

#[test]
fn no_body_statuses() {
    for status in ["204 No Content", "304 Not Modified"] {
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
        let step = read_all(false, head.as_bytes()).unwrap();
        assert_eq!(step.consumed, head.len());
        assert_eq!(step.done.map(|r| r.body_len), Some(0));
    }
    let zero = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        read_all(false, zero).unwrap().done.map(|r| r.body_len),
        Some(0)
    );
}

#[test]
fn http10_close_delimited_body() {
    let mut reader = ResponseReader::new();
    reader.start(false);
    let step = reader
        .feed(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc")
        .unwrap();
    assert_eq!(step.done, None);
    assert_eq!(step.body_bytes, 3);
    let step = reader.feed(b"defg").unwrap();
    assert_eq!(
        (step.consumed, step.body.clone(), step.body_bytes),
        (4, 0..4, 4)
    );
    assert_eq!(
        reader.finish_on_eof(),
        Ok(Response {
            status: 200,
            keep_alive: false,
            body_len: 7
        })
    );
    // A close-delimited body is never keep-alive, whatever the server says.
    reader.start(false);
    reader
        .feed(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nxy")
        .unwrap();
    assert_eq!(
        reader.finish_on_eof(),
        Ok(Response {
            status: 200,
            keep_alive: false,
            body_len: 2
        })
    );
}

#[test]
fn short_body_names_expected_and_received() {
    let mut reader = ResponseReader::new();
    reader.start(false);
    let step = reader.feed(&OK[..OK.len() - 4]).unwrap();
    assert_eq!(step.done, None);
    let error = reader.finish_on_eof().unwrap_err();
    assert_eq!(
        error,
        ResponseError::ShortBody {
            expected: 11,
            received: 7
        }
    );
    assert_eq!(
        error.to_string(),
        "body cut short by EOF: expected 11 bytes, received 7"
    );
    reader.start(false);
    reader
        .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        .unwrap();
    assert_eq!(
        reader.finish_on_eof(),
        Err(ResponseError::ShortChunkedBody { received: 3 })
    );
}

#[test]
fn eof_before_or_inside_a_head() {
    let mut reader = ResponseReader::new();
    reader.start(false);
    assert_eq!(reader.finish_on_eof(), Err(ResponseError::NoResponse));
    reader.start(false);
    reader.feed(b"HTTP/1.1 200").unwrap();
    assert_eq!(
        reader.finish_on_eof(),
        Err(ResponseError::ShortHead { received: 12 })
    );
}

#[test]
fn malformed_heads_are_errors() {
    for (bad, error) in [
        (&b"HTTP/2.0 200 OK\r\n\r\n"[..], httparse::Error::Version),
        (b"\x16\x03\x03\x00\x02\x02\x28", httparse::Error::Version),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", httparse::Error::Status),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
            httparse::Error::HeaderName,
        ),
    ] {
        assert_eq!(
            read_all(false, bad),
            Err(ResponseError::MalformedHead(error)),
            "{bad:?}"
        );
    }
    let error = read_all(false, b"HTTP/2.0 200 OK\r\n\r\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed response head: invalid HTTP version"
    );
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}\r\n",
        "X: v\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(
        read_all(false, many.as_bytes()),
        Err(ResponseError::MalformedHead(
            httparse::Error::TooManyHeaders
        ))
    );
}

#[test]
fn head_over_64_kib_is_an_error() {
    let fixed = b"HTTP/1.1 200 OK\r\nX: \r\nContent-Length: 0\r\n\r\n".len();
    let head_of = |len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\nContent-Length: 0\r\n\r\n",
            "v".repeat(len - fixed)
        )
        .into_bytes()
    };
    let fits = head_of(MAX_HEAD);
    assert_eq!(read_all(false, &fits).unwrap().consumed, MAX_HEAD);
    let mut reader = ResponseReader::new();
    reader.start(false);
    let pieces: Vec<&[u8]> = fits.chunks(1000).collect();
    let (done, consumed, _, _) = read_in_pieces(&mut reader, &pieces);
    assert_eq!((done.map(|r| r.status), consumed), (Some(200), MAX_HEAD));

    let too_large = head_of(MAX_HEAD + 1);
    assert_eq!(
        read_all(false, &too_large),
        Err(ResponseError::HeadTooLarge)
    );
    reader.start(false);
    let mut result = Ok(());
    for piece in too_large.chunks(1000) {
        if let Err(error) = reader.feed(piece) {
            result = Err(error);
            break;
        }
    }
    assert_eq!(result, Err(ResponseError::HeadTooLarge));
}

#[test]
fn content_length_rules() {
    let same = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nab";
    assert_eq!(
        read_all(false, same).unwrap().done.map(|r| r.body_len),
        Some(2)
    );
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
    ] {
        assert_eq!(
            read_all(false, bad),
            Err(ResponseError::InvalidContentLength),
            "{bad:?}"
        );
    }
}

#[test]
fn body_range_over_three_pieces() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n";
    let body = b"0123456789abcdefghij";
    let tail = b"HTTP/1.1 204 No Content\r\n\r\n";
    let stream = [&head[..], body, tail].concat();
    // Piece 1 ends inside the head, piece 2 inside the body, piece 3 holds the rest of the
    // body and the next response.
    let cuts = [head.len() - 5, head.len() + 7, stream.len()];
    let mut reader = ResponseReader::new();
    reader.start(false);
    let mut gathered = Vec::new();
    let mut at = 0;
    let mut done = None;
    for end in cuts {
        let piece = &stream[at..end];
        let step = reader.feed(piece).unwrap();
        gathered.extend_from_slice(&piece[step.body.clone()]);
        at += step.consumed;
        done = done.or(step.done);
    }
    assert_eq!(gathered, body);
    assert_eq!(at, head.len() + body.len());
    assert_eq!(done.map(|r| r.body_len), Some(20));
    reader.start(false);
    let step = reader.feed(&stream[at..]).unwrap();
    assert_eq!(step.consumed, tail.len());
    assert_eq!(step.done.map(|r| r.status), Some(204));
}

#[test]
fn keep_alive_rules() {
    let cases: [(&[u8], bool); 8] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            true,
        ),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
    ];
    for (response, keep_alive) in cases {
        let mut reader = ResponseReader::new();
        reader.start(false);
        let step = reader.feed(response).unwrap();
        let done = step.done.or_else(|| reader.finish_on_eof().ok());
        assert_eq!(
            done.map(|r| r.keep_alive),
            Some(keep_alive),
            "{:?}",
            String::from_utf8_lossy(response)
        );
    }
}

#[test]
fn interim_and_chunked_split_at_every_byte() {
    let stream: &[u8] = b"HTTP/1.1 100 Continue\r\nX: 1\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let mut reader = ResponseReader::new();
    for split in 0..=stream.len() {
        reader.start(false);
        let (done, consumed, _, body_bytes) =
            read_in_pieces(&mut reader, &[&stream[..split], &stream[split..]]);
        let expected = Response {
            status: 200,
            keep_alive: true,
            body_len: 3,
        };
        assert_eq!(done, Some(expected), "split at {split}");
        assert_eq!(
            (consumed, body_bytes),
            (stream.len(), 3),
            "split at {split}"
        );
    }
}

#[test]
fn body_after_a_split_head_is_not_buffered() {
    let mut reader = ResponseReader::new();
    reader.start(false);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n";
    let rest = [&head[10..], &[b'x'; 16384][..]].concat();
    let (done, consumed, body, _) = read_in_pieces(&mut reader, &[&head[..10], &rest]);
    assert_eq!(done.map(|r| r.body_len), Some(16384));
    assert_eq!(consumed, head.len() + 16384);
    assert_eq!(body.len(), 16384);
    assert!(reader.head.capacity() < 1024, "{}", reader.head.capacity());
}

#[test]
fn steady_state_reuses_the_head_buffer() {
    let mut reader = ResponseReader::new();
    reader.start(false);
    read_in_pieces(&mut reader, &[&OK[..10], &OK[10..]]);
    let capacity = reader.head.capacity();
    let ptr = reader.head.as_ptr();
    for _ in 0..10 {
        reader.start(false);
        let (done, ..) = read_in_pieces(&mut reader, &[&OK[..10], &OK[10..]]);
        assert!(done.is_some());
        assert_eq!(reader.head.capacity(), capacity);
        assert_eq!(reader.head.as_ptr(), ptr);
    }
}

/// Responses that share prefixes and differ in one field each, in an order where each one's
/// head starts like the previous one's: a memo that matched on less than the whole head would
/// frame one of them wrongly.
const ALIKE: [&[u8]; 8] = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nworld",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhello!!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhello!!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhello!!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    b"HTTP/1.1 204 OK\r\nContent-Length: 7\r\n\r\n",
];

#[test]
fn one_reader_reads_alike_responses_as_fresh_readers_do() {
    let mut reader = ResponseReader::new();
    for round in 0..3 {
        for (i, response) in ALIKE.iter().enumerate() {
            for head_request in [false, true] {
                reader.start(head_request);
                let step = reader.feed(response).unwrap();
                let fresh = read_all(head_request, response).unwrap();
                assert_eq!(
                    step, fresh,
                    "round {round}, response {i}, HEAD {head_request}"
                );
                assert!(step.done.is_some(), "response {i}");
            }
        }
    }
}

#[test]
fn a_repeated_head_is_answered_by_the_memo() {
    let mut reader = ResponseReader::new();
    let head_len = OK.len() - 11;
    reader.start(false);
    read_in_pieces(&mut reader, &[OK]);
    // One head parsed: nothing kept, so a connection that makes one request allocates nothing.
    assert_eq!(reader.memo.capacity(), 0);
    assert!(reader.memo_info.is_none());
    reader.start(false);
    read_in_pieces(&mut reader, &[OK]);
    assert_eq!(reader.memo, &OK[..head_len]);
    // What the memo says is what the reader acts on: a doctored entry shows it was used.
    let mut doctored = reader.memo_info.unwrap();
    doctored.status = 299;
    reader.memo_info = Some(doctored);
    reader.start(false);
    let (done, consumed, body, _) = read_in_pieces(&mut reader, &[OK]);
    assert_eq!(done.map(|r| r.status), Some(299));
    assert_eq!((consumed, body.as_slice()), (OK.len(), &b"hello world"[..]));
    // A head that differs is parsed, and replaces the entry.
    let other =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world!";
    reader.start(false);
    let (done, ..) = read_in_pieces(&mut reader, &[other]);
    assert_eq!(done.map(|r| (r.status, r.body_len)), Some((200, 12)));
    assert_eq!(reader.memo, &other[..other.len() - 12]);
}

#[test]
fn a_head_over_the_memo_limit_is_parsed_every_time() {
    let mut long = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
    long.resize(long.len() + MEMO_HEAD, b'a');
    long.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\nhi");
    let mut reader = ResponseReader::new();
    for _ in 0..3 {
        reader.start(false);
        let (done, ..) = read_in_pieces(&mut reader, &[&long]);
        assert_eq!(done.map(|r| r.body_len), Some(2));
        assert!(reader.memo_info.is_none());
        assert_eq!(reader.memo.capacity(), 0);
    }
}
