//! Allocator settings for processes that decode one large batch after another.
//!
//! Each batch needs a few megabytes of buffers (the event, the inflated
//! payload, its strings) that are freed when it is done. With glibc's default
//! trim and mmap thresholds that memory goes back to the kernel after every
//! batch and is faulted in again for the next: measured on the bench corpus,
//! 33,800 page faults and a third of replay's CPU time in the kernel, against
//! 4,500 for the decode-only floor. Keeping freed memory for reuse removes
//! that; peak memory is unchanged (it is bounded by the batches in flight).

/// Ask the allocator to keep freed memory up to `bytes` for reuse instead of
/// returning it to the kernel at once. A no-op outside glibc.
pub fn keep_freed_memory(bytes: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let n = i32::try_from(bytes).unwrap_or(i32::MAX);
        // SAFETY: mallopt only changes glibc malloc parameters; it is called
        // with valid parameter numbers and values and touches no Rust memory.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, n);
            libc::mallopt(libc::M_MMAP_THRESHOLD, n.min(32 << 20));
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = bytes;
}
