//! CPU time of this process or thread, from `getrusage`: the numerator of every
//! "CPU-µs per operation" figure tlsbench reports.

use std::time::Duration;

/// User and system CPU time consumed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time spent running our code (TLS, HTTP, the event loop).
    pub user: Duration,
    /// Time spent in the kernel on our behalf (socket reads and writes, epoll).
    pub sys: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.sys
    }

    /// The CPU time spent between `earlier` and `self` (saturating, never negative).
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }
}

/// CPU time of the whole process (all threads, including exited ones).
pub fn process() -> CpuTime {
    rusage(libc::RUSAGE_SELF)
}

/// CPU time of the calling thread only.
pub fn thread() -> CpuTime {
    rusage(libc::RUSAGE_THREAD)
}

fn rusage(who: libc::c_int) -> CpuTime {
    // SAFETY: `getrusage` writes a `struct rusage` into the pointer we pass; a zeroed rusage is
    // a valid value of that plain-data struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; `who` is one of the two constants above, for
    // which getrusage cannot fail on Linux.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return CpuTime::default();
    }
    CpuTime {
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_grows_with_work_and_process_covers_thread() {
        let before = thread();
        // Spin until the kernel's accounting (tick-granular on some kernels) has moved.
        let mut x = 0u64;
        while thread().total() <= before.total() {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        let after = thread();
        assert!(after.since(&before).total() > Duration::ZERO);
        assert!(process().total() >= after.total());
        assert_eq!(before.since(&after), CpuTime::default());
    }
}
