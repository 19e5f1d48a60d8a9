//! The allocator's share of the operator's memory. glibc gives each thread that allocates an
//! arena of its own (up to eight per core), and memory freed in one arena is not reused by
//! another: with the runtime's worker and blocking threads all touching the same objects, the
//! arenas held about 10 MiB more than the live data at 10,000 resources (compare with
//! `MALLOC_ARENA_MAX=16 python3 bench/operator_scale.py …`).
//! The operator spends its time waiting on the API server, so contention on fewer arenas is
//! not felt.

/// Arenas when the environment does not choose (`MALLOC_ARENA_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Limits glibc's malloc arenas unless `MALLOC_ARENA_MAX` is set. Call before other threads
/// start.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a parameter of the allocator; no memory is touched.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}
