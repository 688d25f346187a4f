//! What the connection and client targets share to set up a run: the panic that names a
//! fixture step that failed, and the generated certificate chain both sides' configs are built
//! from (a server chain and key, and a root store trusting it).

use std::fmt::Display;

use common::certs::{self, ChainOptions, KeyType};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The name the generated leaf certificate carries.
pub(crate) const SERVER_NAME: &str = "bank32.com";
/// Handshake flights are few; more rounds than this is a stuck handshake.
pub(crate) const HANDSHAKE_ROUNDS: usize = 16;

/// The value of a setup step, or a panic naming the step: a fixture that cannot be built is
/// a broken harness, not a finding.
pub(crate) fn setup<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("fuzzing fixture: {what}: {e}"),
    }
}

/// A generated ecdsa-p256 chain, parsed for rustls.
pub(crate) struct Chain {
    /// Leaf and intermediate, for the server.
    pub(crate) certs: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub(crate) key: PrivateKeyDer<'static>,
    /// A root store holding the chain's root alone, for the client.
    pub(crate) roots: RootCertStore,
}

/// Generates a chain (callers keep what they build from it: generating one per run would
/// dwarf the run).
pub(crate) fn chain() -> Chain {
    let chain = setup(
        certs::generate(KeyType::EcdsaP256, &ChainOptions::default()),
        "generating the chain",
    );
    let pem_certs = |pem: &str| {
        setup(
            CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>(),
            "parsing PEM certificates",
        )
    };
    let key = setup(
        PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()),
        "parsing the key",
    );
    let mut roots = RootCertStore::empty();
    for c in pem_certs(&chain.root_pem) {
        setup(roots.add(c), "root store");
    }
    Chain {
        certs: pem_certs(&chain.chain_pem()),
        key,
        roots,
    }
}
