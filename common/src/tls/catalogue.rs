//! What each crypto provider supports, by the names the flags accept: the table `tlsbench list`
//! prints (aligned text, or JSON for machines). Built from the providers' own tables and the
//! parsers' key types, never from a list written here, so it cannot drift from what
//! `--cipher-suites`, `--kx-groups` and `--cert-type` accept.

use std::fmt::Write as _;

use rustls::SignatureScheme;
use serde::Serialize;

use super::{GROUP_ALIASES, Provider, Version, group_name, suite_name};
use crate::certs::KeyType;

/// One name and the providers (of this build) that support it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The name as the flags take it.
    pub name: String,
    /// The TLS version a cipher suite belongs to (`None` for the other tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<&'static str>,
    /// The providers supporting it, in [`Provider::BUILT`] order.
    pub providers: Vec<Provider>,
}

impl Entry {
    /// Whether `p` supports this name.
    pub fn supported_by(&self, p: Provider) -> bool {
        self.providers.contains(&p)
    }
}

/// A provider tlsbench knows, and whether this build has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    /// Its `--provider` name.
    pub name: &'static str,
    /// Whether this build has it (else `--provider NAME` is refused naming the feature).
    pub built: bool,
    /// The cargo feature building it in (`None`: always built).
    pub feature: Option<&'static str>,
    /// Whether it is the default.
    pub default: bool,
}

/// Everything `tlsbench list` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    /// The providers (`--provider`).
    pub providers: Vec<ProviderInfo>,
    /// Cipher suites (`--cipher-suites`), with their TLS version.
    pub cipher_suites: Vec<Entry>,
    /// Key-exchange groups (`--kx-groups`).
    pub kx_groups: Vec<Entry>,
    /// Other names `--kx-groups` takes, each with the IANA name it stands for.
    pub group_aliases: &'static [(&'static str, &'static str)],
    /// Certificate key types (`--cert-type`): a provider supports one when it verifies the
    /// signature scheme that key signs TLS 1.3 handshakes with.
    pub cert_types: Vec<Entry>,
    /// Signature schemes each provider verifies in handshakes (no flag chooses them: the
    /// certificate's key does).
    pub signature_schemes: Vec<Entry>,
}

/// The scheme a certificate key of this type signs TLS 1.3 handshakes with (rustls's
/// signers pick RSA-PSS for RSA keys in TLS 1.3, the curve's own hash for ECDSA).
pub fn tls13_scheme(key: KeyType) -> SignatureScheme {
    match key {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => SignatureScheme::RSA_PSS_SHA256,
        KeyType::EcdsaP256 => SignatureScheme::ECDSA_NISTP256_SHA256,
        KeyType::EcdsaP384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        KeyType::Ed25519 => SignatureScheme::ED25519,
    }
}

fn scheme_name(s: SignatureScheme) -> String {
    s.as_str()
        .map_or_else(|| format!("{:#06x}", u16::from(s)), str::to_owned)
}

/// Adds `name` to `entries` (keeping first-seen order) as supported by `p`.
fn add(entries: &mut Vec<Entry>, name: String, tls: Option<&'static str>, p: Provider) {
    match entries.iter_mut().find(|e| e.name == name) {
        Some(e) => e.providers.push(p),
        None => entries.push(Entry {
            name,
            tls,
            providers: vec![p],
        }),
    }
}

impl Catalogue {
    /// The catalogue of this build's providers.
    pub fn build() -> Catalogue {
        let mut c = Catalogue {
            providers: Provider::KNOWN
                .iter()
                .map(|(name, feature)| ProviderInfo {
                    name,
                    built: Provider::BUILT.iter().any(|p| p.name() == *name),
                    feature: *feature,
                    default: *name == Provider::default().name(),
                })
                .collect(),
            cipher_suites: Vec::new(),
            kx_groups: Vec::new(),
            group_aliases: GROUP_ALIASES,
            cert_types: Vec::new(),
            signature_schemes: Vec::new(),
        };
        for &p in Provider::BUILT {
            for s in p.suites() {
                let tls = Version::from_rustls(s.version().version).map(Version::as_str);
                add(&mut c.cipher_suites, suite_name(*s), tls, p);
            }
            for g in p.groups() {
                add(&mut c.kx_groups, group_name(*g), None, p);
            }
            let schemes = p.signature_schemes();
            for k in KeyType::ALL {
                if schemes.contains(&tls13_scheme(k)) {
                    add(&mut c.cert_types, k.name().to_owned(), None, p);
                }
            }
            for s in schemes {
                add(&mut c.signature_schemes, scheme_name(s), None, p);
            }
        }
        c
    }

    /// Aligned plain text: one table per kind of name, one column per provider of the build.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Crypto providers (--provider):");
        for p in &self.providers {
            let state = match (p.built, p.feature) {
                (true, _) if p.default => "built in, the default".to_owned(),
                (true, _) => "built in".to_owned(),
                (false, Some(f)) => format!("not in this build (cargo feature `{f}`)"),
                (false, None) => "not in this build".to_owned(),
            };
            let _ = writeln!(out, "  {:<12} {state}", p.name);
        }
        let tables: [(&str, &[Entry]); 4] = [
            ("Cipher suites (--cipher-suites)", &self.cipher_suites),
            ("Key-exchange groups (--kx-groups)", &self.kx_groups),
            ("Certificate key types (--cert-type)", &self.cert_types),
            (
                "Signature schemes verified in handshakes",
                &self.signature_schemes,
            ),
        ];
        for (title, entries) in tables {
            out.push('\n');
            table(&mut out, title, entries);
        }
        let aliases: Vec<String> = self
            .group_aliases
            .iter()
            .map(|(alias, iana)| format!("{alias} = {iana}"))
            .collect();
        let _ = writeln!(
            out,
            "\nNames match in any case; suites also by their rustls name (TLS13_AES_128_GCM_SHA256);\n\
             groups also as {}.",
            aliases.join(", ")
        );
        out
    }
}

fn table(out: &mut String, title: &str, entries: &[Entry]) {
    let with_tls = entries.iter().any(|e| e.tls.is_some());
    let width = entries
        .iter()
        .map(|e| e.name.len())
        .chain([title.len()])
        .max()
        .unwrap_or(0);
    let _ = write!(out, "{title:<width$}");
    if with_tls {
        let _ = write!(out, "  TLS");
    }
    for p in Provider::BUILT {
        let _ = write!(out, "  {:<9}", p.name());
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    for e in entries {
        let _ = write!(out, "{:<width$}", e.name);
        if with_tls {
            let _ = write!(out, "  {:<3}", e.tls.unwrap_or("-"));
        }
        for p in Provider::BUILT {
            let mark = if e.supported_by(*p) { "yes" } else { "-" };
            let _ = write!(out, "  {mark:<9}");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
