//! The tlsbench load generator. Empty until the load-generator issue lands: the member exists
//! so the workspace has its final shape from the first commit.
