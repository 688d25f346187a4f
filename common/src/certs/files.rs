//! Writing a chain's files (`chain.pem`, `key.pem`, `ca.pem` under one directory per key
//! type, and the client identity's `client-ca.pem`, `client.pem`, `client-key.pem` beside
//! them) so that a reader never sees a half-written file and the key is never readable by
//! others, not even for an instant.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::generate::{ChainOptions, GeneratedChain, GeneratedClient, generate_client};
use super::{CertError, KeyType, generate, io_error};

/// Where one key type's files live: `<out>/<name>/chain.pem`, `key.pem`, `ca.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    /// The key type's directory, `<out>/<name>`.
    pub dir: PathBuf,
    /// Leaf then intermediate certificate, what the server sends.
    pub chain: PathBuf,
    /// The leaf's private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
    /// The root CA certificate, what clients trust.
    pub ca: PathBuf,
}

impl CertPaths {
    fn all_present(&self) -> bool {
        [&self.chain, &self.key, &self.ca]
            .into_iter()
            .all(|path| path.is_file())
    }
}

/// The paths of `key_type`'s files under `out`; touches nothing on disk.
pub fn paths(out: &Path, key_type: KeyType) -> CertPaths {
    let dir = out.join(key_type.name());
    CertPaths {
        chain: dir.join("chain.pem"),
        key: dir.join("key.pem"),
        ca: dir.join("ca.pem"),
        dir,
    }
}

/// Where one key type's client identity lives, beside its server chain:
/// `<out>/<name>/client-ca.pem`, `client.pem`, `client-key.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientPaths {
    /// The client CA certificate, what a server requiring client certificates trusts.
    pub ca: PathBuf,
    /// The client certificate (clientAuth), what a client sends (`--cert`).
    pub cert: PathBuf,
    /// The client certificate's private key (PKCS#8 PEM, mode 0600; `--key`).
    pub key: PathBuf,
}

impl ClientPaths {
    fn all_present(&self) -> bool {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .all(|path| path.is_file())
    }
}

/// The paths of `key_type`'s client identity under `out`; touches nothing on disk.
pub fn client_paths(out: &Path, key_type: KeyType) -> ClientPaths {
    let dir = out.join(key_type.name());
    ClientPaths {
        ca: dir.join("client-ca.pem"),
        cert: dir.join("client.pem"),
        key: dir.join("client-key.pem"),
    }
}

/// A complete file under a temporary name next to its destination, removed on drop unless
/// [`Staged::commit`] renamed it into place.
struct Staged {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staged {
    fn new(dest: &Path, contents: &[u8], mode: u32) -> Result<Self, CertError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let file_name = dest
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let temp = dest.with_file_name(format!(
            ".{file_name}.tmp-{}-{}-{nanos}",
            process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        ));
        // create_new: never write through a file or symlink someone else put at the name.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(io_error("create", &temp))?;
        let staged = Self {
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        };
        if mode & 0o044 != 0 {
            // Public files get their exact mode even under a restrictive umask, so clients
            // running as another user can read the trust anchor. The key is left to `mode`
            // alone: the umask can only narrow it.
            file.set_permissions(Permissions::from_mode(mode))
                .map_err(io_error("set permissions of", &staged.temp))?;
        }
        file.write_all(contents)
            .map_err(io_error("write", &staged.temp))?;
        // On disk before the rename publishes it, so a crash cannot leave an empty file
        // under the final name.
        file.sync_all().map_err(io_error("sync", &staged.temp))?;
        Ok(staged)
    }

    fn commit(mut self) -> Result<(), CertError> {
        fs::rename(&self.temp, &self.dest).map_err(io_error("rename into", &self.dest))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error being returned matters more than a stray temp file.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `chain`'s files under `out` (see [`CertPaths`]), replacing any existing ones.
///
/// Each file is written under a temporary name in the same directory and renamed into place,
/// so a crash never leaves a half-written file; all three are staged before the first rename,
/// so a failure while writing leaves any previous set untouched. The key is created with mode
/// 0600 and is never readable by others, not even for an instant; `ca.pem` and `chain.pem`
/// get 0644.
pub fn write(out: &Path, chain: &GeneratedChain) -> Result<CertPaths, CertError> {
    let paths = paths(out, chain.key_type);
    publish(
        &paths.dir,
        [
            (&paths.key, chain.leaf_key_pem.as_bytes(), 0o600),
            (&paths.chain, chain.chain_pem().as_bytes(), 0o644),
            (&paths.ca, chain.root_pem.as_bytes(), 0o644),
        ],
    )?;
    Ok(paths)
}

/// Writes `client`'s files under `out` (see [`ClientPaths`]) as [`write()`] writes a chain's:
/// staged, renamed into place, the key 0600 from its creation.
pub fn write_client(out: &Path, client: &GeneratedClient) -> Result<ClientPaths, CertError> {
    let paths = client_paths(out, client.key_type);
    let dir = out.join(client.key_type.name());
    publish(
        &dir,
        [
            (&paths.key, client.key_pem.as_bytes(), 0o600),
            (&paths.cert, client.cert_pem.as_bytes(), 0o644),
            (&paths.ca, client.ca_pem.as_bytes(), 0o644),
        ],
    )?;
    Ok(paths)
}

/// Stages every file before the first rename, so a failure while writing leaves any previous
/// set untouched, then renames them and syncs the directory.
fn publish(dir: &Path, files: [(&PathBuf, &[u8], u32); 3]) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    let staged = files
        .into_iter()
        .map(|(path, contents, mode)| Staged::new(path, contents, mode))
        .collect::<Result<Vec<_>, _>>()?;
    for file in staged {
        file.commit()?;
    }
    // The renames live in the directory; syncing it makes them survive a power loss.
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error("sync directory", dir))
}

/// Generates (with [`ChainOptions::default`]) and writes every key type in `types` whose
/// three chain files, or whose three client files, are not all present (each set on its
/// own); returns the chain paths of all of them, existing or new, in the order of `types`.
pub fn ensure(out: &Path, types: &[KeyType]) -> Result<Vec<CertPaths>, CertError> {
    types
        .iter()
        .map(|&key_type| {
            if !client_paths(out, key_type).all_present() {
                write_client(out, &generate_client(key_type, &ChainOptions::default())?)?;
            }
            let existing = paths(out, key_type);
            if existing.all_present() {
                Ok(existing)
            } else {
                write(out, &generate(key_type, &ChainOptions::default())?)
            }
        })
        .collect()
}
