/* The hardware the protocol uses: a byte stream and a tick counter. A board (or a host
 * simulation) provides these four functions; nothing else of the protocol touches hardware. */
#ifndef EP_PORT_H
#define EP_PORT_H
#include <stdint.h>

#define EP_PORT_FOREVER 0xFFFFFFFFu

/* The next received byte (0..255), or -1 if none came within `timeout_ms` milliseconds
 * (EP_PORT_FOREVER: wait as long as it takes). */
int ep_port_read_byte(uint32_t timeout_ms);
/* Sends `length` bytes; returns when they are queued or sent. */
void ep_port_write(const uint8_t *data, uint32_t length);
/* A free-running tick counter (cycles on silicon; QEMU's timer under -icount). */
uint64_t ep_timer_ticks(void);
/* Bytes of stack used so far (from stack painting at reset). */
uint32_t ep_stack_high_water(void);

#endif
