// libgpiod 1.6 (Debian's libgpiod-dev, v1 API). libgpiod 2.x changed the API: keep it behind GPIOD/.
#include <gpiod.h>
#include <stdlib.h>
#include <time.h>

// struct gpiod_line_bulk holds a fixed array of 64 line pointers, which Swift sees as a tuple: these
// helpers keep the bulk calls in C. A bulk lives on the heap for the process's life (allocated at start,
// never in the loop).
static inline struct gpiod_line_bulk *cg_bulk_new(void) {
    struct gpiod_line_bulk *b = calloc(1, sizeof *b);
    if (b) gpiod_line_bulk_init(b);
    return b;
}
static inline void cg_bulk_free(struct gpiod_line_bulk *b) { free(b); }
static inline void cg_bulk_add(struct gpiod_line_bulk *b, struct gpiod_line *l) { gpiod_line_bulk_add(b, l); }
static inline unsigned int cg_bulk_count(struct gpiod_line_bulk *b) { return gpiod_line_bulk_num_lines(b); }
static inline struct gpiod_line *cg_bulk_line(struct gpiod_line_bulk *b, unsigned int i) { return gpiod_line_bulk_get_line(b, i); }
static inline void cg_bulk_release(struct gpiod_line_bulk *b) { if (gpiod_line_bulk_num_lines(b) > 0) gpiod_line_release_bulk(b); }
/// Outputs, each at its default (physical) value: one request, one file descriptor.
static inline int cg_bulk_request_output(struct gpiod_line_bulk *b, const char *consumer, const int *defaults) {
    return gpiod_line_request_bulk_output(b, consumer, defaults);
}
/// Inputs: one request, one file descriptor.
static inline int cg_bulk_request_input(struct gpiod_line_bulk *b, const char *consumer) {
    return gpiod_line_request_bulk_input(b, consumer);
}
/// One ioctl for every line of the bulk.
static inline int cg_bulk_get(struct gpiod_line_bulk *b, int *values) { return gpiod_line_get_value_bulk(b, values); }
static inline int cg_bulk_set(struct gpiod_line_bulk *b, const int *values) { return gpiod_line_set_value_bulk(b, (int *)values); }
/// Events pending on any line of `b`, without waiting (one ppoll): 1 and `ready` filled, 0 none, -1 error.
static inline int cg_bulk_events_pending(struct gpiod_line_bulk *b, struct gpiod_line_bulk *ready) {
    struct timespec zero = { 0, 0 };
    gpiod_line_bulk_init(ready);
    return gpiod_line_event_wait_bulk(b, &zero, ready);
}
/// Reads up to `n` pending events of `line` (one read): their count, -1 on error. Types in `rising`
/// (1 rising, 0 falling), kernel timestamps (CLOCK_MONOTONIC on Linux ≥ 5.7) in `ns`.
static inline int cg_line_read_events(struct gpiod_line *line, int *rising, long long *ns, unsigned int n) {
    struct gpiod_line_event ev[16];
    if (n > 16) n = 16;
    int got = gpiod_line_event_read_multiple(line, ev, n);
    for (int i = 0; i < got; i++) {
        rising[i] = ev[i].event_type == GPIOD_LINE_EVENT_RISING_EDGE;
        ns[i] = (long long)ev[i].ts.tv_sec * 1000000000LL + ev[i].ts.tv_nsec;
    }
    return got;
}
