//! The certificate chains pairs use: one generated per key type and process (written and loaded
//! back the way `tlsbench certs`, the server and the load generator do it), or the chain
//! `tlsbench certs` wrote, for harnesses that compare across processes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::certs::{self, ChainOptions, KeyType};
use loadgen::verify::{self, Trust};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::PairError;

/// A generated chain loaded the way the server and the load generator load theirs.
pub(crate) struct Material {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) roots: Arc<RootCertStore>,
    /// The CA file the roots came from; removed once read, so only named in error messages.
    pub(crate) ca_file: PathBuf,
}

/// Chains generated so far in this process, one per key type (RSA key generation is slow,
/// and every case of a key type can share one chain).
static MATERIAL: Mutex<Vec<(KeyType, Arc<Material>)>> = Mutex::new(Vec::new());

pub(crate) fn material(key_type: KeyType) -> Result<Arc<Material>, PairError> {
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
