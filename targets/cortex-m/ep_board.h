/* What the Cortex-M board runtime offers the application. */
#ifndef EP_BOARD_H
#define EP_BOARD_H
#include <stdint.h>

/* Clocks, and the profiling UART's bus clock and pins (drivers/setup_*.c). Runs first at reset,
 * before .data and .bss are set up, so it touches registers only. */
void ep_board_setup(void);
/* Timer ticks since start (the board file's timer, drivers/timer_*.c, extended to 64 bits). */
uint64_t ep_timer_ticks(void);
void ep_timer_start(void);
/* Bytes of stack used so far (the stack is painted at reset). */
uint32_t ep_stack_high_water(void);
/* Ends the program: QEMU exits with `code` (semihosting); a board spins. */
__attribute__((noreturn)) void ep_board_exit(int code);

#endif
