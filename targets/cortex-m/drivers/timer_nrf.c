/* Board timer `nrf`: TIMER0 of the Nordic nRF51 (nRF51 Series Reference Manual v3.0, chapter 18)
 * as a 32-bit counter at 16 MHz (prescaler 0), extended to 64 bits in software. The nRF51's
 * Cortex-M0 has neither SysTick nor DWT. On silicon TIMER0 counts HFCLK, the core clock: one
 * tick is one cycle. Under QEMU with `-icount shift=0` one tick is 62.5 guest instructions.
 * The extension sees a wrap (every 268 s) when two reads are less than that apart: true within
 * a run, and the protocol's wait loop reads the timer constantly. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_regs.h"

#define TIMER0 0x40008000u
#define TIMER_START EP_REG(TIMER0 + 0x000u)
#define TIMER_STOP EP_REG(TIMER0 + 0x004u)
#define TIMER_CLEAR EP_REG(TIMER0 + 0x00Cu)
#define TIMER_CAPTURE0 EP_REG(TIMER0 + 0x040u)
#define TIMER_MODE EP_REG(TIMER0 + 0x504u)
#define TIMER_BITMODE EP_REG(TIMER0 + 0x508u)
#define TIMER_PRESCALER EP_REG(TIMER0 + 0x510u)
#define TIMER_CC0 EP_REG(TIMER0 + 0x540u)

static uint32_t ep_timer_high, ep_timer_last;
static uint64_t ep_timer_base; /* ticks before the last ep_timer_align */

void ep_timer_start(void) {
  TIMER_STOP = 1u;
  TIMER_MODE = 0u;      /* timer, not counter */
  TIMER_BITMODE = 3u;   /* 32 bits */
  TIMER_PRESCALER = 0u; /* 16 MHz */
  TIMER_CLEAR = 1u;
  TIMER_START = 1u;
}

uint64_t ep_timer_ticks(void) {
  TIMER_CAPTURE0 = 1u;
  uint32_t now = TIMER_CC0;
  if (now < ep_timer_last) ep_timer_high++;
  ep_timer_last = now;
  return ep_timer_base + ((uint64_t)ep_timer_high << 32 | now);
}

/* Restarts the count from here, so that tick boundaries fall at the same instructions in every
 * run (one tick is added for the restart). */
void ep_timer_align(void) {
  uint64_t now = ep_timer_ticks();
  TIMER_CLEAR = 1u;
  ep_timer_base = now + 1u;
  ep_timer_high = ep_timer_last = 0;
}
