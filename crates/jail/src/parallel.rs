//! Work spread over threads: files are copied and hashed in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Calls `work(state, item)` for every item on `jobs` threads, each with its
/// own `state` from `init` (a root handle, say), and returns the results in
/// the items' order. An `init` failure is the result of every item that
/// thread would have taken.
pub(crate) fn map<T, S, R, E>(
    jobs: usize,
    items: &[T],
    init: impl Fn() -> Result<S, E> + Sync,
    work: impl Fn(&mut S, &T) -> Result<R, E> + Sync,
) -> Vec<Result<R, E>>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<R, E>)>> = Mutex::new(Vec::with_capacity(items.len()));
    let threads = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut state = init();
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = match &mut state {
                        Ok(state) => work(state, item),
                        Err(_) => match init() {
                            Ok(mut fresh) => work(&mut fresh, item),
                            Err(e) => Err(e),
                        },
                    };
                    done.push((i, result));
                }
                // A poisoned lock means another worker panicked; the scope
                // re-raises that panic, so what we push no longer matters.
                if let Ok(mut all) = results.lock() {
                    all.extend(done);
                }
            });
        }
    });
    let mut all = results.into_inner().unwrap_or_else(|p| p.into_inner());
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// The default number of workers: the CPUs this process may use.
pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_gives_each_thread_its_state() {
        let items: Vec<u32> = (0..1000).collect();
        let out = map(
            4,
            &items,
            || Ok::<_, ()>(0u32),
            |seen, x| {
                *seen += 1;
                Ok(x * 2)
            },
        );
        let out: Vec<u32> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn errors_stay_with_their_items() {
        let items = [1, 2, 3];
        let out = map(
            2,
            &items,
            || Ok::<_, String>(()),
            |_, &x| {
                if x == 2 {
                    Err(format!("bad {x}"))
                } else {
                    Ok(x)
                }
            },
        );
        assert_eq!(out, vec![Ok(1), Err("bad 2".into()), Ok(3)]);
    }
}
