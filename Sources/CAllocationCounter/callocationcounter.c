#include "callocationcounter.h"
#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static __thread uint64_t thread_allocations;
static _Atomic uint64_t total_allocations;
static _Atomic int seen;

static inline void count(void) {
    thread_allocations++;
    atomic_fetch_add_explicit(&total_allocations, 1, memory_order_relaxed);
    atomic_store_explicit(&seen, 1, memory_order_relaxed);
}

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *valloc(size_t n) { count(); return __libc_valloc(n); }
void *pvalloc(size_t n) { count(); return __libc_pvalloc(n); }
int posix_memalign(void **out, size_t a, size_t n) {
    if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
    count();
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

uint64_t allocation_count_this_thread(void) { return thread_allocations; }
uint64_t allocation_count_total(void) { return atomic_load_explicit(&total_allocations, memory_order_relaxed); }
int allocation_counter_active(void) {
    void *(*volatile allocate)(size_t) = malloc;
    __libc_free(allocate(1));
    return atomic_load_explicit(&seen, memory_order_relaxed);
}
