//! Phone numbers: normalisation to E.164, and the index of the CRM's phone
//! values that calls are matched against.

pub mod index;
pub mod linker;
/// The normaliser's old path, for code written before it became the leaf
/// `crate::phone`.
pub use crate::phone as number;
pub mod phone;
