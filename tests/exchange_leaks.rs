//! No descriptor or zombie is left behind by exchanges. One test per binary:
//! it counts this process's children and descriptors.

mod fork_contract;
mod hardening;

use hardening::{fds, zombies};
use pprocess::{Map, Options, Queue};

#[test]
fn exchanges_leave_no_descriptor_or_zombie() {
    let fds_before = fds();

    // 1,000 tasks, each its own process, through a limit-4 queue.
    let mut queue = Queue::with_options(4, Options::default());
    for i in 0..1000u32 {
        queue
            .call(move |_| Ok(i.to_le_bytes().to_vec()), &[])
            .unwrap();
    }
    let mut seen: Vec<u32> = queue
        .by_ref()
        .map(|o| u32::from_le_bytes(o.unwrap()[..4].try_into().unwrap()))
        .collect();
    seen.sort();
    assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    drop(queue);
    assert_eq!(zombies(), 0, "after the queue finished");
    assert_eq!(fds(), fds_before, "after the queue finished");

    // Reused workers exit and are collected when the work is done.
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut map = Map::with_options(4, options);
    let echo = map.manage_function(|x: &[u8]| Ok(x.to_vec()));
    for i in 0..1000u32 {
        echo.call(&mut map, &i.to_le_bytes()).unwrap();
    }
    assert_eq!(map.by_ref().count(), 1000);
    map.finish().unwrap();
    assert_eq!(map.active_count(), 0);
    drop(map);
    assert_eq!(zombies(), 0, "after the reused map finished");
    assert_eq!(fds(), fds_before, "after the reused map finished");

    // Dropping an exchange in the middle of its work kills and collects.
    let mut busy = Queue::with_options(3, options);
    for _ in 0..10 {
        busy.call(
            |_| {
                std::thread::sleep(std::time::Duration::from_secs(30));
                Ok(vec![])
            },
            &[],
        )
        .unwrap();
    }
    drop(busy);
    assert_eq!(zombies(), 0, "after dropping a busy queue");
    assert_eq!(fds(), fds_before, "after dropping a busy queue");
    assert_eq!(pprocess::waitall().unwrap(), 0, "no child left at all");
}
