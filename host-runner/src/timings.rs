//! `--timings`: where the time of a run went, from host clocks and rinit's timing marks.
//!
//! rinit's marks are `CLOCK_BOOTTIME` in the guest, i.e. time since the kernel's clock started.
//! The host sees when the status record arrived; taking that as the guest's `t_exit` places the
//! guest clock's zero on the host clock, which splits "before the guest clock" (QEMU start,
//! firmware, and the early kernel before its clock runs) from "kernel". Under TCG on microvm
//! the guest clock stands still for ~0.5 s of early boot (research baseline §3.3), which lands in
//! the first part: the split is an estimate; every host-measured figure is exact.

use rinit_status::Marks;
use std::time::{Duration, Instant};

/// Host-side instants of one run.
#[derive(Debug, Clone, Copy)]
pub struct HostTimes {
    pub start: Instant,
    pub planned: Instant,
    pub qemu_spawned: Instant,
    pub first_output: Option<Instant>,
    pub record: Option<Instant>,
    pub qemu_exited: Instant,
    pub end: Instant,
}

/// One line of the breakdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    pub duration: Duration,
    pub estimated: bool,
}

fn us(d: u64) -> Duration {
    Duration::from_micros(d)
}

/// The phases, in order.
pub fn phases(h: &HostTimes, marks: Option<&Marks>) -> Vec<Phase> {
    let mut p = Vec::new();
    let mut push = |name, duration, estimated| {
        p.push(Phase {
            name,
            duration,
            estimated,
        })
    };
    push(
        "mvm setup (kernel, initramfs, probe)",
        h.planned - h.start,
        false,
    );
    push(
        "virtiofsd start, QEMU spawn",
        h.qemu_spawned - h.planned,
        false,
    );
    let guest = marks.and_then(|m| Some((m, m.start?, m.exit?)));
    match (guest, h.record) {
        (Some((m, start, exit)), Some(record)) => {
            let kernel_zero = record.checked_sub(us(exit)).unwrap_or(h.qemu_spawned);
            let fw = kernel_zero.saturating_duration_since(h.qemu_spawned);
            push("QEMU, firmware, early kernel", fw, true);
            push("kernel (to rinit start)", us(start), true);
            let after_modules = m.modules.unwrap_or(start);
            push(
                "rinit: modules",
                us(after_modules.saturating_sub(start)),
                false,
            );
            let after_mounts = m.mounts.unwrap_or(after_modules);
            push(
                "rinit: root and mounts",
                us(after_mounts.saturating_sub(after_modules)),
                false,
            );
            let exec = m.exec.unwrap_or(after_mounts);
            push(
                "rinit: to workload exec",
                us(exec.saturating_sub(after_mounts)),
                false,
            );
            let name = if m.exec.is_some() {
                "workload"
            } else {
                "rinit: failed setup"
            };
            push(name, us(exit.saturating_sub(exec)), false);
            push(
                "report + power-off",
                h.qemu_exited.saturating_duration_since(record),
                false,
            );
        }
        _ => push(
            "guest (no timing marks)",
            h.qemu_exited - h.qemu_spawned,
            false,
        ),
    }
    push(
        "teardown",
        h.end.saturating_duration_since(h.qemu_exited),
        false,
    );
    p
}

/// The breakdown as text, one phase per line, with the total.
pub fn render(h: &HostTimes, marks: Option<&Marks>) -> String {
    let mut s = String::from("mvm timings:\n");
    for ph in phases(h, marks) {
        let ms = ph.duration.as_secs_f64() * 1000.0;
        let est = if ph.estimated { " (est.)" } else { "" };
        s.push_str(&format!("  {:>9.1} ms  {}{est}\n", ms, ph.name));
    }
    let total = (h.end - h.start).as_secs_f64() * 1000.0;
    s.push_str(&format!("  {total:>9.1} ms  total (wall)\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let h = HostTimes {
            start: t0,
            planned: ms(10),
            qemu_spawned: ms(12),
            first_output: None,
            record: Some(ms(2000)),
            qemu_exited: ms(2010),
            end: ms(2011),
        };
        let m = Marks {
            start: Some(1_500_000),
            modules: Some(1_500_100),
            mounts: Some(1_510_000),
            exec: Some(1_511_000),
            exit: Some(1_900_000),
        };
        let p = phases(&h, Some(&m));
        let names: Vec<_> = p.iter().map(|x| x.name).collect();
        assert_eq!(names[2], "QEMU, firmware, early kernel");
        assert_eq!(p[2].duration, Duration::from_millis(88));
        assert_eq!(p[3].duration, Duration::from_millis(1500));
        assert_eq!(p[7].duration, Duration::from_millis(389));
        let sum: Duration = p.iter().map(|x| x.duration).sum();
        assert_eq!(sum, Duration::from_millis(2011));
        assert!(render(&h, Some(&m)).contains("total (wall)"));
    }

    #[test]
    fn without_marks() {
        let t0 = Instant::now();
        let h = HostTimes {
            start: t0,
            planned: t0,
            qemu_spawned: t0,
            first_output: None,
            record: None,
            qemu_exited: t0 + Duration::from_secs(1),
            end: t0 + Duration::from_secs(1),
        };
        let p = phases(&h, None);
        assert_eq!(p[2].name, "guest (no timing marks)");
    }
}
