//! Phone numbers: normalisation to E.164, and the index of the CRM's phone
//! values that calls are matched against.

pub mod index;
pub mod linker;
pub mod number;
pub mod phone;
