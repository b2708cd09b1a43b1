//! CPU time as getrusage and /proc count it.

/// This process's CPU time (user + system), in µs.
pub fn process_cpu_us() -> u64 {
    cpu_us(libc::RUSAGE_SELF)
}

/// The calling thread's CPU time, in µs.
pub fn thread_cpu_us() -> u64 {
    cpu_us(libc::RUSAGE_THREAD)
}

/// CPU time of the threads named `name` (as /proc shows them), in µs.
pub fn threads_cpu_us(name: &str) -> u64 {
    // SAFETY: sysconf only reads a setting.
    let tick_us = 1e6 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut ticks = 0u64;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        if !comm.ends_with(&format!("({name}")) {
            continue;
        }
        // utime and stime are fields 14 and 15; `rest` starts at field 3.
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    (ticks as f64 * tick_us) as u64
}

fn cpu_us(who: libc::c_int) -> u64 {
    // SAFETY: all zeroes is a valid rusage, and getrusage only writes the
    // struct it is handed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}
