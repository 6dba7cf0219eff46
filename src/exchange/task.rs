//! Task ids: what an exchange numbers its tasks with.

use core::fmt;

/// Identifies a task of an exchange: tasks are numbered from 0 in the order
/// they were started or added, and [`TaskId::index`] is that number.
///
/// An id comes from the call that starts or adds a task, and goes back to
/// the calls that look a task up; [`TaskId::new`] makes one from a number
/// (the `n`th task started, as in pprocess's `results[n]`).
///
/// ```
/// use pprocess::{Map, Options, TaskId};
///
/// let mut map = Map::with_options(2, Options::default());
/// let first: TaskId = map.start(|channel| Ok(channel.send(b"a")?))?;
/// let second = map.start(|channel| Ok(channel.send(b"b")?))?;
/// assert_eq!((first.index(), usize::from(second)), (0, 1));
/// assert!(first < second && second == TaskId::new(1));
/// assert_eq!(format!("{second} {second:?}"), "1 TaskId(1)");
/// assert_eq!(map.get(second)?.as_deref().ok(), Some(&b"b"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(usize);

impl TaskId {
    /// The id of the task numbered `index` (the first task started or added
    /// is 0).
    pub const fn new(index: usize) -> TaskId {
        TaskId(index)
    }

    /// The task's number: 0 for the first task started or added.
    pub const fn index(self) -> usize {
        self.0
    }

    /// The id after this one.
    pub(crate) const fn next(self) -> TaskId {
        TaskId(self.0 + 1)
    }
}

impl From<TaskId> for usize {
    fn from(task: TaskId) -> usize {
        task.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
