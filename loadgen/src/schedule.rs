//! The open-loop (`--rate`) arrival schedule of one worker: when each of its operations is
//! due, staggered against the other workers so that their arrivals interleave evenly, and how
//! many due operations never started (the generator fell behind: too few connections, or the
//! server too slow to free them).
//!
//! Operation `k` is due at `first + k / rate`, computed from `k` rather than by adding an
//! interval to the previous slot, so rounding does not drift over a long run. Started
//! operations are always a prefix `0..issued` of the slots.

use std::time::{Duration, Instant};

/// One worker's arrivals.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// When operation 0 is due.
    first: Instant,
    /// Operations per second of this worker.
    rate: f64,
    /// Operations handed out so far; the next one is number `issued`.
    issued: u64,
}

impl Schedule {
    /// Worker `worker` of `workers`, each doing `rate` operations per second from `start`.
    /// Worker i's first arrival is i/workers of its interval after `start`, so together the
    /// workers arrive every 1/(workers × rate) s instead of `workers` at a time.
    pub fn new(rate: f64, worker: usize, workers: usize, start: Instant) -> Schedule {
        let offset = worker as f64 / (workers.max(1) as f64 * rate);
        Schedule {
            first: start + Duration::from_secs_f64(offset),
            rate,
            issued: 0,
        }
    }

    /// When operation `k` is due.
    pub fn at(&self, k: u64) -> Instant {
        self.first + Duration::from_secs_f64(k as f64 / self.rate)
    }

    /// When the next operation is due.
    pub fn next(&self) -> Instant {
        self.at(self.issued)
    }

    /// Takes the next operation if it is due by `now`: its intended start.
    pub fn take(&mut self, now: Instant) -> Option<Instant> {
        let t = self.next();
        if t > now {
            return None;
        }
        self.issued += 1;
        Some(t)
    }

    /// Operations taken so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// How many operations are due strictly before `t`.
    pub fn due_before(&self, t: Instant) -> u64 {
        if t <= self.first {
            return 0;
        }
        // The float estimate can be one off at a slot boundary; `at` decides.
        let mut n = ((t - self.first).as_secs_f64() * self.rate).ceil() as u64;
        if self.at(n) < t {
            n += 1;
        } else if n > 0 && self.at(n - 1) >= t {
            n -= 1;
        }
        n
    }

    /// Operations due in `[from, until)` that were never taken: `from` is the end of warm-up
    /// (earlier slots are not measured), `until` the end of the measured window.
    pub fn not_started(&self, from: Instant, until: Instant) -> u64 {
        let due = self.due_before(until);
        due.saturating_sub(self.issued.max(self.due_before(from)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    fn micros(t: Instant, start: Instant) -> f64 {
        t.duration_since(start).as_secs_f64() * 1e6
    }

    #[test]
    fn workers_are_staggered_so_arrivals_interleave_evenly() {
        let start = Instant::now();
        // 4 workers at 100/s each: 400/s together, one arrival every 2.5 ms.
        let workers: Vec<Schedule> = (0..4).map(|i| Schedule::new(100.0, i, 4, start)).collect();
        let mut arrivals: Vec<f64> = workers
            .iter()
            .flat_map(|s| (0..50).map(|k| micros(s.at(k), start)))
            .collect();
        arrivals.sort_by(f64::total_cmp);
        assert_eq!(arrivals[0], 0.0);
        for (i, pair) in arrivals.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            assert!((gap - 2500.0).abs() < 1.0, "gap {gap} µs after arrival {i}");
        }
        // Unstaggered, the first arrivals of all four would coincide.
        assert!((micros(workers[3].at(0), start) - 7500.0).abs() < 1.0);
    }

    #[test]
    fn take_hands_out_due_slots_once_and_in_order() {
        let start = Instant::now();
        let mut s = Schedule::new(1000.0, 0, 1, start);
        assert_eq!(s.take(start), Some(start));
        assert_eq!(s.take(start), None, "the next one is due 1 ms later");
        let late = start + Duration::from_millis(3);
        // Behind schedule: each due slot is still handed out, with its own intended start.
        assert_eq!(s.take(late), Some(s.at(1)));
        assert_eq!(s.take(late), Some(s.at(2)));
        assert_eq!(s.take(late), Some(s.at(3)));
        assert_eq!(s.take(late), None);
        assert_eq!(s.issued(), 4);
        assert_eq!(s.next(), start + Duration::from_millis(4));
    }

    #[test]
    fn due_before_counts_slots_exactly_at_boundaries() {
        let start = Instant::now();
        let s = Schedule::new(1000.0, 0, 1, start);
        assert_eq!(s.due_before(start), 0);
        assert_eq!(s.due_before(start + US), 1);
        assert_eq!(s.due_before(s.at(5)), 5);
        assert_eq!(s.due_before(s.at(5) + US), 6);
        let late = Schedule::new(1000.0, 1, 2, start);
        assert_eq!(late.due_before(start + Duration::from_micros(500)), 0);
        assert_eq!(late.due_before(start + Duration::from_micros(501)), 1);
    }

    #[test]
    fn due_but_unstarted_operations_in_the_window_are_counted() {
        let start = Instant::now();
        let mut s = Schedule::new(1000.0, 0, 1, start);
        for _ in 0..3 {
            assert!(s.take(start + Duration::from_millis(10)).is_some());
        }
        // Slots 0..=9 are due before 9.5 ms; 3 were started.
        let end = start + Duration::from_micros(9500);
        assert_eq!(s.not_started(start, end), 7);
        // With a 5 ms warm-up only slots 5..=9 are measured, and none of them started.
        assert_eq!(s.not_started(start + Duration::from_millis(5), end), 5);
        // All due slots started: nothing missed.
        while s.take(end).is_some() {}
        assert_eq!(s.not_started(start, end), 0);
    }
}
