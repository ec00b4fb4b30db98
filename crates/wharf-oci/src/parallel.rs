//! A bounded pool of scoped threads over a list of blobs: how pushes and pulls move several
//! blobs at once.

use std::sync::Mutex;

/// Runs `work` on every item with at most `workers` threads. Stops handing out items after
/// the first error, and returns that error.
pub fn try_for_each<T: Sync, E: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let queue = Mutex::new(items.iter());
    let failure: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if failure.lock().expect("no panics while locked").is_some() {
                        return;
                    }
                    let Some(item) = queue.lock().expect("no panics while locked").next() else {
                        return;
                    };
                    if let Err(e) = work(item) {
                        failure
                            .lock()
                            .expect("no panics while locked")
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match failure.into_inner().expect("no panics while locked") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_once_with_bounded_threads_and_first_error_stops() {
        let seen = Mutex::new(Vec::new());
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        try_for_each(&(0..50).collect::<Vec<_>>(), 3, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(1));
            seen.lock().unwrap().push(*i);
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        })
        .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);

        let done = AtomicUsize::new(0);
        let error = try_for_each(&(0..50).collect::<Vec<_>>(), 2, |i| {
            done.fetch_add(1, Ordering::SeqCst);
            if *i == 5 { Err(*i) } else { Ok(()) }
        });
        assert_eq!(error, Err(5));
        assert!(
            done.load(Ordering::SeqCst) < 50,
            "work stopped after the error"
        );
    }
}
