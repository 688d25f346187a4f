//! In-memory client/server pairs for the handshake and record benches: a matched rustls
//! `ServerConnection` and `ClientConnection` built from names, exchanging TLS bytes through
//! buffers (no sockets, no threads), plus the list of bench cases both the benches and the
//! setup test iterate over.
//!
//! Configs are built only through the product's own code: the server's
//! [`TlsOptions::server_config`] and the load generator's [`worker_tls`] (with its caching
//! verifier and [`loadgen::tlsconf::OfferingStore`]), trusting the generated root exactly as
//! `tlsbench load --cacert` would ([`Trust::CaFile`] read by [`verify::root_store`]). There is
//! no second copy of suite, group or certificate handling here. A [`Pair`] keeps both configs,
//! so repeated handshakes reuse the server's ticketer and session cache and the client's
//! session store: that is what lets a primed pair resume.
//!
//! Each side's cost is counted apart the way rustls's own `rustls-bench` does: a side's clock
//! runs while it creates its connection object and while it processes the peer's flight and
//! produces its own (`read_tls` + `process_new_packets` + `write_tls`), never while the other
//! side works.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::certs::{self, ChainOptions, KeyType};
use common::tls::{self, Provider, Version};
use loadgen::tlsconf::{ClientTlsOptions, ResumeMode, WorkerTls, worker_tls};
use loadgen::verify::{self, Trust};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConnection, ConnectionCommon, HandshakeKind, RootCertStore, ServerConfig,
    ServerConnection, SideData,
};
use server::{Resumption, TlsOptions};

/// The name the client connects to; every generated leaf holds it.
pub const SERVER_NAME: &str = "bank32.com";

/// Why a pair could not be built or a handshake or transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// A version, suite or group name was refused.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A certificate chain could not be generated, written or loaded.
    #[error(transparent)]
    Cert(#[from] certs::CertError),
    /// The server's config code refused the options.
    #[error(transparent)]
    Server(#[from] server::ServerError),
    /// The load generator's config code refused the options.
    #[error(transparent)]
    Client(#[from] loadgen::tlsconf::TlsConfError),
    /// The CA file could not be turned into a root store.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// rustls failed a connection.
    #[error("TLS error: {0}")]
    Rustls(#[from] rustls::Error),
    /// Moving bytes in or out of a connection failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// The server name is not a valid DNS name (a bug in [`SERVER_NAME`]).
    #[error("invalid server name: {0}")]
    Name(#[from] rustls::pki_types::InvalidDnsNameError),
    /// Neither side had anything left to send but the handshake had not finished.
    #[error("handshake stalled (client handshaking: {client}, server handshaking: {server})")]
    Stalled {
        /// Whether the client was still handshaking.
        client: bool,
        /// Whether the server was still handshaking.
        server: bool,
    },
    /// A connection would not take more bytes.
    #[error("{0} accepted no bytes")]
    Refused(&'static str),
    /// The handshake was not of the kind the bench is named after.
    #[error("expected a {expected:?} handshake, got client {client:?}, server {server:?}")]
    WrongKind {
        /// What the bench measures.
        expected: HandshakeKind,
        /// What the client saw.
        client: Option<HandshakeKind>,
        /// What the server saw.
        server: Option<HandshakeKind>,
    },
    /// Something other than what the bench is named after was negotiated.
    #[error("negotiated {what} {got}, expected {expected}")]
    Mismatch {
        /// Version, group, suite, plaintext length...
        what: &'static str,
        /// What was negotiated or seen.
        got: String,
        /// What the bench is named after.
        expected: String,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> PairError {
    move |source| PairError::Io { what, source }
}

fn mismatch(what: &'static str, got: impl ToString, expected: impl ToString) -> PairError {
    PairError::Mismatch {
        what,
        got: got.to_string(),
        expected: expected.to_string(),
    }
}

/// A generated chain loaded the way the server and the load generator load theirs.
struct Material {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
    /// The CA file the roots came from; removed once read, so only named in error messages.
    ca_file: PathBuf,
}

/// Chains generated so far in this process, one per key type (RSA key generation is slow,
/// and every case of a key type can share one chain).
static MATERIAL: Mutex<Vec<(KeyType, Arc<Material>)>> = Mutex::new(Vec::new());

fn material(key_type: KeyType) -> Result<Arc<Material>, PairError> {
    let mut cache = match MATERIAL.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some((_, m)) = cache.iter().find(|(kt, _)| *kt == key_type) {
        return Ok(Arc::clone(m));
    }
    let m = Arc::new(generate_material(key_type)?);
    cache.push((key_type, Arc::clone(&m)));
    Ok(m)
}

/// Makes every later pair of `key_type` in this process use the chain `tlsbench certs` wrote
/// under `dir` (`<dir>/<type>/`) instead of one generated for the process: instruction counts
/// depend a little on the key and certificate bytes, so a harness comparing counts across
/// processes needs the same chain each time. Loaded as the server and load generator load it.
pub fn use_chain(dir: &Path, key_type: KeyType) -> Result<(), PairError> {
    let paths = certs::paths(dir, key_type);
    let m = Arc::new(Material {
        chain: certs::load_certs(&paths.chain)?,
        key: certs::load_private_key(&paths.key)?,
        roots: verify::root_store(&Trust::CaFile(paths.ca.clone()))?,
        ca_file: paths.ca,
    });
    let mut cache = match MATERIAL.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    cache.retain(|(kt, _)| *kt != key_type);
    cache.push((key_type, m));
    Ok(())
}

/// Generates a chain, writes it with `certs::write` (as `tlsbench certs` does), and loads it
/// back with the loaders and root-store builder the server and load generator use.
fn generate_material(key_type: KeyType) -> Result<Material, PairError> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tlsbench-benches-{}-{}",
        process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let generated = certs::generate(key_type, &ChainOptions::default())?;
    let loaded = (|| {
        let paths = certs::write(&dir, &generated)?;
        let chain = certs::load_certs(&paths.chain)?;
        let key = certs::load_private_key(&paths.key)?;
        let roots = verify::root_store(&Trust::CaFile(paths.ca.clone()))?;
        Ok::<_, PairError>(Material {
            chain,
            key,
            roots,
            ca_file: paths.ca,
        })
    })();
    // Best effort: a leftover directory in the temp dir holds only a throwaway test key.
    let _ = fs::remove_dir_all(&dir);
    loaded
}

/// A pair of configs by name: what the server and the client are told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec {
    /// The only protocol version both sides offer.
    pub version: Version,
    /// The only key-exchange group both sides offer (IANA name, e.g. `X25519MLKEM768`).
    pub group: String,
    /// The server's certificate key type.
    pub key_type: KeyType,
    /// Cipher suites both sides offer (IANA names); empty = the provider's defaults.
    pub suites: Vec<String>,
    /// The server's resumption mechanisms.
    pub resumption: Resumption,
    /// The client's resumption mode.
    pub resume: ResumeMode,
}

/// Per-side time spent on one handshake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SideTimes {
    /// Creating the client connection and processing every server flight (incl. tickets).
    pub client: Duration,
    /// Creating the server connection and processing every client flight.
    pub server: Duration,
}

/// A client and a server configured for each other; connect as often as needed.
pub struct Pair {
    server: Arc<ServerConfig>,
    client: WorkerTls,
    name: ServerName<'static>,
    material: Arc<Material>,
}

impl Pair {
    /// Builds both configs with the product's own config code, on the default provider.
    pub fn new(spec: &PairSpec) -> Result<Pair, PairError> {
        Pair::on(Provider::default(), spec)
    }

    /// [`Pair::new`] with both sides on `provider`; a suite or group it lacks is refused.
    pub fn on(provider: Provider, spec: &PairSpec) -> Result<Pair, PairError> {
        let material = material(spec.key_type)?;
        let suites = provider.parse_suites(&spec.suites)?;
        let groups = provider.parse_groups(std::slice::from_ref(&spec.group))?;
        let server_opts = TlsOptions {
            provider,
            versions: vec![spec.version],
            suites: suites.clone(),
            groups: groups.clone(),
            resumption: spec.resumption,
            ..TlsOptions::default()
        };
        let server = server_opts.server_config(material.chain.clone(), material.key.clone_key())?;
        let client_opts = ClientTlsOptions {
            provider: server_opts.provider,
            versions: vec![spec.version],
            suites,
            groups,
            alpn: server_opts.alpn.clone(),
            keylog: None,
            resume: spec.resume,
            trust: Trust::CaFile(material.ca_file.clone()),
            insecure: false,
        };
        let client = worker_tls(&client_opts, Some(&material.roots))?;
        Ok(Pair {
            server,
            client,
            name: ServerName::try_from(SERVER_NAME)?.to_owned(),
            material,
        })
    }

    /// The server's config (shared by every connection of the pair).
    pub fn server_config(&self) -> &Arc<ServerConfig> {
        &self.server
    }

    /// The client's config, session store and verifier.
    pub fn client_tls(&self) -> &WorkerTls {
        &self.client
    }

    /// The leaf certificate the server presents.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.material.chain.first()
    }

    /// One complete handshake, untimed.
    pub fn handshake(&self) -> Result<Connected, PairError> {
        self.drive(None)
    }

    /// One complete handshake, with each side's own processing time.
    pub fn handshake_timed(&self) -> Result<(Connected, SideTimes), PairError> {
        let mut times = SideTimes::default();
        let connected = self.drive(Some(&mut times))?;
        Ok((connected, times))
    }

    /// One complete handshake and the time a `side` bench counts for it: that side's own
    /// processing ([`SideTimes`]) for `Server` and `Client`, the whole in-memory handshake for
    /// `Pair`. The one place a side is mapped to its time, so a test can prove the mapping.
    pub fn handshake_for(&self, side: Side) -> Result<(Connected, Duration), PairError> {
        match side {
            Side::Server => self.handshake_timed().map(|(c, t)| (c, t.server)),
            Side::Client => self.handshake_timed().map(|(c, t)| (c, t.client)),
            Side::Pair => {
                let start = Instant::now();
                let c = self.handshake()?;
                Ok((c, start.elapsed()))
            }
        }
    }

    /// Runs a handshake to completion, including the server's post-handshake messages
    /// (TLS 1.3 tickets), so the client's store holds what the next handshake resumes with.
    fn drive(&self, mut times: Option<&mut SideTimes>) -> Result<Connected, PairError> {
        let mut buf = Vec::with_capacity(16 * 1024);

        let clock = times.as_ref().map(|_| Instant::now());
        let mut client = ClientConnection::new(Arc::clone(&self.client.config), self.name.clone())?;
        flush(&mut client, &mut buf)?;
        add(&mut times, clock, |t| &mut t.client);

        let clock = times.as_ref().map(|_| Instant::now());
        let mut server = ServerConnection::new(Arc::clone(&self.server))?;
        add(&mut times, clock, |t| &mut t.server);

        // Flights alternate until neither side has anything to say.
        let mut server_turn = true;
        while !buf.is_empty() {
            let clock = times.as_ref().map(|_| Instant::now());
            if server_turn {
                feed(&mut server, &buf)?;
                buf.clear();
                flush(&mut server, &mut buf)?;
                add(&mut times, clock, |t| &mut t.server);
            } else {
                feed(&mut client, &buf)?;
                buf.clear();
                flush(&mut client, &mut buf)?;
                add(&mut times, clock, |t| &mut t.client);
            }
            server_turn = !server_turn;
        }
        if client.is_handshaking() || server.is_handshaking() {
            return Err(PairError::Stalled {
                client: client.is_handshaking(),
                server: server.is_handshaking(),
            });
        }
        Ok(Connected { client, server })
    }
}

fn add(
    times: &mut Option<&mut SideTimes>,
    clock: Option<Instant>,
    side: impl FnOnce(&mut SideTimes) -> &mut Duration,
) {
    if let (Some(t), Some(start)) = (times.as_deref_mut(), clock) {
        *side(t) += start.elapsed();
    }
}

/// Hands `input` to `conn` and processes it: one side's step on the peer's flight (public
/// so the instruction-count harness can count one side's steps alone).
pub fn feed<D: SideData>(
    conn: &mut ConnectionCommon<D>,
    mut input: &[u8],
) -> Result<(), PairError> {
    while !input.is_empty() {
        let n = conn
            .read_tls(&mut input)
            .map_err(io_err("read_tls from the peer's flight"))?;
        if n == 0 {
            return Err(PairError::Refused("read_tls"));
        }
        conn.process_new_packets()?;
    }
    Ok(())
}

/// Appends everything `conn` has to send to `out`: one side producing its flight.
pub fn flush<D: SideData>(
    conn: &mut ConnectionCommon<D>,
    out: &mut Vec<u8>,
) -> Result<(), PairError> {
    while conn.wants_write() {
        conn.write_tls(out)
            .map_err(io_err("write_tls into the buffer"))?;
    }
    Ok(())
}

/// A connected client and server, handshake complete.
pub struct Connected {
    /// The load generator's side.
    pub client: ClientConnection,
    /// The server's side.
    pub server: ServerConnection,
}

impl Connected {
    /// Fails unless both sides report a handshake of `expected` kind.
    pub fn expect_kind(&self, expected: HandshakeKind) -> Result<(), PairError> {
        let (client, server) = (self.client.handshake_kind(), self.server.handshake_kind());
        if client == Some(expected) && server == Some(expected) {
            Ok(())
        } else {
            Err(PairError::WrongKind {
                expected,
                client,
                server,
            })
        }
    }

    /// Fails unless both sides negotiated `version`.
    pub fn expect_version(&self, version: Version) -> Result<(), PairError> {
        for got in [
            self.client.protocol_version(),
            self.server.protocol_version(),
        ] {
            let got = got.and_then(Version::from_rustls);
            if got != Some(version) {
                return Err(mismatch("version", format!("{got:?}"), version));
            }
        }
        Ok(())
    }

    /// Fails unless both sides negotiated the key-exchange group `group` (IANA name).
    pub fn expect_group(&self, group: &str) -> Result<(), PairError> {
        for got in [
            self.client.negotiated_key_exchange_group(),
            self.server.negotiated_key_exchange_group(),
        ] {
            let got = got.map(tls::group_name);
            if got.as_deref() != Some(group) {
                return Err(mismatch("group", format!("{got:?}"), group));
            }
        }
        Ok(())
    }

    /// Fails unless both sides negotiated the cipher suite `suite` (IANA name).
    pub fn expect_suite(&self, suite: &str) -> Result<(), PairError> {
        for got in [
            self.client.negotiated_cipher_suite(),
            self.server.negotiated_cipher_suite(),
        ] {
            let got = got.map(tls::suite_name);
            if got.as_deref() != Some(suite) {
                return Err(mismatch("suite", format!("{got:?}"), suite));
            }
        }
        Ok(())
    }

    /// Lets the server buffer any amount of outgoing data (a 1 MiB write in one call).
    pub fn unlimit_server(&mut self) {
        self.server.set_buffer_limit(None);
    }

    /// Server send: encrypts `payload` into records and appends them to `sink`.
    ///
    /// With the server's buffer limit lifted ([`Connected::unlimit_server`]) this is one
    /// `writer().write` and one drain; under rustls's default limit (64 KiB) it alternates
    /// partial writes and drains, so at most the limit is ever buffered.
    pub fn seal(&mut self, mut payload: &[u8], sink: &mut Vec<u8>) -> Result<(), PairError> {
        while !payload.is_empty() {
            let n = self
                .server
                .writer()
                .write(payload)
                .map_err(io_err("writing plaintext"))?;
            if n == 0 {
                return Err(PairError::Refused("writer"));
            }
            payload = &payload[n..];
            flush(&mut self.server, sink)?;
        }
        Ok(())
    }

    /// Client receive: reads and decrypts `records`, draining the plaintext into `scratch`;
    /// returns the plaintext bytes read.
    pub fn open(&mut self, mut records: &[u8], scratch: &mut [u8]) -> Result<usize, PairError> {
        let mut plaintext = 0;
        while !records.is_empty() {
            let n = self
                .client
                .read_tls(&mut records)
                .map_err(io_err("read_tls of records"))?;
            if n == 0 {
                return Err(PairError::Refused("read_tls"));
            }
            self.client.process_new_packets()?;
            loop {
                match self.client.reader().read(scratch) {
                    Ok(0) => break,
                    Ok(got) => plaintext += got,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(io_err("reading plaintext")(e)),
                }
            }
        }
        Ok(plaintext)
    }
}

/// Which side of a handshake a bench times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The server's own processing only.
    Server,
    /// The client's own processing only.
    Client,
    /// The whole in-memory handshake, both sides and the buffer shuffling.
    Pair,
}

impl Side {
    /// Every side, in report order.
    pub const ALL: [Side; 3] = [Side::Server, Side::Client, Side::Pair];

    /// `server`, `client` or `pair`, as in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
            Side::Pair => "pair",
        }
    }
}

/// What kind of handshake a bench measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A full handshake; neither side has resumption enabled.
    Full,
    /// Resumed with a ticket: TLS 1.3 PSK tickets or TLS 1.2 RFC 5077 tickets (server
    /// [`Resumption::Tickets`], client [`ResumeMode::Ticket`]).
    ResumedTicket,
    /// Resumed with a TLS 1.2 session ID (server [`Resumption::Stateful`], client
    /// [`ResumeMode::SessionId`]).
    ResumedSessionId,
}

impl Kind {
    /// `full`, `resumed-ticket` or `resumed-session-id`, as in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::ResumedTicket => "resumed-ticket",
            Kind::ResumedSessionId => "resumed-session-id",
        }
    }

    /// The rustls handshake kind every measured handshake must have.
    pub fn expected(self) -> HandshakeKind {
        match self {
            Kind::Full => HandshakeKind::Full,
            Kind::ResumedTicket | Kind::ResumedSessionId => HandshakeKind::Resumed,
        }
    }

    /// The server's and the client's resumption settings for this kind.
    pub fn resumption(self) -> (Resumption, ResumeMode) {
        match self {
            Kind::Full => (Resumption::Off, ResumeMode::Off),
            Kind::ResumedTicket => (Resumption::Tickets, ResumeMode::Ticket),
            Kind::ResumedSessionId => (Resumption::Stateful, ResumeMode::SessionId),
        }
    }
}

/// `tls13` or `tls12`, as in bench ids.
pub fn proto_name(version: Version) -> &'static str {
    match version {
        Version::Tls13 => "tls13",
        Version::Tls12 => "tls12",
    }
}

/// One handshake bench: protocol, key exchange, certificate and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeCase {
    /// The protocol version.
    pub version: Version,
    /// The key-exchange group (IANA name: `X25519`, `secp256r1`, `X25519MLKEM768`).
    pub group: &'static str,
    /// The server certificate's key type.
    pub key_type: KeyType,
    /// Full or resumed, and how.
    pub kind: Kind,
}

impl HandshakeCase {
    /// The criterion bench id: `{side}/{proto}/{kx}/{cert}/{kind}`.
    pub fn id(&self, side: Side) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            side.name(),
            proto_name(self.version),
            self.group.to_ascii_lowercase(),
            self.key_type.name(),
            self.kind.name()
        )
    }

    /// The configs by name.
    pub fn spec(&self) -> PairSpec {
        let (resumption, resume) = self.kind.resumption();
        PairSpec {
            version: self.version,
            group: self.group.to_owned(),
            key_type: self.key_type,
            suites: Vec::new(),
            resumption,
            resume,
        }
    }

    /// Builds the pair and, for resumed kinds, primes it with one full handshake so the
    /// first measured handshake can resume. The priming handshake is checked too.
    pub fn setup(&self) -> Result<Pair, PairError> {
        let pair = Pair::new(&self.spec())?;
        if self.kind != Kind::Full {
            let primed = pair.handshake()?;
            primed.expect_kind(HandshakeKind::Full)?;
            self.check_negotiated(&primed)?;
        }
        Ok(pair)
    }

    /// Fails unless `c` is a handshake of this case's kind, version and group (TLS 1.2
    /// resumption exchanges no key, so there the group is not checked).
    pub fn check(&self, c: &Connected) -> Result<(), PairError> {
        c.expect_kind(self.kind.expected())?;
        self.check_negotiated(c)
    }

    fn check_negotiated(&self, c: &Connected) -> Result<(), PairError> {
        c.expect_version(self.version)?;
        let key_exchanged = !(self.version == Version::Tls12
            && c.server.handshake_kind() == Some(HandshakeKind::Resumed));
        if key_exchanged {
            c.expect_group(self.group)?;
        }
        Ok(())
    }
}

/// Every handshake bench, in report order.
pub fn handshake_cases() -> Vec<HandshakeCase> {
    let case = |version, group, key_type, kind| HandshakeCase {
        version,
        group,
        key_type,
        kind,
    };
    use KeyType::{EcdsaP256, Ed25519, Rsa2048};
    use Kind::{Full, ResumedSessionId, ResumedTicket};
    use Version::{Tls12, Tls13};
    vec![
        // Protocol × key exchange, full, ecdsa-p256.
        case(Tls13, "X25519", EcdsaP256, Full),
        case(Tls13, "secp256r1", EcdsaP256, Full),
        case(Tls13, "X25519MLKEM768", EcdsaP256, Full),
        case(Tls12, "X25519", EcdsaP256, Full),
        case(Tls12, "secp256r1", EcdsaP256, Full),
        // Certificates, full, TLS 1.3 X25519 (ecdsa-p256 above).
        case(Tls13, "X25519", Rsa2048, Full),
        case(Tls13, "X25519", Ed25519, Full),
        // rsa2048 with the post-quantum hybrid as well: the default group of both sides.
        case(Tls13, "X25519MLKEM768", Rsa2048, Full),
        // Resumption.
        case(Tls13, "X25519", EcdsaP256, ResumedTicket),
        case(Tls12, "X25519", EcdsaP256, ResumedSessionId),
        case(Tls12, "X25519", EcdsaP256, ResumedTicket),
    ]
}

/// Cipher suites of the record benches (IANA names, as `common::tls::suite_name` gives them).
pub const RECORD_SUITES: [&str; 6] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Application write sizes of the record benches, in bytes.
pub const RECORD_SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

/// Which direction a record bench times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Server send: plaintext in, records out.
    Seal,
    /// Client receive: records in, plaintext out.
    Open,
}

impl Op {
    /// Both operations, in report order.
    pub const ALL: [Op; 2] = [Op::Seal, Op::Open];

    /// `seal` or `open`, as in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Op::Seal => "seal",
            Op::Open => "open",
        }
    }
}

/// One record bench: a cipher suite (IANA name) and an application write size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordCase {
    /// The cipher suite, IANA name.
    pub suite: &'static str,
    /// Bytes per application write.
    pub size: usize,
}

impl RecordCase {
    /// The criterion bench id: `{op}/{suite}/{size}`.
    pub fn id(&self, op: Op) -> String {
        format!("{}/{}/{}", op.name(), self.suite, self.size)
    }

    /// The configs by name: the suite's version only, X25519, an ECDSA P-256 certificate,
    /// no resumption.
    pub fn spec(&self) -> Result<PairSpec, PairError> {
        let suite = tls::find_suite(self.suite)?;
        let version = Version::from_rustls(suite.version().version)
            .ok_or_else(|| mismatch("version", format!("{:?}", suite.version()), "1.2 or 1.3"))?;
        Ok(PairSpec {
            version,
            group: "X25519".to_owned(),
            key_type: KeyType::EcdsaP256,
            suites: vec![self.suite.to_owned()],
            resumption: Resumption::Off,
            resume: ResumeMode::Off,
        })
    }

    /// A connected pair that negotiated this case's suite (the server keeps rustls's default
    /// buffer limit; see [`Connected::unlimit_server`]).
    pub fn connect(&self, pair: &Pair) -> Result<Connected, PairError> {
        let c = pair.handshake()?;
        c.expect_kind(HandshakeKind::Full)?;
        c.expect_suite(self.suite)?;
        Ok(c)
    }

    /// Records one `size`-byte write becomes (plaintext is split at 16 KiB).
    pub fn records_per_write(&self) -> u64 {
        self.size.div_ceil(16 * 1024).max(1) as u64
    }
}

/// Every record bench, suites outer, sizes inner.
pub fn record_cases() -> Vec<RecordCase> {
    RECORD_SUITES
        .iter()
        .flat_map(|&suite| RECORD_SIZES.map(|size| RecordCase { suite, size }))
        .collect()
}

/// Writes sealed on one connection before the benches reconnect (untimed): far below the
/// AEAD record limits at which rustls would rekey (TLS 1.3) or refuse to send (TLS 1.2).
pub const MAX_RECORDS_PER_CONNECTION: u64 = 1 << 20;

/// Checks one record case end to end: seals one write under rustls's default buffer limit
/// (as the open bench's untimed sealing does) and one with the limit lifted (as the seal
/// bench does), opens both in order and compares the plaintext.
pub fn record_roundtrip(case: &RecordCase) -> Result<(), PairError> {
    let pair = Pair::new(&case.spec()?)?;
    let mut c = case.connect(&pair)?;
    let payload: Vec<u8> = (0..case.size).map(|i| (i % 251) as u8).collect();
    let mut records = Vec::new();
    c.seal(&payload, &mut records)?;
    c.unlimit_server();
    c.seal(&payload, &mut records)?;
    let mut opened = Vec::with_capacity(2 * case.size);
    let mut scratch = vec![0; 16 * 1024];
    let mut rest = &records[..];
    while !rest.is_empty() {
        let n = c
            .client
            .read_tls(&mut rest)
            .map_err(io_err("read_tls of records"))?;
        if n == 0 {
            return Err(PairError::Refused("read_tls"));
        }
        c.client.process_new_packets()?;
        loop {
            match c.client.reader().read(&mut scratch) {
                Ok(0) => break,
                Ok(got) => opened.extend_from_slice(&scratch[..got]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("reading plaintext")(e)),
            }
        }
    }
    if opened.len() != 2 * case.size {
        return Err(mismatch("plaintext length", opened.len(), 2 * case.size));
    }
    if opened[..case.size] != payload[..] || opened[case.size..] != payload[..] {
        return Err(mismatch("plaintext", "different bytes", "the bytes sealed"));
    }
    Ok(())
}
