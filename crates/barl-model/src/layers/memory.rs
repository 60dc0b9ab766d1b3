//! Process memory settings for large short-lived tensors: malloc tuning and huge pages.

use candle_core::Tensor;

/// Asks glibc's malloc to keep freed memory for reuse (mmap threshold 32 MiB,
/// no trimming) instead of handing it back to the OS. Candle allocates a
/// fresh buffer per op; with the defaults, large ones come from new
/// zero-filled pages each time, which cost about a fifth of a training step
/// in page faults and page clearing. A process-wide setting, so binaries opt
/// in by calling this once at start-up; returns whether it took effect
/// (always false off Linux/glibc).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes malloc tunables; both values are in range.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, i32::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Asks the kernel to back the storage of `tensors` (f32 on the CPU) with
/// 2 MiB transparent huge pages: `MADV_HUGEPAGE`, then `MADV_COLLAPSE` to
/// convert the pages already there. A decode step streams every weight once
/// per token; with 4 KiB pages the TLB misses cost about a fifth of it
/// (measured on SmolLM2-135M, 2 cores). The ranges are widened to whole
/// 2 MiB pages of this process's memory, so neighbouring heap data may be
/// collapsed too, which changes no contents. Advice only: errors (older
/// kernels, THP disabled, non-Linux) are ignored.
pub(crate) fn advise_huge_pages<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const HUGE: usize = 2 << 20;
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for t in tensors {
            let (g, _) = t.storage_and_layout();
            if let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) = &*g {
                if v.len() * 4 >= HUGE / 2 {
                    let a = v.as_ptr() as usize;
                    let b = a + v.len() * 4;
                    ranges.push((a / HUGE * HUGE, b.div_ceil(HUGE) * HUGE));
                }
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        const MADV_COLLAPSE: i32 = 25;
        for (a, b) in merged {
            // SAFETY: both advices keep the contents of the pages; the range is
            // page-aligned and the kernel rejects any part not mapped.
            unsafe {
                madvise(a as *mut _, b - a, MADV_HUGEPAGE);
                madvise(a as *mut _, b - a, MADV_COLLAPSE);
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = tensors;
    }
}
