//! The load generator's side of mutual TLS: the client identity of `--cert`/`--key`, loaded
//! once at the edge, and the resolver rustls asks when a server sends a CertificateRequest,
//! which notes per connection whether the server asked and whether a certificate went out.
//!
//! rustls calls the resolver inside `process_new_packets` on the worker thread driving the
//! connection, and a worker drives one connection at a time, so a thread-local note taken
//! right after that call belongs to exactly that connection ([`take_request`]); the shared
//! config needs no per-connection state and no lock.

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

/// A client certificate chain and its key, checked to belong together.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The chain file (`--cert`), for messages and the results.
    pub cert_path: PathBuf,
    /// The chain and signing key rustls sends and signs with.
    pub key: Arc<CertifiedKey>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key's own Debug says nothing secret, but the path is what a reader needs.
        f.debug_struct("ClientIdentity")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// Why `--cert`/`--key` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientCertError {
    /// A file could not be read or holds no certificate or key (or a world-readable key).
    #[error("--cert/--key: {0}")]
    Load(#[from] common::certs::CertError),
    /// The key is of a type the provider cannot sign with, or is not the certificate's key.
    #[error("--key {} does not sign for --cert {}: {source}", key.display(), cert.display())]
    Mismatch {
        /// The chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
}

impl ClientIdentity {
    /// Loads `cert` (leaf first) and `key` and checks, with `provider`, that the key is the
    /// leaf's: a mismatch would otherwise show only as every handshake refused.
    pub fn load(
        cert: &Path,
        key: &Path,
        provider: &CryptoProvider,
    ) -> Result<ClientIdentity, ClientCertError> {
        let chain = common::certs::load_certs(cert)?;
        let private = common::certs::load_private_key(key)?;
        let certified = CertifiedKey::from_der(chain, private, provider).map_err(|source| {
            ClientCertError::Mismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                source,
            }
        })?;
        Ok(ClientIdentity {
            cert_path: cert.to_path_buf(),
            key: Arc::new(certified),
        })
    }
}

/// What a server's CertificateRequest came to on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertRequest {
    /// The server asked and we sent a certificate.
    Sent,
    /// The server asked and we sent none: no `--cert`, or none of the server's signature
    /// schemes fits our key (rustls then sends an empty Certificate message).
    NoneSent,
}

thread_local! {
    /// The last CertificateRequest answered on this thread, until [`take_request`].
    static REQUEST: Cell<Option<CertRequest>> = const { Cell::new(None) };
}

/// The CertificateRequest answered on this thread since the last call, if any; clears it.
pub fn take_request() -> Option<CertRequest> {
    REQUEST.with(Cell::take)
}

/// Answers CertificateRequests with the identity (or with none) and notes the answer.
#[derive(Debug)]
pub struct NotingResolver {
    identity: Option<Arc<CertifiedKey>>,
}

impl NotingResolver {
    /// A resolver sending `identity`'s certificate when asked (none when `None`).
    pub fn new(identity: Option<&ClientIdentity>) -> Arc<NotingResolver> {
        Arc::new(NotingResolver {
            identity: identity.map(|i| Arc::clone(&i.key)),
        })
    }
}

impl ResolvesClientCert for NotingResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // rustls sends the certificate only if the key can sign one of the server's schemes;
        // asking the key the same question makes "sent" what actually goes on the wire.
        let sent = self
            .identity
            .as_ref()
            .filter(|k| k.key.choose_scheme(sigschemes).is_some());
        let note = if sent.is_some() {
            CertRequest::Sent
        } else {
            CertRequest::NoneSent
        };
        REQUEST.with(|r| r.set(Some(note)));
        sent.cloned()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use common::certs::{self, ChainOptions, KeyType};

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_naming_both_files() {
        let dir = std::env::temp_dir().join(format!("tlsbench-client-cert-{}", std::process::id()));
        let a = certs::write_client(
            &dir.join("a"),
            &certs::generate_client(KeyType::EcdsaP256, &ChainOptions::default()).unwrap(),
        )
        .unwrap();
        let b = certs::write_client(
            &dir.join("b"),
            &certs::generate_client(KeyType::EcdsaP256, &ChainOptions::default()).unwrap(),
        )
        .unwrap();
        let p = common::tls::provider(&[], &[]);
        let id = ClientIdentity::load(&a.cert, &a.key, &p).unwrap();
        assert_eq!(id.cert_path, a.cert);
        let err = ClientIdentity::load(&a.cert, &b.key, &p).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("does not sign for --cert"), "{msg}");
        assert!(msg.contains(&b.key.display().to_string()), "{msg}");
        let err = ClientIdentity::load(&a.cert, &dir.join("absent.pem"), &p).unwrap_err();
        assert!(err.to_string().contains("absent.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_resolver_notes_each_request_once_and_whether_it_sent() {
        let dir =
            std::env::temp_dir().join(format!("tlsbench-client-resolver-{}", std::process::id()));
        let a = certs::write_client(
            &dir,
            &certs::generate_client(KeyType::EcdsaP256, &ChainOptions::default()).unwrap(),
        )
        .unwrap();
        let id = ClientIdentity::load(&a.cert, &a.key, &common::tls::provider(&[], &[])).unwrap();
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(take_request(), None);
        let with = NotingResolver::new(Some(&id));
        assert!(with.has_certs());
        let ecdsa = [SignatureScheme::ECDSA_NISTP256_SHA256];
        assert!(with.resolve(&[], &ecdsa).is_some());
        assert_eq!(take_request(), Some(CertRequest::Sent));
        assert_eq!(take_request(), None, "taken once");
        // A server accepting only RSA signatures gets no certificate from an ECDSA key.
        assert!(
            with.resolve(&[], &[SignatureScheme::RSA_PSS_SHA256])
                .is_none()
        );
        assert_eq!(take_request(), Some(CertRequest::NoneSent));
        let without = NotingResolver::new(None);
        assert!(!without.has_certs());
        assert!(without.resolve(&[], &ecdsa).is_none());
        assert_eq!(take_request(), Some(CertRequest::NoneSent));
    }
}
