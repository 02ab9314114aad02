//! The pool: a sans-IO [`core`] (pure state, every method takes `now` and
//! returns a decision) and, in `modes/pool.rs`, the thin async shell that
//! carries its decisions out.

pub mod core;
