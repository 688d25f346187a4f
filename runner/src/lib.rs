//! `tlsbench run` and `tlsbench compare` (under construction).

pub mod results;
