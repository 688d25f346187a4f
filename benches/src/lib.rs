//! Criterion benches for tlsbench. Empty until the benches issue lands: the member exists so
//! the workspace has its final shape from the first commit.
