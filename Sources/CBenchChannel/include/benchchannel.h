// The bench channel: how chargerd on a bench board and the plant emulator (HIL/emulator) share what a
// real board carries on GPIO lines, analog inputs and the car's CAN link. One shared-memory file (the
// board's [bench] channel, normally under /dev/shm), created by the emulator. Layout in HIL/README.md
// ("The bench channel"); every region is a seqlock (even sequence = stable), written by one side only.
// The clock is the plant's: the emulator publishes a tick per plant period, chargerd runs one control
// cycle per tick and acknowledges it (lockstep; the emulator paces ticks to --speed times wall time).
#ifndef BENCHCHANNEL_H
#define BENCHCHANNEL_H
#include <stdint.h>
#include <stddef.h>

#define BC_MAGIC 0x48434E4542474843ULL   /* "CHGBENCH" little-endian */
#define BC_VERSION 2u   /* 2: aux_supply_volts */
#define BC_MAX_GUNS 16
#define BC_MAX_MODULES 64
#define BC_MESSAGE_BYTES 1024

/// A region's seqlock word, followed by its payload.
typedef struct { uint32_t seq; uint32_t size; } bc_lock;

/// Plant → controller, per gun: the gun's digital inputs (logical level: 1 = active) and analog inputs.
typedef struct {
    double cc1_volts;            // detection point 1
    double charger_side_volts;   // before K1/K2
    double vehicle_side_volts;   // after K1/K2
    double gun_temperature_c;    // hottest connector sensor
    double aux_supply_volts;     // the car's 12 V auxiliary supply, gun side of K3/K4 (NaN: not measured)
    uint8_t lock_feedback;       // lock position switch: locked
    uint8_t k1_aux, k2_aux, k3k4_aux;   // mirror contacts: closed
    uint8_t rcd_trip;            // RCD / 6 mA DC detector relay tripped
    uint8_t pe_ok;               // PE continuity good
    uint8_t ground_test_state;   // detector self-test: 0 idle 1 running 2 passed 3 failed
    uint8_t imd_alarm;           // IMD alarm relay
} bc_gun_in;

/// Controller → plant, per gun: the gun's digital outputs.
typedef struct {
    uint8_t k1k2, k3k4, lock_motor, discharge;
    uint8_t lamp;                // 0 off 1 available 2 busy 3 charging 4 fault
    uint8_t ground_test;         // ask the earth-fault detector to test itself
    uint8_t pad[2];
} bc_gun_out;

/// Plant → controller, station-wide inputs.
typedef struct { uint8_t estop, door, mains, pad[5]; } bc_station_in;

/// The header at offset 0.
typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t guns, modules;
    uint32_t vehicle_bytes, charger_bytes;   // sizes of the car-link payloads (same build on both sides)
    uint32_t tick;                // plant periods done (futex word; the emulator writes it)
    uint32_t ack;                 // last tick the controller finished (futex word; chargerd writes it)
    uint32_t controller_attached; // chargerd sets 1 while it runs
    int32_t emulator_pid;
    int64_t plant_now_us;         // plant time at `tick`
    double speed;                 // plant seconds per wall second
    uint8_t reserved[64];
} bc_header;

/// The whole file.
typedef struct {
    bc_header header;
    bc_lock station_in_lock; bc_station_in station_in;
    struct { bc_lock lock; bc_gun_in v; } gun_in[BC_MAX_GUNS];
    struct { bc_lock lock; bc_gun_out v; } gun_out[BC_MAX_GUNS];
    struct { bc_lock lock; uint8_t bytes[BC_MESSAGE_BYTES]; } vehicle[BC_MAX_GUNS];   // car → charger messages
    struct { bc_lock lock; uint8_t bytes[BC_MESSAGE_BYTES]; } charger[BC_MAX_GUNS];   // charger → car messages
    bc_lock matrix_lock; int8_t matrix[BC_MAX_MODULES];   // module → gun relay (-1 none), controller → plant
} bc_channel;

/// Maps the channel file; `create` makes (and zeroes) it. Returns the mapping or NULL with errno set.
bc_channel *bc_map(const char *path, int create);
void bc_unmap(bc_channel *c);
/// Seqlock write of `n` bytes of payload after `lock` (one writer per region).
void bc_write(bc_lock *lock, void *payload, const void *src, size_t n);
/// Seqlock read; 1 when a stable copy was taken, 0 when the writer kept it busy (dst untouched).
int bc_read(const bc_lock *lock, const void *payload, void *dst, size_t n);
/// Atomic loads/stores of the header's words, and futex wait/wake on them (shared, not private).
uint32_t bc_load32(const uint32_t *p);
void bc_store32(uint32_t *p, uint32_t v);
int64_t bc_load64(const int64_t *p);
void bc_store64(int64_t *p, int64_t v);
/// Waits while *p == expected, at most timeout_us. 0 woken or changed, ETIMEDOUT, or errno.
int bc_wait(uint32_t *p, uint32_t expected, int64_t timeout_us);
void bc_wake(uint32_t *p);
/// Typed region access (g: gun index; n: payload bytes). get_* return 1 when a stable value was read.
void bc_put_station_in(bc_channel *c, const bc_station_in *v);
int bc_get_station_in(bc_channel *c, bc_station_in *v);
void bc_put_gun_in(bc_channel *c, int g, const bc_gun_in *v);
int bc_get_gun_in(bc_channel *c, int g, bc_gun_in *v);
void bc_put_gun_out(bc_channel *c, int g, const bc_gun_out *v);
int bc_get_gun_out(bc_channel *c, int g, bc_gun_out *v);
void bc_put_vehicle(bc_channel *c, int g, const void *src, size_t n);
int bc_get_vehicle(bc_channel *c, int g, void *dst, size_t n);
void bc_put_charger(bc_channel *c, int g, const void *src, size_t n);
int bc_get_charger(bc_channel *c, int g, void *dst, size_t n);
void bc_put_matrix(bc_channel *c, const int8_t *v, size_t n);
int bc_get_matrix(bc_channel *c, int8_t *v, size_t n);
#endif
