//! Phone numbers: normalisation to E.164 (and, later, CRM record lookup).

pub mod linker;
pub mod number;
