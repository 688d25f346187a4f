//! Test support for mutual TLS: one client CA (made with rcgen here, so the test holds the
//! issuer) and the client identities a server must accept or refuse — good ecdsa-p256 and
//! rsa2048 certificates, an expired one, a serverAuth-only one, one from another CA and one
//! from an impostor with the CA's name but not its key — as
//! files for curl, `openssl s_client` and the load generator (`--cert`/`--key`), plus a
//! server on 127.0.0.1:0 requiring (or offering) client auth with that CA.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::certs::{self, ChainOptions, KeyType};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize,
};
use server::client_auth::{ClientAuth, ClientAuthOptions};
use server::{Server, Settings, TlsOptions};

use crate::loopback;

/// A client certificate and its key, as files (the key mode 0600, as our loader demands).
#[derive(Clone, Debug)]
pub struct Identity {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// The client CA and every identity, under one temp directory removed on drop.
pub struct ClientCerts {
    /// The directory holding every file.
    pub dir: PathBuf,
    /// The client CA the server trusts.
    pub ca: PathBuf,
    /// clientAuth, ECDSA P-256, valid now.
    pub good_ecdsa: Identity,
    /// clientAuth, RSA 2048, valid now.
    pub good_rsa: Identity,
    /// clientAuth, expired a year ago.
    pub expired: Identity,
    /// serverAuth only: the wrong extended key usage for a client.
    pub server_only: Identity,
    /// A valid client certificate from a CA the server does not trust.
    pub unknown_ca: Identity,
    /// Signed by an impostor CA with the trusted CA's name but another key: the name chains,
    /// the signature does not verify.
    pub bad_signature: Identity,
}

impl Drop for ClientCerts {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, pem: &str, mode: u32) {
    fs::write(path, pem).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

impl ClientCerts {
    /// Generates the CA and every identity and writes them under a fresh temp directory.
    pub fn new() -> ClientCerts {
        let dir = crate::temp_dir("client-certs");
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name("tlsbench test client CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let ca_path = dir.join("client-ca.pem");
        write(&ca_path, &ca.pem(), 0o644);

        // Same distinguished name as the real CA, another key.
        let mut impostor_params = CertificateParams::default();
        impostor_params.distinguished_name = name("tlsbench test client CA");
        impostor_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        impostor_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let impostor_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let impostor = CertifiedIssuer::self_signed(impostor_params, impostor_key).unwrap();

        let issue_by = |issuer: &CertifiedIssuer<'_, KeyPair>,
                        tag: &str,
                        key: KeyPair,
                        eku: ExtendedKeyUsagePurpose,
                        expired: bool| {
            let mut p = CertificateParams::default();
            p.distinguished_name = name(&format!("tlsbench test client {tag}"));
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![eku];
            if expired {
                p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                p.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let cert = p.signed_by(&key, issuer).unwrap();
            let id = Identity {
                cert: dir.join(format!("{tag}.pem")),
                key: dir.join(format!("{tag}-key.pem")),
            };
            write(&id.cert, &cert.pem(), 0o644);
            write(&id.key, &key.serialize_pem(), 0o600);
            id
        };
        let issue = |tag: &str, key: KeyPair, eku: ExtendedKeyUsagePurpose, expired: bool| {
            issue_by(&ca, tag, key, eku, expired)
        };
        let p256 = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let rsa = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
        let good_ecdsa = issue(
            "good-ecdsa",
            p256(),
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        let good_rsa = issue("good-rsa", rsa, ExtendedKeyUsagePurpose::ClientAuth, false);
        let expired = issue("expired", p256(), ExtendedKeyUsagePurpose::ClientAuth, true);
        let server_only = issue(
            "server-only",
            p256(),
            ExtendedKeyUsagePurpose::ServerAuth,
            false,
        );
        let bad_signature = issue_by(
            &impostor,
            "bad-signature",
            p256(),
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        let other = certs::generate_client(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        let other_dir = dir.join("other");
        let other = certs::write_client(&other_dir, &other).unwrap();
        ClientCerts {
            ca: ca_path,
            good_ecdsa,
            good_rsa,
            expired,
            server_only,
            unknown_ca: Identity {
                cert: other.cert,
                key: other.key,
            },
            bad_signature,
            dir,
        }
    }

    /// The server-side policy: `mode` with this CA trusted.
    pub fn policy(&self, mode: ClientAuth) -> ClientAuthOptions {
        ClientAuthOptions {
            mode,
            roots: certs::load_certs(&self.ca).unwrap(),
            sources: vec![self.ca.clone()],
        }
    }

    /// An in-process ecdsa-p256 server on 127.0.0.1:0 with `mode` and this CA, and its address.
    pub fn server(&self, mode: ClientAuth, opts: TlsOptions) -> (Server, SocketAddr) {
        let opts = TlsOptions {
            client_auth: self.policy(mode),
            ..opts
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = loopback::start_on(
            vec![listener],
            KeyType::EcdsaP256,
            &opts,
            Settings::default(),
        );
        let addr = server.local_addrs()[0];
        (server, addr)
    }
}

impl Default for ClientCerts {
    fn default() -> Self {
        ClientCerts::new()
    }
}
