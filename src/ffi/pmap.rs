//! pmap over fixed-size records through shared memory: pp_pmap with
//! PP_REUSE, and pp_pmap_status.

use core::ffi::{c_int, c_void};

use super::exchange::{call_function, pp_function, Function};
use super::{bytes_mut, guard};
use crate::error::{Error, RemoteError, Result};
use crate::exchange::records::{run, Kernel};
use crate::exchange::TaskError;
use crate::process::ForkCheck;

/// A C function over fixed-size records.
struct CKernel<'a> {
    function: Function,
    inputs: &'a [u8],
    input_size: usize,
}

impl Kernel for CKernel<'_> {
    fn inputs(&self) -> &[u8] {
        self.inputs
    }

    fn run(&self, index: usize, output: &mut [u8]) -> core::result::Result<(), RemoteError> {
        let size = self.input_size;
        let input = &self.inputs[index * size..(index + 1) * size];
        let len = call_function(self.function, input, output)?;
        output[len..].fill(0);
        Ok(())
    }
}

/// Runs `function` over `count` records in `limit` reused workers through
/// shared memory; returns the failed records, by index.
#[allow(clippy::too_many_arguments)]
pub(crate) fn records(
    function: Function,
    inputs: *const c_void,
    input_size: usize,
    outputs: *mut c_void,
    output_size: usize,
    count: usize,
    limit: usize,
) -> Result<Vec<(usize, TaskError)>> {
    // SAFETY: the caller passes `count` records of each size.
    let (inputs, outputs) =
        unsafe { super::records(inputs, input_size, outputs, output_size, count) }?;
    let kernel = CKernel {
        function,
        inputs,
        input_size,
    };
    // A C caller took the header's fork contract.
    run(
        &kernel,
        count,
        output_size,
        limit,
        outputs,
        ForkCheck::Accepted,
    )
}

/// A failed record's status: the function's nonzero return, or the
/// library's code for a record it failed (PP_EPEER, PP_ETOOBIG).
fn status_of(failure: &TaskError) -> c_int {
    match failure.error {
        Error::Remote { code } => code,
        ref error => error.code(),
    }
}

/// `outputs[i] = function(inputs[i])` for count fixed-size records in
/// `limit` reused worker processes (PP_CORES or PP_UNLIMITED: one per
/// processor; never more than count), through shared
/// memory, reporting each record. An output shorter than output_size is
/// zero-filled; a failed record's output is left as it was. If `status` is
/// not NULL it receives count ints: 0 for a
/// record that succeeded, else the function's nonzero return, or
/// PP_EPEER for the record a worker was running when it died (the rest of
/// its records run in other workers), or PP_ETOOBIG for a function that
/// wrote more than output_size bytes. The function runs in the workers: it
/// must not touch the outputs array itself (they do not map it). Returns
/// the number of failed records (>= 0), or a negative code if the call
/// itself failed: before any record ran (bad arguments, no memory, no
/// first worker), or, rarely, after some ran (a replacement worker could
/// not be forked); then the outputs are unspecified.
#[no_mangle]
pub extern "C" fn pp_pmap_status(
    function: pp_function,
    inputs: *const c_void,
    input_size: usize,
    outputs: *mut c_void,
    output_size: usize,
    count: usize,
    limit: usize,
    status: *mut c_int,
) -> c_int {
    guard(|| {
        let function = function.ok_or(Error::Invalid)?;
        let statuses = if status.is_null() {
            None
        } else {
            let len = count
                .checked_mul(size_of::<c_int>())
                .ok_or(Error::Invalid)?;
            // SAFETY: a non-NULL status has room for `count` ints.
            Some(unsafe { bytes_mut(status.cast(), len) }?)
        };
        let failures = records(
            function,
            inputs,
            input_size,
            outputs,
            output_size,
            count,
            limit,
        )?;
        if let Some(statuses) = statuses {
            statuses.fill(0);
            for (index, failure) in &failures {
                let at = index * size_of::<c_int>();
                statuses[at..at + size_of::<c_int>()]
                    .copy_from_slice(&status_of(failure).to_ne_bytes());
            }
        }
        Ok(failures.len().min(c_int::MAX as usize) as c_int)
    })
}
