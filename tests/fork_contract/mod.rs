//! The test harness runs each test in a thread of its own, so every test
//! process has other threads and the safe forking calls would refuse
//! (`Error::Threads`). A test binary that includes this module (`mod
//! fork_contract;`) takes fork's contract for its tests before `main` runs,
//! through `.init_array` (as the `ctor` crate does).
//!
//! Why the contract holds here: the harness's other threads run other tests
//! or wait for them. The processes these tests create use their own channel,
//! memory no other thread changes, glibc's `malloc` (its fork handlers make
//! it safe) and the test's own output capture (a buffer of the forking
//! thread), and they leave with `_exit`. None touches a lock another test
//! could hold.

#[used]
#[link_section = ".init_array"]
static TAKE_FORK_CONTRACT: extern "C" fn() = take_fork_contract;

extern "C" fn take_fork_contract() {
    // SAFETY: see the module documentation.
    unsafe { pprocess::allow_fork_with_threads() }
}
