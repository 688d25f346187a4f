//! The sanity checks of a `tlsbench run`: shape and consistency, never speed. A row that
//! fails one makes the run incomplete (exit 3).

use crate::results::{Kind, RunResults};
use crate::scenario::Matrix;

/// Shape and sanity, never speed: every scenario has a row with operations and no errors,
/// and every scenario that asked for resumption resumed at least 99% of its handshakes.
pub fn check(matrix: &Matrix, r: &RunResults) -> Vec<String> {
    let mut problems = Vec::new();
    for s in &matrix.scenarios {
        let Some(row) = r.rows.iter().find(|row| row.name == s.name) else {
            problems.push(format!("'{}': no row", s.name));
            continue;
        };
        if row.rate.median <= 0.0 {
            problems.push(format!("'{}': no operations measured", s.name));
        }
        if row.errors > 0 {
            problems.push(format!("'{}': {} errors", s.name, row.errors));
        }
        let asked = s.resumes();
        match (asked, row.resumed_share) {
            (true, Some(share)) if share < 0.99 => {
                problems.push(format!("'{}': only {:.2}% resumed", s.name, share * 100.0));
            }
            (true, None) => problems.push(format!("'{}': no handshakes", s.name)),
            (false, Some(share)) if s.kind == Kind::Handshake && share > 0.0 => {
                problems.push(format!(
                    "'{}': {:.2}% resumed without resumption",
                    s.name,
                    share * 100.0
                ));
            }
            _ => {}
        }
    }
    problems
}
