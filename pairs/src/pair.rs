//! A [`Pair`] of configs built by the product's own code, its handshakes (timed per side or
//! not) and the [`Connected`] result with its checks, sealing and opening.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::KeyType;
use common::tls::{self, Provider, Version};
use loadgen::tlsconf::{ClientTlsOptions, ResumeMode, WorkerTls, worker_tls};
use loadgen::verify::Trust;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConnection, ConnectionCommon, HandshakeKind, ServerConfig, ServerConnection, SideData,
};
use server::{Resumption, TlsOptions};

use crate::cases::Side;
use crate::material::{Material, material};
use crate::{PairError, SERVER_NAME, io_err, mismatch};

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
            client_cert: None,
            cert_compression: server_opts.cert_compression.clone(),
            early_data: false,
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
