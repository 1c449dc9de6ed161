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
/* Optional, with EP_PORT_TIMER_ALIGN defined: called before each timed run so that the timer's
 * period starts at a fixed point of the instruction stream. A timer slower than the clock it
 * divides (QEMU's SysTick under -icount) then gives the same counts whatever ran before. */
void ep_timer_align(void);
/* Bytes of stack used so far (from stack painting at reset). */
uint32_t ep_stack_high_water(void);

#endif
