//! No descriptor, mapping or zombie is left behind by 1,000 shared-memory
//! pmaps. One test per binary: it counts this process's children,
//! descriptors and mappings.

mod fork_contract;

use pprocess::records::{pmap, pmap_each};

fn zombies() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_name().to_str()?.parse::<u32>().ok()?;
            std::fs::read_to_string(e.path().join("stat")).ok()
        })
        .filter(|stat| {
            let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            let mut fields = rest.split(' ');
            fields.next() == Some("Z") && fields.next() == Some(me.as_str())
        })
        .count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_thousand_pmaps_leave_no_descriptor_mapping_or_zombie() {
    let inputs: Vec<u32> = (0..64).collect();
    // One run first, so that what the allocator and the runtime map once
    // is in place before counting.
    pmap(|x: &u32| Ok(x + 1), &inputs, 2).unwrap();
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
            let outputs = pmap(|x: &u32| Ok(x + round), &inputs, 2).unwrap();
            assert_eq!(outputs[63], 63 + round);
        }
    }
    assert_eq!(zombies(), 0);
    assert_eq!(fds(), fds_before);
    assert_eq!(mappings(), maps_before);
}
