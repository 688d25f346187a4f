//! The body of `GET /bytes/N`: a fixed printable pattern with a prime period, so a client can
//! check every byte (a dropped, duplicated or reordered record shows up) and `curl` prints it
//! without calling it binary. Served from one static buffer: streaming N bytes allocates nothing.

/// The repeating unit: 60 printable characters and a newline (61 bytes, prime).
pub const PERIOD: &[u8; 61] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX\n";

/// Largest slice [`chunk`] hands out: one full TLS record of plaintext.
pub const CHUNK: usize = 16 * 1024;

const TABLE_LEN: usize = CHUNK + PERIOD.len();

static TABLE: [u8; TABLE_LEN] = {
    let mut t = [0u8; TABLE_LEN];
    let mut i = 0;
    while i < TABLE_LEN {
        t[i] = PERIOD[i % PERIOD.len()];
        i += 1;
    }
    t
};

/// The pattern bytes starting at body offset `offset`, at most `max` (and at most [`CHUNK`]) long.
pub fn chunk(offset: u64, max: u64) -> &'static [u8] {
    let start = (offset % PERIOD.len() as u64) as usize;
    let len = max.min(CHUNK as u64) as usize;
    &TABLE[start..start + len]
}

/// The byte at body offset `offset`: what a client compares against.
pub fn byte_at(offset: u64) -> u8 {
    PERIOD[(offset % PERIOD.len() as u64) as usize]
}

/// Whether `data`, received at body offset `offset`, is exactly the pattern.
pub fn matches(offset: u64, data: &[u8]) -> bool {
    let mut off = offset;
    let mut rest = data;
    while !rest.is_empty() {
        let want = chunk(off, rest.len() as u64);
        if rest[..want.len()] != *want {
            return false;
        }
        off += want.len() as u64;
        rest = &rest[want.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_the_pattern() {
        let mut body = Vec::new();
        let total = 3 * CHUNK as u64 + 17;
        while (body.len() as u64) < total {
            body.extend_from_slice(chunk(body.len() as u64, total - body.len() as u64));
        }
        assert_eq!(body.len() as u64, total);
        for (i, b) in body.iter().enumerate() {
            assert_eq!(*b, byte_at(i as u64), "offset {i}");
        }
        assert!(matches(0, &body));
        assert!(matches(5, &body[5..100]));
        assert!(!matches(1, &body[..100]));
        assert_eq!(&body[..61], PERIOD);
        assert_eq!(chunk(0, 0), b"");
    }
}
