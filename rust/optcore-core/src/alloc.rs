//! Large buffers (plans, kernels): zero-filled in parallel, on transparent huge pages where
//! the OS offers them (Linux `madvise` mode), so that first-touch page faults do not dominate
//! short solves. NumPy does the same for its large arrays.

use crate::real::Real;
use rayon::prelude::*;

/// A zero-filled vector of `len` elements.
pub fn zeroed<T: Real>(len: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise_huge(v.as_mut_ptr() as *mut u8, len * std::mem::size_of::<T>());
    // SAFETY: capacity is `len`; every element is written below before the vector is read.
    unsafe { v.set_len(len) };
    v.par_chunks_mut(1 << 16).for_each(|c| c.iter_mut().for_each(|x| *x = T::zero()));
    v
}

#[cfg(target_os = "linux")]
fn advise_huge(ptr: *mut u8, bytes: usize) {
    const HUGE: usize = 2 << 20;
    if bytes < 2 * HUGE {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + bytes) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside the allocation; madvise only changes paging hints.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_ptr: *mut u8, _bytes: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn zeroed_is_zero() {
        let v = super::zeroed::<f64>(5_000_000);
        assert_eq!(v.len(), 5_000_000);
        assert!(v.iter().all(|&x| x == 0.0));
        assert!(super::zeroed::<f32>(0).is_empty());
    }
}
