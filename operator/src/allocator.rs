//! The operator's allocator. At thousands of resources most of the operator's memory is many
//! small objects (stored resources, their conditions, metric series) that live long, among
//! short-lived request and response buffers. glibc's malloc, even limited to two arenas, held
//! about 10 MiB more than mimalloc at the peak of `bench/operator_scale.py` at 10,000 resources
//! (anonymous memory 59-61 MiB against 49 MiB), without a difference in speed.

#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (the sys crate names its neighbours
/// `eager_commit_delay`, 14, and `use_numa_nodes`, 16, but not it).
#[cfg(not(feature = "system-allocator"))]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Settings of the allocator; call first thing in `main`, before any other thread runs.
///
/// Pages freed by the short-lived buffers of a reconcile burst go back to the system at once
/// instead of after mimalloc's default 10 ms: the peak RSS of `bench/operator_scale.py` at 10,000
/// resources drops by about 2.5 MiB for about 4 % more CPU.
pub fn configure() {
    #[cfg(not(feature = "system-allocator"))]
    // SAFETY: a plain setter of a global option; called before other threads exist, as
    // mimalloc asks (it is not thread safe).
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

#[cfg(all(test, not(feature = "system-allocator")))]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_sits_between_its_named_neighbours() {
        // Guards the hand-written number against a renumbering in a mimalloc upgrade.
        assert_eq!(
            libmimalloc_sys::mi_option_eager_commit_delay + 1,
            PURGE_DELAY
        );
        assert_eq!(libmimalloc_sys::mi_option_use_numa_nodes - 1, PURGE_DELAY);
        configure();
        // SAFETY: a plain getter of a global option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 0);
    }
}
