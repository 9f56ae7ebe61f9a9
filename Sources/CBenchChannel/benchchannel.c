#define _GNU_SOURCE
#include "benchchannel.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bc_channel *bc_map(const char *path, int create) {
    int fd = open(path, create ? (O_RDWR | O_CREAT | O_TRUNC) : O_RDWR, 0600);
    if (fd < 0) return NULL;
    if (create && ftruncate(fd, sizeof(bc_channel)) != 0) { int e = errno; close(fd); errno = e; return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); errno = e; return NULL; }
    if ((size_t)st.st_size < sizeof(bc_channel)) { close(fd); errno = EBADMSG; return NULL; }
    void *p = mmap(NULL, sizeof(bc_channel), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) { errno = e; return NULL; }
    if (create) memset(p, 0, sizeof(bc_channel));
    return (bc_channel *)p;
}

void bc_unmap(bc_channel *c) { if (c) munmap(c, sizeof(bc_channel)); }

void bc_write(bc_lock *lock, void *payload, const void *src, size_t n) {
    uint32_t s = __atomic_load_n(&lock->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&lock->seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(payload, src, n);
    __atomic_store_n(&lock->size, (uint32_t)n, __ATOMIC_RELAXED);
    __atomic_store_n(&lock->seq, s + 2, __ATOMIC_RELEASE);
}

int bc_read(const bc_lock *lock, const void *payload, void *dst, size_t n) {
    for (int tries = 0; tries < 64; tries++) {
        uint32_t s1 = __atomic_load_n(&lock->seq, __ATOMIC_ACQUIRE);
        if (s1 == 0) return 0;   /* never written */
        if (s1 & 1) continue;
        memcpy(dst, payload, n);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint32_t s2 = __atomic_load_n(&lock->seq, __ATOMIC_RELAXED);
        if (s1 == s2) return 1;
    }
    return 0;
}

uint32_t bc_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void bc_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
int64_t bc_load64(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void bc_store64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

int bc_wait(uint32_t *p, uint32_t expected, int64_t timeout_us) {
    struct timespec ts = { timeout_us / 1000000, (timeout_us % 1000000) * 1000 };
    if (__atomic_load_n(p, __ATOMIC_ACQUIRE) != expected) return 0;
    long r = syscall(SYS_futex, p, FUTEX_WAIT, expected, &ts, NULL, 0);
    if (r == 0) return 0;
    if (errno == EAGAIN || errno == EINTR) return 0;
    return errno;
}

void bc_wake(uint32_t *p) { syscall(SYS_futex, p, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0); }

void bc_put_station_in(bc_channel *c, const bc_station_in *v) { bc_write(&c->station_in_lock, &c->station_in, v, sizeof *v); }
int bc_get_station_in(bc_channel *c, bc_station_in *v) { return bc_read(&c->station_in_lock, &c->station_in, v, sizeof *v); }
void bc_put_gun_in(bc_channel *c, int g, const bc_gun_in *v) { bc_write(&c->gun_in[g].lock, &c->gun_in[g].v, v, sizeof *v); }
int bc_get_gun_in(bc_channel *c, int g, bc_gun_in *v) { return bc_read(&c->gun_in[g].lock, &c->gun_in[g].v, v, sizeof *v); }
void bc_put_gun_out(bc_channel *c, int g, const bc_gun_out *v) { bc_write(&c->gun_out[g].lock, &c->gun_out[g].v, v, sizeof *v); }
int bc_get_gun_out(bc_channel *c, int g, bc_gun_out *v) { return bc_read(&c->gun_out[g].lock, &c->gun_out[g].v, v, sizeof *v); }
void bc_put_vehicle(bc_channel *c, int g, const void *src, size_t n) { if (n <= BC_MESSAGE_BYTES) bc_write(&c->vehicle[g].lock, c->vehicle[g].bytes, src, n); }
int bc_get_vehicle(bc_channel *c, int g, void *dst, size_t n) { return n <= BC_MESSAGE_BYTES && bc_read(&c->vehicle[g].lock, c->vehicle[g].bytes, dst, n); }
void bc_put_charger(bc_channel *c, int g, const void *src, size_t n) { if (n <= BC_MESSAGE_BYTES) bc_write(&c->charger[g].lock, c->charger[g].bytes, src, n); }
int bc_get_charger(bc_channel *c, int g, void *dst, size_t n) { return n <= BC_MESSAGE_BYTES && bc_read(&c->charger[g].lock, c->charger[g].bytes, dst, n); }
void bc_put_matrix(bc_channel *c, const int8_t *v, size_t n) { if (n <= BC_MAX_MODULES) bc_write(&c->matrix_lock, c->matrix, v, n); }
int bc_get_matrix(bc_channel *c, int8_t *v, size_t n) { return n <= BC_MAX_MODULES && bc_read(&c->matrix_lock, c->matrix, v, n); }
