// The real-time runtime's only door to the C library: every POSIX call the cyclic executive makes goes
// through here, so each returns 0 or the errno it failed with (no reading errno from Swift later).
#ifndef CREALTIME_H
#define CREALTIME_H
#include <stdint.h>
#include <stddef.h>

/// CLOCK_MONOTONIC in nanoseconds.
int64_t rt_monotonic_ns(void);
/// clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until `deadline_ns`, retried on EINTR. 0 or errno.
int rt_sleep_until_ns(int64_t deadline_ns);
/// mlockall(MCL_CURRENT | MCL_FUTURE). 0 or errno (ENOMEM/EPERM without CAP_IPC_LOCK or LimitMEMLOCK).
int rt_lock_memory(void);
/// munlockall().
void rt_unlock_memory(void);
/// pthread_setschedparam(self, SCHED_FIFO, priority). 0 or errno (EPERM without CAP_SYS_NICE or LimitRTPRIO).
int rt_set_fifo(int priority);
/// Pins the calling thread to one CPU (pthread_setaffinity_np). 0 or errno (EINVAL: no such CPU).
int rt_set_affinity(int cpu);
/// Takes one CPU out of the calling thread's affinity (so it and the threads it starts later leave that
/// CPU to the real-time loop). 0 or errno (EINVAL: not in the set, or the last CPU).
int rt_exclude_cpu(int cpu);
/// Number of CPUs this process may run on.
int rt_cpu_count(void);
/// Touches `bytes` of stack below the caller so the loop never takes a page fault to grow it.
void rt_prefault_stack(size_t bytes);
/// Starts a thread running entry(context) with a stack of `stack_bytes`. 0 or errno.
int rt_thread_start(void (*entry)(void *), void *context, size_t stack_bytes, uint64_t *handle);
/// Joins a thread started by rt_thread_start. 0 or errno.
int rt_thread_join(uint64_t handle);
/// Peak resident set size of this program in kB (VmHWM), and the current one (/proc/self/statm),
/// -1 if unknown.
long rt_peak_rss_kb(void);
long rt_current_rss_kb(void);
/// Asks the kernel to keep CPU wake-up latency at or below `microseconds` (PM QoS, as cyclictest does)
/// for as long as the returned fd stays open. Returns the fd, or -errno.
int rt_hold_cpu_dma_latency(int32_t microseconds);
void rt_release_cpu_dma_latency(int fd);

/// The hardware watchdog (Linux watchdog API): opens `path` (which arms it), sets its timeout in whole
/// seconds when `timeout_s` > 0. Returns the fd, or -errno.
int rt_watchdog_open(const char *path, int timeout_s);
/// The timeout the device runs with (WDIOC_GETTIMEOUT), seconds, or -errno.
int rt_watchdog_timeout(int fd);
/// One kick (WDIOC_KEEPALIVE): 0 or -errno.
int rt_watchdog_kick(int fd);
/// Disarms and closes (the magic close: 'V' then close; a driver built with nowayout keeps running).
void rt_watchdog_disarm(int fd);
/// Closes without disarming: the watchdog runs out and resets the board.
void rt_watchdog_abandon(int fd);

#endif
