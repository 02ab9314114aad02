//! The pool: a sans-IO [`core`] (pure state, every method takes `now` and
//! returns a decision), one of the [`crate::mode_core::ModeCore`]s the
//! manager's shell (`src/modes/mod.rs`) carries out.

pub mod core;
