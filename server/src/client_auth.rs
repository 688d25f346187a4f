//! Mutual TLS on the server: the `--client-auth` policy, the rustls client-certificate
//! verifier it builds, and how a connection's outcome is counted — whether a client
//! certificate was accepted ([`ClientCert`]) or why one was refused ([`RefusalCause`]).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, RootCertStore};

use crate::ServerError;

/// Whether the server asks clients for a certificate (`--client-auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// No CertificateRequest: server-authenticated TLS only.
    #[default]
    Off,
    /// Ask for a certificate; a client that sends none is served, one that sends a bad one
    /// is refused.
    Optional,
    /// Ask for a certificate and refuse clients that send none or a bad one.
    Required,
}

impl ClientAuth {
    /// The flag's value (off, optional, required).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Off => "off",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

/// The client-certificate policy a server config is built with: the mode and, when
/// certificates are asked for, the CAs trusted to have issued them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAuthOptions {
    /// Whether certificates are asked for, and whether they are required.
    pub mode: ClientAuth,
    /// Trusted client CAs (DER); empty exactly when `mode` is off.
    pub roots: Vec<CertificateDer<'static>>,
    /// Where the roots were read from, for the start-up line (empty when off).
    pub sources: Vec<PathBuf>,
}

impl ClientAuthOptions {
    /// The rustls verifier of this policy, verifying with `provider`'s algorithms. Off gives
    /// rustls's no-client-auth verifier, so one builder path serves every mode.
    pub fn verifier(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ClientCertVerifier>, ServerError> {
        if self.mode == ClientAuth::Off {
            if !self.roots.is_empty() {
                return Err(ServerError::Config(
                    "client CAs given but --client-auth is off".into(),
                ));
            }
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
        let mut store = RootCertStore::empty();
        for root in &self.roots {
            store.add(root.clone()).map_err(|e| {
                ServerError::Config(format!("--client-ca: a CA certificate is unusable: {e}"))
            })?;
        }
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider);
        let builder = match self.mode {
            ClientAuth::Optional => builder.allow_unauthenticated(),
            ClientAuth::Required | ClientAuth::Off => builder,
        };
        builder
            .build()
            .map_err(|e| ServerError::Config(format!("--client-auth {}: {e}", self.mode.as_str())))
    }
}

/// What a completed handshake carried, client-certificate wise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCert {
    /// The client sent a certificate and it verified (a TLS 1.3 resumption counts here too
    /// when the resumed session carried one: rustls keeps the client's chain in the ticket).
    Accepted,
    /// No client certificate: client auth off, optional and none sent, or a session resumed
    /// without one.
    None,
}

impl ClientCert {
    /// Every result, in counter order.
    pub const ALL: [ClientCert; 2] = [ClientCert::Accepted, ClientCert::None];

    /// The Prometheus label value (`result="..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientCert::Accepted => "accepted",
            ClientCert::None => "none",
        }
    }

    /// The result of a handshake that completed with `peer_certificates` (rustls verified
    /// them before completing it, so any chain present is an accepted one).
    pub fn of(peer_certificates: Option<&[CertificateDer<'_>]>) -> ClientCert {
        match peer_certificates {
            Some(chain) if !chain.is_empty() => ClientCert::Accepted,
            _ => ClientCert::None,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Why a client's certificate was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalCause {
    /// Client auth is required and the client sent no certificate.
    NoneSent,
    /// The certificate does not chain to a trusted client CA.
    UnknownCa,
    /// The certificate is outside its validity window (expired or not yet valid).
    Expired,
    /// A signature does not verify: the issuer's on the certificate, or the client's
    /// CertificateVerify (a key that does not match the certificate).
    BadSignature,
    /// The certificate is not for client authentication (no clientAuth extended key usage).
    WrongKeyUsage,
    /// Any other certificate error (bad encoding, unsupported algorithm, ...).
    Other,
}

impl RefusalCause {
    /// Every cause, in counter order.
    pub const ALL: [RefusalCause; 6] = [
        RefusalCause::NoneSent,
        RefusalCause::UnknownCa,
        RefusalCause::Expired,
        RefusalCause::BadSignature,
        RefusalCause::WrongKeyUsage,
        RefusalCause::Other,
    ];

    /// The Prometheus label value (`cause="..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCause::NoneSent => "none_sent",
            RefusalCause::UnknownCa => "unknown_ca",
            RefusalCause::Expired => "expired",
            RefusalCause::BadSignature => "bad_signature",
            RefusalCause::WrongKeyUsage => "wrong_key_usage",
            RefusalCause::Other => "other",
        }
    }

    /// The refusal a rustls server error stands for, if it is one. On a server every
    /// certificate rustls verifies is a client's, so each `InvalidCertificate` is a refusal.
    pub fn of(err: &rustls::Error) -> Option<RefusalCause> {
        use CertificateError as C;
        let cert = match err {
            rustls::Error::NoCertificatesPresented => return Some(RefusalCause::NoneSent),
            rustls::Error::InvalidCertificate(c) => c,
            _ => return None,
        };
        Some(match cert {
            C::UnknownIssuer => RefusalCause::UnknownCa,
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => RefusalCause::Expired,
            C::BadSignature => RefusalCause::BadSignature,
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => RefusalCause::WrongKeyUsage,
            // CertificateError is non-exhaustive: what rustls adds later is "other" until it
            // earns a cause of its own.
            _ => RefusalCause::Other,
        })
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use common::certs::{self, ChainOptions, KeyType};
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn each_rustls_refusal_maps_to_its_cause_and_other_errors_to_none() {
        use CertificateError as C;
        use rustls::Error as E;
        let cases = [
            (E::NoCertificatesPresented, Some(RefusalCause::NoneSent)),
            (
                E::InvalidCertificate(C::UnknownIssuer),
                Some(RefusalCause::UnknownCa),
            ),
            (
                E::InvalidCertificate(C::Expired),
                Some(RefusalCause::Expired),
            ),
            (
                E::InvalidCertificate(C::NotValidYet),
                Some(RefusalCause::Expired),
            ),
            (
                E::InvalidCertificate(C::BadSignature),
                Some(RefusalCause::BadSignature),
            ),
            (
                E::InvalidCertificate(C::InvalidPurpose),
                Some(RefusalCause::WrongKeyUsage),
            ),
            (
                E::InvalidCertificate(C::BadEncoding),
                Some(RefusalCause::Other),
            ),
            (E::DecryptError, None),
            (
                E::AlertReceived(rustls::AlertDescription::BadCertificate),
                None,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(RefusalCause::of(&err), want, "{err:?}");
        }
        let labels: Vec<_> = RefusalCause::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            labels,
            [
                "none_sent",
                "unknown_ca",
                "expired",
                "bad_signature",
                "wrong_key_usage",
                "other"
            ]
        );
    }

    #[test]
    fn a_completed_handshake_with_a_chain_is_accepted_without_one_none() {
        let der = CertificateDer::from(vec![0x30, 0x00]);
        assert_eq!(
            ClientCert::of(Some(std::slice::from_ref(&der))),
            ClientCert::Accepted
        );
        assert_eq!(ClientCert::of(Some(&[])), ClientCert::None);
        assert_eq!(ClientCert::of(None), ClientCert::None);
    }

    #[test]
    fn the_verifier_asks_only_when_on_and_requires_only_when_required() {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = certs::generate_client(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        let roots = vec![CertificateDer::from_pem_slice(client.ca_pem.as_bytes()).unwrap()];
        let off = ClientAuthOptions::default()
            .verifier(provider.clone())
            .unwrap();
        assert!(!off.offer_client_auth());
        let with = |mode| ClientAuthOptions {
            mode,
            roots: roots.clone(),
            sources: Vec::new(),
        };
        let optional = with(ClientAuth::Optional)
            .verifier(provider.clone())
            .unwrap();
        assert!(optional.offer_client_auth());
        assert!(!optional.client_auth_mandatory());
        let required = with(ClientAuth::Required)
            .verifier(provider.clone())
            .unwrap();
        assert!(required.client_auth_mandatory());
        // The hint in the CertificateRequest names the client CA.
        assert_eq!(required.root_hint_subjects().len(), 1);

        let err = with(ClientAuth::Off)
            .verifier(provider.clone())
            .err()
            .unwrap();
        assert!(err.to_string().contains("--client-auth is off"), "{err}");
        let none = ClientAuthOptions {
            mode: ClientAuth::Required,
            ..ClientAuthOptions::default()
        };
        let err = none.verifier(provider).err().unwrap();
        assert!(err.to_string().contains("--client-auth required"), "{err}");
    }
}
