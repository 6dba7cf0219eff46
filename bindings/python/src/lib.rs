//! The pprocess C ABI as a shared object for the Python package: this crate
//! only links the pprocess crate (feature `capi`), whose `#[no_mangle]`
//! `pp_*` functions the cdylib exports.
pub use pprocess as capi;
