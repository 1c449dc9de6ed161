/* The board interface the generated driver and the run application use, for Linux (Cortex-A). */
#ifndef EP_BOARD_H
#define EP_BOARD_H
#include <stdint.h>

/* Ticks of the process clock: guest instructions when the process runs under qemu-user with
 * edgeprune's counting plugin (EP_INSN_COUNTER names the plugin's counter file), otherwise
 * nanoseconds of CLOCK_MONOTONIC. ep_timer_unit() says which ("insn" or "ns"). */
uint64_t ep_timer_ticks(void);
void ep_timer_start(void);
const char *ep_timer_unit(void);
/* Deepest stack use below the caller of ep_stack_paint(), from a painted region. */
void ep_stack_paint(void);
uint32_t ep_stack_high_water(void);
__attribute__((noreturn)) void ep_board_exit(int code);

#endif
