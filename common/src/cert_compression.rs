//! Certificate compression (RFC 8879) from names: the `--cert-compression brotli,zlib|off`
//! list both sides take, the rustls compressors and decompressors it selects, and the
//! ClientHello's offer as a server reads it off the wire.
//!
//! Off unless asked for: rustls compresses whenever its `brotli` or `zlib` feature is built
//! in, which would change every existing row's bytes and client CPU; here compression is a
//! variable a scenario sets.
//!
//! rustls says neither side's outcome. The client's is exact: the decompressors given to
//! rustls are ours, counting each certificate they decompress on the calling thread
//! ([`take_decompressed`]). The server's compressor runs once per chain (rustls caches its
//! output), so the server applies rustls's own rule to the ClientHello it received instead:
//! the first of its algorithms, in its order, that the client offered ([`offered`]).

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use rustls::CertificateCompressionAlgorithm;
use rustls::compress::{CertCompressor, CertDecompressor, DecompressionFailed};

/// A certificate compression algorithm both sides support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// Brotli (RFC 7932), codepoint 2.
    Brotli,
    /// zlib (RFC 1950), codepoint 1.
    Zlib,
}

impl Algorithm {
    /// Every algorithm, in counter order.
    pub const ALL: [Algorithm; 2] = [Algorithm::Brotli, Algorithm::Zlib];

    /// The name flags, files and counters use.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Brotli => "brotli",
            Algorithm::Zlib => "zlib",
        }
    }

    /// The index in [`Algorithm::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn codepoint(self) -> CertificateCompressionAlgorithm {
        match self {
            Algorithm::Brotli => CertificateCompressionAlgorithm::Brotli,
            Algorithm::Zlib => CertificateCompressionAlgorithm::Zlib,
        }
    }

    fn compressor(self) -> &'static dyn CertCompressor {
        match self {
            Algorithm::Brotli => rustls::compress::BROTLI_COMPRESSOR,
            Algorithm::Zlib => rustls::compress::ZLIB_COMPRESSOR,
        }
    }

    fn decompressor(self) -> &'static dyn CertDecompressor {
        match self {
            Algorithm::Brotli => &COUNTING_BROTLI,
            Algorithm::Zlib => &COUNTING_ZLIB,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an algorithm, or a list that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompressionError {
    /// Neither `brotli`, `zlib` nor `off`.
    #[error(
        "unknown certificate compression '{given}'; valid: brotli, zlib (a list, in order of preference), or off"
    )]
    Unknown {
        /// What the user wrote.
        given: String,
    },
    /// An algorithm named twice (RFC 8879 forbids duplicates in the extension).
    #[error("certificate compression '{given}' is listed twice")]
    Duplicate {
        /// The repeated name.
        given: String,
    },
    /// `off` beside an algorithm, or an empty list.
    #[error("certificate compression '{given}': either 'off' or a list of brotli, zlib")]
    Mixed {
        /// The whole list.
        given: String,
    },
}

/// Which algorithms a side offers (client) or uses (server), in order of preference; empty
/// is off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertCompression(Vec<Algorithm>);

impl CertCompression {
    /// No compression.
    pub fn off() -> CertCompression {
        CertCompression(Vec::new())
    }

    /// Whether no algorithm is enabled.
    pub fn is_off(&self) -> bool {
        self.0.is_empty()
    }

    /// The algorithms in order of preference.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.0
    }

    /// The server's compressors (`ServerConfig::cert_compressors`).
    pub fn compressors(&self) -> Vec<&'static dyn CertCompressor> {
        self.0.iter().map(|a| a.compressor()).collect()
    }

    /// The client's decompressors (`ClientConfig::cert_decompressors`), counting what they
    /// decompress (see [`take_decompressed`]).
    pub fn decompressors(&self) -> Vec<&'static dyn CertDecompressor> {
        self.0.iter().map(|a| a.decompressor()).collect()
    }

    /// The algorithms of a rustls config's compressors, in its order: what a server built
    /// elsewhere (or by [`CertCompression::compressors`]) compresses with. rustls has no
    /// compressor of another algorithm we could be given but zstd, which it does not build.
    pub fn of_compressors(compressors: &[&'static dyn CertCompressor]) -> CertCompression {
        CertCompression(
            compressors
                .iter()
                .filter_map(|c| {
                    Algorithm::ALL
                        .into_iter()
                        .find(|a| a.codepoint() == c.algorithm())
                })
                .collect(),
        )
    }

    /// The algorithm a server with these compressors uses for a client that offered
    /// `offered` (rustls's rule: the server's order), none when they share none.
    pub fn chosen(&self, offered: &[Algorithm]) -> Option<Algorithm> {
        self.0.iter().copied().find(|a| offered.contains(a))
    }
}

impl FromStr for CertCompression {
    type Err = CompressionError;

    fn from_str(s: &str) -> Result<CertCompression, CompressionError> {
        let names: Vec<&str> = s.split(',').map(str::trim).collect();
        if names == ["off"] {
            return Ok(CertCompression::off());
        }
        let mut list = Vec::new();
        for name in names {
            let a = match name {
                "brotli" => Algorithm::Brotli,
                "zlib" => Algorithm::Zlib,
                "off" | "" => return Err(CompressionError::Mixed { given: s.into() }),
                other => {
                    return Err(CompressionError::Unknown {
                        given: other.into(),
                    });
                }
            };
            if list.contains(&a) {
                return Err(CompressionError::Duplicate { given: name.into() });
            }
            list.push(a);
        }
        Ok(CertCompression(list))
    }
}

impl fmt::Display for CertCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("off");
        }
        let names: Vec<&str> = self.0.iter().map(|a| a.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

thread_local! {
    /// Certificates decompressed on this thread, by [`Algorithm::ALL`] order.
    static DECOMPRESSED: Cell<[u64; Algorithm::ALL.len()]> = const { Cell::new([0; Algorithm::ALL.len()]) };
}

/// The certificates decompressed on this thread since the last call, by [`Algorithm::ALL`]
/// order. rustls decompresses inside `process_new_packets`, on the thread that calls it: a
/// connection reads this right after to learn whether its own certificate came compressed.
pub fn take_decompressed() -> [u64; Algorithm::ALL.len()] {
    DECOMPRESSED.with(|c| c.replace([0; Algorithm::ALL.len()]))
}

/// rustls's decompressor for `algorithm`, counting each certificate it decompresses.
#[derive(Debug)]
struct Counting {
    algorithm: Algorithm,
    inner: &'static dyn CertDecompressor,
}

static COUNTING_BROTLI: Counting = Counting {
    algorithm: Algorithm::Brotli,
    inner: rustls::compress::BROTLI_DECOMPRESSOR,
};
static COUNTING_ZLIB: Counting = Counting {
    algorithm: Algorithm::Zlib,
    inner: rustls::compress::ZLIB_DECOMPRESSOR,
};

impl CertDecompressor for Counting {
    fn decompress(&self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressionFailed> {
        self.inner.decompress(input, output)?;
        DECOMPRESSED.with(|c| {
            let mut n = c.get();
            n[self.algorithm.index()] += 1;
            c.set(n);
        });
        Ok(())
    }

    fn algorithm(&self) -> CertificateCompressionAlgorithm {
        self.inner.algorithm()
    }
}

/// The `compress_certificate` extension's type (RFC 8879).
const COMPRESS_CERTIFICATE: u16 = 27;

/// The algorithms (of those we know) a ClientHello offers, read from the first TLS record of
/// a connection (`record`: header included). `None` when the record is not a whole
/// ClientHello (a client hello split over records is not read: none we drive sends one);
/// an empty list when it offers none.
pub fn offered(record: &[u8]) -> Option<Vec<Algorithm>> {
    let Some(data) = hello_extension(record, COMPRESS_CERTIFICATE)? else {
        return Some(Vec::new());
    };
    let mut d = Reader(data);
    let mut list = Reader(d.vec8()?);
    let mut algs = Vec::new();
    while !list.0.is_empty() {
        let code = list.u16()?;
        if let Some(a) = Algorithm::ALL
            .into_iter()
            .find(|a| u16::from(a.codepoint()) == code)
        {
            algs.push(a);
        }
    }
    Some(algs)
}

/// The `early_data` extension (RFC 8446 §4.2.10).
const EARLY_DATA: u16 = 42;

/// Whether a ClientHello (the first record, as for [`offered`]) offers 0-RTT early data:
/// rustls tells a server whether it accepted early data, not whether the client asked.
/// `None` when the record is not a whole ClientHello.
pub fn offers_early_data(record: &[u8]) -> Option<bool> {
    Some(hello_extension(record, EARLY_DATA)?.is_some())
}

/// The body of extension `kind` in the ClientHello that is `record`: `None` when the record
/// is not a whole ClientHello, `Some(None)` when it has no such extension.
fn hello_extension(record: &[u8], kind: u16) -> Option<Option<&[u8]>> {
    let mut r = Reader(record);
    // Record: handshake (22), legacy version, length.
    if r.u8()? != 22 {
        return None;
    }
    r.take(2)?;
    let body = r.vec16()?;
    let mut h = Reader(body);
    // Handshake: client_hello (1), a 24-bit length that must be all of the record.
    if h.u8()? != 1 {
        return None;
    }
    let len = h.take(3)?;
    let len = usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]);
    if len != h.0.len() {
        return None;
    }
    // Version, random, session id, cipher suites, compression methods.
    h.take(2 + 32)?;
    h.vec8()?;
    h.vec16()?;
    h.vec8()?;
    if h.0.is_empty() {
        return Some(None);
    }
    let mut exts = Reader(h.vec16()?);
    while !exts.0.is_empty() {
        let found = exts.u16()?;
        let data = exts.vec16()?;
        if found == kind {
            return Some(Some(data));
        }
    }
    Some(None)
}

/// A cursor over bytes; every read that runs past the end is `None`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_order_and_off_is_empty() {
        let c: CertCompression = "zlib,brotli".parse().unwrap();
        assert_eq!(c.algorithms(), [Algorithm::Zlib, Algorithm::Brotli]);
        assert_eq!(c.to_string(), "zlib,brotli");
        assert!("off".parse::<CertCompression>().unwrap().is_off());
        assert_eq!(CertCompression::off().to_string(), "off");
    }

    #[test]
    fn an_unknown_repeated_or_mixed_name_is_refused_by_name() {
        let err = |s: &str| s.parse::<CertCompression>().unwrap_err().to_string();
        assert!(
            err("brotli,zstd").contains("'zstd'"),
            "{}",
            err("brotli,zstd")
        );
        assert!(err("zlib,zlib").contains("'zlib' is listed twice"));
        assert!(err("off,brotli").contains("either 'off'"));
        assert!(err("").contains("either 'off'"));
    }

    #[test]
    fn a_configs_compressors_name_their_algorithms_in_order() {
        let c: CertCompression = "zlib,brotli".parse().unwrap();
        assert_eq!(CertCompression::of_compressors(&c.compressors()), c);
        assert!(CertCompression::of_compressors(&[]).is_off());
    }

    #[test]
    fn the_server_chooses_in_its_own_order() {
        let server: CertCompression = "zlib,brotli".parse().unwrap();
        assert_eq!(
            server.chosen(&[Algorithm::Brotli, Algorithm::Zlib]),
            Some(Algorithm::Zlib)
        );
        assert_eq!(server.chosen(&[Algorithm::Brotli]), Some(Algorithm::Brotli));
        assert_eq!(server.chosen(&[]), None);
        assert_eq!(CertCompression::off().chosen(&[Algorithm::Zlib]), None);
    }

    /// The first record a rustls client sends offering `algorithms`.
    fn client_hello(algorithms: &str) -> Vec<u8> {
        let c: CertCompression = algorithms.parse().unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        config.cert_decompressors = c.decompressors();
        let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
        let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn a_client_hellos_offer_is_read_off_the_wire() {
        assert_eq!(
            offered(&client_hello("zlib,brotli")),
            Some(vec![Algorithm::Zlib, Algorithm::Brotli])
        );
        assert_eq!(offered(&client_hello("off")), Some(vec![]));
        // A first connection has no session to send early data with.
        assert_eq!(offers_early_data(&client_hello("off")), Some(false));
        let mut hello = client_hello("brotli");
        assert_eq!(offered(&hello), Some(vec![Algorithm::Brotli]));
        // Cut short, or not a handshake record: not read.
        hello.pop();
        assert_eq!(offered(&hello), None);
        assert_eq!(offered(&[23, 3, 3, 0, 0]), None);
    }

    #[test]
    fn decompressions_are_counted_on_the_thread_that_made_them() {
        let _ = take_decompressed();
        let compressed = rustls::compress::ZLIB_COMPRESSOR
            .compress(
                b"certificate".to_vec(),
                rustls::compress::CompressionLevel::Interactive,
            )
            .unwrap();
        let mut out = [0u8; 11];
        COUNTING_ZLIB.decompress(&compressed, &mut out).unwrap();
        assert_eq!(&out, b"certificate");
        assert_eq!(take_decompressed(), [0, 1]);
        assert_eq!(take_decompressed(), [0, 0], "taken once");
        assert!(COUNTING_BROTLI.decompress(&compressed, &mut out).is_err());
        assert_eq!(take_decompressed(), [0, 0], "a failure is not counted");
    }
}
