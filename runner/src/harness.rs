//! What `tlsbench run` and `tlsbench soak` share around their measurements: the stop flag
//! raised by SIGINT/SIGTERM, finding the executable to start the server from, the
//! certificates, the URL a local server child is reached at, and writing a JSON document.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::certs::KeyType;
use loadgen::Target;
use serde::Serialize;

use crate::RunError;
use crate::child::ServerChild;

/// The name the generated certificates are issued for; the child is dialled by address.
const SERVER_NAME: &str = "bank32.com";

/// `RunError::Io` for `what`.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// A flag raised by the first SIGINT or SIGTERM: the run stops at the next boundary and
/// writes what it has.
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>, RunError> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(io_err("installing signal handlers"))?;
    }
    Ok(stop)
}

/// The tlsbench binary the server child is started from: `given`, else this executable.
pub(crate) fn server_exe(given: Option<&Path>) -> Result<PathBuf, RunError> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => std::env::current_exe().map_err(io_err("finding this executable")),
    }
}

/// Generates the certificates of `types` under `dir` where they are missing.
pub(crate) fn ensure_certs(dir: &Path, types: &[KeyType]) -> Result<(), RunError> {
    common::certs::ensure(dir, types)
        .map(drop)
        .map_err(|e| RunError::Server(format!("certificates: {e}")))
}

/// The URL of a local server child: the certificates' name, dialled at the child's address.
pub(crate) fn child_target(child: &ServerChild) -> Result<Target, RunError> {
    Ok(Target::new(
        &format!("https://{SERVER_NAME}:{}/", child.addr.port()),
        None,
        Some(&child.addr.to_string()),
    )?)
}

/// The plain-HTTP URL of a local server child started with `--plain-listen` (a floor row).
pub(crate) fn child_plain_target(child: &ServerChild) -> Result<Target, RunError> {
    let addr = child.plain.ok_or_else(|| {
        RunError::Server("the server printed no plain listening line (--plain-listen)".into())
    })?;
    Ok(Target::new(&format!("http://{addr}/"), None, None)?)
}

/// Writes `value` as pretty JSON (with a final newline) to `path`.
pub(crate) fn write_json<T: Serialize>(value: &T, path: &Path) -> Result<(), RunError> {
    let json = serde_json::to_string_pretty(value).map_err(|e| RunError::Io {
        what: format!("encoding {}", path.display()),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(path, json + "\n").map_err(io_err(format!("writing {}", path.display())))
}
