//! A call means the same in every feature set. `Exchange::start` keeps a
//! task waiting when the exchange is at its limit, so it needs `alloc`;
//! `Exchange::start_wait`, in every build, stores results until the
//! exchange is below its limit and has started the task when it returns.

mod fork_contract;

use pprocess::exchange::Fixed;
use pprocess::{Channel, Exchange, Options, StoreData, TaskId};

/// Records which tasks have sent their result, in order.
#[derive(Default)]
struct Arrivals(Vec<TaskId>);

impl StoreData for Arrivals {
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> pprocess::Result<()> {
        channel.receive_value::<u32>()?;
        self.0.push(task);
        Ok(())
    }
}

#[test]
fn start_wait_stores_results_until_below_the_limit_then_starts() {
    let mut exchange: Exchange<Fixed<1>, Arrivals> =
        Exchange::new(1, Options::default(), Arrivals::default());
    let first = exchange.start_wait(|ch| Ok(ch.send_value(&1u32)?)).unwrap();
    assert_eq!(exchange.waiting(), 0);
    // At the limit: the first task's result is stored before the second
    // starts, and the second has started when the call returns.
    let second = exchange.start_wait(|ch| Ok(ch.send_value(&2u32)?)).unwrap();
    assert_eq!(exchange.handler().0, [first]);
    assert_eq!(exchange.active_count(), 1);
    assert_eq!(exchange.waiting(), 0);
    exchange.finish().unwrap();
    assert_eq!(exchange.handler().0, [first, second]);
}
