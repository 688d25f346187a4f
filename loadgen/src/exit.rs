//! The exit codes of `tlsbench load`, one enum shared by the load run (`cli`) and the one-shot
//! client (`oneshot`), so neither imports the other.

/// How `tlsbench load` ends; clap's own usage error exits 2 before any of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Complete results.
    Ok,
    /// The run could not start (bad flags, unreadable files).
    Error,
    /// Results written, but incomplete (errors, `--max-errors`, interrupted).
    Incomplete,
    /// A server certificate was refused; the run stopped for that.
    Verify,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::Incomplete => 3,
            Exit::Verify => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    /// Scripts and the runner read these numbers: they are a contract, not a detail.
    #[test]
    fn codes_are_the_documented_ones() {
        let codes = [Exit::Ok, Exit::Error, Exit::Incomplete, Exit::Verify].map(Exit::code);
        assert_eq!(codes, [0, 1, 3, 4]);
    }
}
