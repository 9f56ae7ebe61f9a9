// Counts heap allocations per thread by replacing glibc's malloc family in the process that links this
// target (glibc "Replacing malloc": malloc, free, calloc, realloc and the aligned variants). Every call
// is forwarded to glibc's own allocator (__libc_*), so behaviour is unchanged; only counted.
// Linked into the test suite and the benchmark only, never into chargerd.
#ifndef CALLOCATIONCOUNTER_H
#define CALLOCATIONCOUNTER_H
#include <stdint.h>

/// Allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc) made by
/// the calling thread since it started.
uint64_t allocation_count_this_thread(void);
/// Allocation calls made by every thread since the process started.
uint64_t allocation_count_total(void);
/// 1 when this process's malloc is the counting one (it is whenever this target is linked).
int allocation_counter_active(void);

#endif
