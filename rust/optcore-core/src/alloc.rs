//! Buffers sized by the input. Every allocation whose size a user chooses (plans, batches,
//! particle sets, direction blocks, unrolled histories) goes through the fallible functions
//! here, so that a request the machine cannot hold is [`OptError::Memory`] (Python's
//! `MemoryError`) rather than an abort of the interpreter: Rust's infallible allocation aborts
//! the process on failure.
//!
//! Large buffers are zero-filled in parallel, on transparent huge pages where the OS offers
//! them (Linux `madvise` mode), so that first-touch page faults do not dominate short solves.
//! NumPy does the same for its large arrays.

use crate::error::{OptError, Result};
use crate::real::Real;
use rayon::prelude::*;

/// `a * b`, or [`OptError::Memory`] naming `what` when the product overflows `usize`.
pub fn checked_len(a: usize, b: usize, what: &str) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| OptError::Memory(format!("{what}: {a} x {b} elements overflow the address space")))
}

/// An empty vector with room for `len` elements, or [`OptError::Memory`] naming `what`.
pub fn try_with_capacity<T>(len: usize, what: &str) -> Result<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        let bytes = (len as f64) * std::mem::size_of::<T>() as f64;
        OptError::Memory(format!("{what}: cannot allocate {len} elements ({:.3} GB)", bytes / 1e9))
    })?;
    Ok(v)
}

/// The items of `it` (as many as it says it has), allocated fallibly.
pub fn try_collect<T>(it: impl ExactSizeIterator<Item = T>, what: &str) -> Result<Vec<T>> {
    let mut v = try_with_capacity(it.len(), what)?;
    v.extend(it);
    Ok(v)
}

/// `len` copies of `value`, allocated fallibly.
pub fn try_filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = try_with_capacity(len, what)?;
    v.resize(len, value);
    Ok(v)
}

/// A zero-filled vector of `len` elements, allocated fallibly (see [`zeroed`]).
pub fn try_zeroed<T: Real>(len: usize, what: &str) -> Result<Vec<T>> {
    let v = try_with_capacity::<T>(len, what)?;
    Ok(fill_zero(v, len))
}

/// A zero-filled vector of `len` elements. Aborts if the allocation fails: use
/// [`try_zeroed`] for sizes the user chooses.
pub fn zeroed<T: Real>(len: usize) -> Vec<T> {
    fill_zero(Vec::with_capacity(len), len)
}

fn fill_zero<T: Real>(mut v: Vec<T>, len: usize) -> Vec<T> {
    debug_assert!(v.capacity() >= len && v.is_empty());
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

    #[test]
    fn impossible_sizes_are_memory_errors() {
        let e = super::try_zeroed::<f64>(usize::MAX / 8, "plan").unwrap_err();
        assert!(matches!(e, crate::OptError::Memory(ref s) if s.starts_with("plan")), "{e:?}");
        assert!(super::checked_len(usize::MAX, 2, "batch").is_err());
        assert_eq!(super::try_filled(3, 1.5f32, "x").unwrap(), vec![1.5; 3]);
        assert_eq!(super::try_zeroed::<f32>(4, "x").unwrap(), vec![0.0; 4]);
    }
}
