// SocketCAN for the car link: what Swift's Glibc module leaves out (linux/can.h, its raw socket options,
// the error-frame classes, recvmsg's timestamp and drop-count messages). Every call returns a value or
// -errno; nothing here keeps state.
#ifndef CSOCKETCAN_H
#define CSOCKETCAN_H
#include <stdint.h>

/// One classic CAN frame as the link sees it (29-bit identifier, flags separate).
typedef struct {
    uint32_t id;          // the identifier without flags
    uint8_t extended;     // CAN_EFF_FLAG was set
    uint8_t error;        // an error frame (CAN_ERR_FLAG): `id` holds the error class bits
    uint8_t rtr;          // a remote frame
    uint8_t len;          // DLC, 0-8
    uint8_t data[8];
    int64_t realtime_us;  // kernel receive time (SO_TIMESTAMP, CLOCK_REALTIME), 0 if none came
    uint32_t dropped;     // the socket's receive-queue overflow count so far (SO_RXQ_OVFL)
} csc_frame;

/// A CAN_RAW socket bound to `ifname`, non-blocking: receives extended data frames whose identifier
/// matches `filter_id` under `filter_mask`, and every error frame; kernel timestamps and the overflow
/// count on. Returns the fd, or -errno (ENODEV: no such interface; EAFNOSUPPORT: no CAN in the kernel).
int csc_open(const char *ifname, uint32_t filter_id, uint32_t filter_mask);
/// The interface's hardware type (ARPHRD_CAN is 280) from SIOCGIFHWADDR, or -errno.
int csc_interface_type(int fd, const char *ifname);
/// The interface is up and running (IFF_UP and IFF_RUNNING): 1, 0, or -errno.
int csc_interface_up(int fd, const char *ifname);
/// Reads one frame: 1, 0 when none is waiting, or -errno.
int csc_read(int fd, csc_frame *frame);
/// Writes one extended data frame: 0, or -errno (ENOBUFS: the transmit queue is full, e.g. no ACK on the
/// bus or bus-off; ENETDOWN: the interface is down).
int csc_write(int fd, uint32_t id, const uint8_t *data, uint8_t len);
/// Writes one frame with the given raw can_id (flags included): for tests and the peers' misbehaviour
/// (a standard-format frame, a remote frame, an error frame on a virtual bus).
int csc_write_raw(int fd, uint32_t can_id, const uint8_t *data, uint8_t len);
/// CAN_ERR_* class bits and the controller-state bits of data[1], for naming what an error frame says.
enum {
    CSC_ERR_TX_TIMEOUT = 0x1, CSC_ERR_LOSTARB = 0x2, CSC_ERR_CRTL = 0x4, CSC_ERR_PROT = 0x8,
    CSC_ERR_TRX = 0x10, CSC_ERR_ACK = 0x20, CSC_ERR_BUSOFF = 0x40, CSC_ERR_BUSERROR = 0x80,
    CSC_ERR_RESTARTED = 0x100,
    CSC_CTRL_RX_OVERFLOW = 0x01, CSC_CTRL_TX_OVERFLOW = 0x02, CSC_CTRL_RX_WARNING = 0x04,
    CSC_CTRL_TX_WARNING = 0x08, CSC_CTRL_RX_PASSIVE = 0x10, CSC_CTRL_TX_PASSIVE = 0x20, CSC_CTRL_ACTIVE = 0x40,
};
/// An eventfd the loop signals the link's thread with (EFD_NONBLOCK | EFD_CLOEXEC), or -errno.
int csc_eventfd(void);
/// Adds 1 to an eventfd (one write(2)); drains it (one read(2)).
void csc_signal(int fd);
void csc_drain(int fd);
/// poll(2) on up to 32 fds for input: the count ready, or -errno. `ready[i]` is set for each fd with input.
int csc_poll(const int *fds, int count, int timeout_ms, uint8_t *ready);
/// CLOCK_REALTIME in microseconds (the candump log's time base).
int64_t csc_realtime_us(void);
#endif
