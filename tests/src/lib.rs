//! End-to-end, interop and reference tests for the Venus implementation.

pub mod icd;
pub mod mesa_ref;
pub mod server;
pub mod virgl;
pub mod vkinfo;
