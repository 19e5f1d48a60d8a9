//! The operator's allocator. At thousands of resources most of the operator's memory is many
//! small objects (stored resources, their conditions, metric series) that live long, among
//! short-lived request and response buffers. glibc's malloc, even limited to two arenas, held
//! about 10 MiB more than mimalloc at the peak of `bench/operator_scale.py` at 10,000 resources
//! (anonymous memory 59-61 MiB against 49 MiB), without a difference in speed.

#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
