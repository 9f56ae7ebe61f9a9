#define _GNU_SOURCE
#include "crealtime.h"
#include <alloca.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <linux/watchdog.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t rt_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rt_sleep_until_ns(int64_t deadline_ns) {
    struct timespec ts = { .tv_sec = deadline_ns / 1000000000LL, .tv_nsec = deadline_ns % 1000000000LL };
    int r;
    do { r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); } while (r == EINTR);
    return r;
}

int rt_lock_memory(void) { return mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : errno; }
void rt_unlock_memory(void) { munlockall(); }

int rt_set_fifo(int priority) {
    struct sched_param p = { .sched_priority = priority };
    return pthread_setschedparam(pthread_self(), SCHED_FIFO, &p);
}

int rt_set_affinity(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int rt_exclude_cpu(int cpu) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return errno;
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set) || CPU_COUNT(&set) < 2) return EINVAL;
    CPU_CLR(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int rt_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    return CPU_COUNT(&set);
}

__attribute__((noinline)) void rt_prefault_stack(size_t bytes) {
    volatile unsigned char *p = alloca(bytes);
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 0;
    p[bytes - 1] = 0;
}

struct rt_start { void (*entry)(void *); void *context; };

static void *rt_trampoline(void *arg) {
    struct rt_start s = *(struct rt_start *)arg;
    free(arg);
    s.entry(s.context);
    return NULL;
}

int rt_thread_start(void (*entry)(void *), void *context, size_t stack_bytes, uint64_t *handle) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (stack_bytes > 0) {
        int r = pthread_attr_setstacksize(&attr, stack_bytes);
        if (r != 0) { pthread_attr_destroy(&attr); return r; }
    }
    struct rt_start *s = malloc(sizeof *s);
    if (!s) { pthread_attr_destroy(&attr); return ENOMEM; }
    s->entry = entry; s->context = context;
    pthread_t t;
    int r = pthread_create(&t, &attr, rt_trampoline, s);
    pthread_attr_destroy(&attr);
    if (r != 0) { free(s); return r; }
    *handle = (uint64_t)t;
    return 0;
}

int rt_thread_join(uint64_t handle) { return pthread_join((pthread_t)handle, NULL); }

/* VmHWM, not getrusage's ru_maxrss: the latter keeps the high-water mark of the memory the process
   had before exec (its parent's, when started by posix_spawn/vfork), which is not this program's. */
long rt_peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) { kb = strtol(line + 6, NULL, 10); break; }
    }
    fclose(f);
    return kb;
}

int rt_hold_cpu_dma_latency(int32_t microseconds) {
    int fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (write(fd, &microseconds, sizeof microseconds) != sizeof microseconds) { int e = errno; close(fd); return -e; }
    return fd;
}

void rt_release_cpu_dma_latency(int fd) { if (fd >= 0) close(fd); }

long rt_current_rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, resident = 0;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    if (n != 2) return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}


int rt_watchdog_open(const char *path, int timeout_s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (timeout_s > 0 && ioctl(fd, WDIOC_SETTIMEOUT, &timeout_s) != 0) {
        int e = errno;
        if (write(fd, "V", 1) != 1) { /* disarm failed: the close below leaves it running */ }
        close(fd);
        return -e;
    }
    return fd;
}

int rt_watchdog_timeout(int fd) {
    int t = 0;
    if (ioctl(fd, WDIOC_GETTIMEOUT, &t) != 0) return -errno;
    return t;
}

int rt_watchdog_kick(int fd) {
    int dummy = 0;
    return ioctl(fd, WDIOC_KEEPALIVE, &dummy) == 0 ? 0 : -errno;
}

void rt_watchdog_disarm(int fd) {
    if (fd < 0) return;
    if (write(fd, "V", 1) != 1) { /* nothing more to try */ }
    close(fd);
}

void rt_watchdog_abandon(int fd) { if (fd >= 0) close(fd); }
