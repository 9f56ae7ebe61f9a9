#include "csocketcan.h"
#include <errno.h>
#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

static int ifreq_for(int fd, const char *ifname, struct ifreq *ifr, unsigned long req) {
    memset(ifr, 0, sizeof *ifr);
    if (strlen(ifname) >= IFNAMSIZ) return -ENAMETOOLONG;
    strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
    return ioctl(fd, req, ifr) < 0 ? -errno : 0;
}

int csc_open(const char *ifname, uint32_t filter_id, uint32_t filter_mask) {
    int fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    int rc = ifreq_for(fd, ifname, &ifr, SIOCGIFINDEX);
    if (rc < 0) { close(fd); return rc; }
    struct can_filter f = { .can_id = (filter_id & CAN_EFF_MASK) | CAN_EFF_FLAG,
                            .can_mask = (filter_mask & CAN_EFF_MASK) | CAN_EFF_FLAG | CAN_RTR_FLAG };
    can_err_mask_t em = CAN_ERR_MASK;
    int one = 1;
    if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, &f, sizeof f) < 0 ||
        setsockopt(fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &em, sizeof em) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) < 0) {
        rc = -errno; close(fd); return rc;
    }
    struct sockaddr_can addr;
    memset(&addr, 0, sizeof addr);
    addr.can_family = AF_CAN;
    addr.can_ifindex = ifr.ifr_ifindex;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { rc = -errno; close(fd); return rc; }
    return fd;
}

int csc_interface_type(int fd, const char *ifname) {
    struct ifreq ifr;
    int rc = ifreq_for(fd, ifname, &ifr, SIOCGIFHWADDR);
    return rc < 0 ? rc : ifr.ifr_hwaddr.sa_family;
}

int csc_interface_up(int fd, const char *ifname) {
    struct ifreq ifr;
    int rc = ifreq_for(fd, ifname, &ifr, SIOCGIFFLAGS);
    if (rc < 0) return rc;
    return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING) ? 1 : 0;
}

int csc_read(int fd, csc_frame *out) {
    struct can_frame cf;
    struct iovec iov = { .iov_base = &cf, .iov_len = sizeof cf };
    char control[CMSG_SPACE(sizeof(struct timeval)) + CMSG_SPACE(sizeof(uint32_t))];
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    if ((size_t)n < CAN_MTU) return -EPROTO;
    memset(out, 0, sizeof *out);
    out->extended = (cf.can_id & CAN_EFF_FLAG) != 0;
    out->error = (cf.can_id & CAN_ERR_FLAG) != 0;
    out->rtr = (cf.can_id & CAN_RTR_FLAG) != 0;
    out->id = out->error ? (cf.can_id & CAN_ERR_MASK) : (out->extended ? cf.can_id & CAN_EFF_MASK : cf.can_id & CAN_SFF_MASK);
    out->len = cf.can_dlc > 8 ? 8 : cf.can_dlc;
    memcpy(out->data, cf.data, 8);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SO_TIMESTAMP) {
            struct timeval tv;
            memcpy(&tv, CMSG_DATA(c), sizeof tv);
            out->realtime_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
        } else if (c->cmsg_type == SO_RXQ_OVFL) {
            memcpy(&out->dropped, CMSG_DATA(c), sizeof(uint32_t));
        }
    }
    return 1;
}

int csc_write_raw(int fd, uint32_t can_id, const uint8_t *data, uint8_t len) {
    struct can_frame cf;
    memset(&cf, 0, sizeof cf);
    cf.can_id = can_id;
    cf.can_dlc = len > 8 ? 8 : len;
    if (data) memcpy(cf.data, data, cf.can_dlc);
    ssize_t n = write(fd, &cf, sizeof cf);
    if (n < 0) return -errno;
    return n == (ssize_t)sizeof cf ? 0 : -EIO;
}

int csc_write(int fd, uint32_t id, const uint8_t *data, uint8_t len) {
    return csc_write_raw(fd, (id & CAN_EFF_MASK) | CAN_EFF_FLAG, data, len);
}

int csc_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void csc_signal(int fd) {
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
}

void csc_drain(int fd) {
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v);
    (void)n;
}

int csc_poll(const int *fds, int count, int timeout_ms, uint8_t *ready) {
    struct pollfd p[32];
    if (count > 32) count = 32;
    for (int i = 0; i < count; i++) { p[i].fd = fds[i]; p[i].events = POLLIN; p[i].revents = 0; }
    int rc = poll(p, (nfds_t)count, timeout_ms);
    if (rc < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < count; i++) ready[i] = (p[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
    return rc;
}

int64_t csc_realtime_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
