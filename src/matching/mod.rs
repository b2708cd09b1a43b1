//! The index of the CRM's phone values that calls are matched against, and
//! the linker that matches them (normalisation itself is the leaf
//! `crate::phone`).

pub mod index;
pub mod linker;
pub mod phone;
