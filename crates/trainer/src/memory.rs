//! The process's peak resident memory over a phase, from Linux's `/proc/self` (elsewhere, or
//! where `/proc` is not writable, nothing is measured).
//!
//! Writing `5` to `/proc/self/clear_refs` resets the peak resident set size (`VmHWM` in
//! `/proc/self/status`) to the current one (Linux ≥ 4.0, `Documentation/filesystems/proc.rst`).

/// Start measuring a phase: reset the peak. `None` when the peak cannot be reset.
pub fn reset_peak() -> Option<()> {
    std::fs::write("/proc/self/clear_refs", "5").ok()
}

/// The peak resident set size in bytes since the last reset (or since the process started).
pub fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_covers_memory_touched_after_the_reset() {
        if reset_peak().is_none() {
            return; // not Linux, or /proc read-only: nothing to measure
        }
        let before = peak_bytes().unwrap_or(0);
        let block = vec![1u8; 64 << 20];
        let after = peak_bytes().unwrap_or(0);
        assert!(after >= before + (60 << 20), "{before} -> {after}");
        drop(block);
    }
}
