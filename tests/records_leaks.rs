//! No descriptor, mapping or zombie is left behind by 1,000 shared-memory
//! pmaps. One test per binary: it counts this process's children,
//! descriptors and mappings.

mod fork_contract;
mod hardening;

use hardening::{fds, mappings, zombies};
use pprocess::records::{pmap_each, pmap_records};

#[test]
fn a_thousand_pmaps_leave_no_descriptor_mapping_or_zombie() {
    let inputs: Vec<u32> = (0..64).collect();
    // One run first, so that what the allocator and the runtime map once
    // is in place before counting.
    pmap_records(|x: &u32| Ok(x + 1), &inputs, 2).unwrap();
    let (fds_before, maps_before) = (fds(), mappings());
    for round in 0..1000u32 {
        if round.is_multiple_of(10) {
            // Some runs lose a worker too.
            let each = pmap_each(
                |x: &u32| {
                    if *x == 5 {
                        // SAFETY: kill and getpid have no preconditions.
                        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                    }
                    Ok(x + round)
                },
                &inputs,
                2,
            )
            .unwrap();
            assert_eq!(each.iter().filter(|o| o.is_err()).count(), 1);
        } else {
            let outputs = pmap_records(|x: &u32| Ok(x + round), &inputs, 2).unwrap();
            assert_eq!(outputs[63], 63 + round);
        }
    }
    assert_eq!(zombies(), 0);
    assert_eq!(fds(), fds_before);
    assert_eq!(mappings(), maps_before);
}
