/* Board timer `systick` (every core): SysTick at the core clock, extended to 64 bits by its wrap
 * interrupt. On silicon one tick is one core clock cycle; under QEMU with `-icount shift=0` it
 * is (1e9 / clock_hz) guest instructions. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_scs.h"

static volatile uint32_t ep_systick_wraps;
static uint64_t ep_systick_base; /* ticks before the last ep_timer_align */

void ep_systick_handler(void) { ep_systick_wraps++; }

/* Restarts SysTick's period here, keeping the count going (one tick is added for the restart). */
void ep_timer_align(void) {
  uint64_t now = ep_timer_ticks();
  SYST_CSR = 0;
  EP_ICSR = 1u << 25; /* PENDSTCLR: drop a wrap that came before the stop */
  ep_systick_base = now + 1u;
  ep_systick_wraps = 0;
  ep_timer_start();
}

void ep_timer_start(void) {
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 0x7u; /* enable, interrupt on wrap, core clock */
  while (SYST_CVR == 0) {
  } /* the counter holds 0 until its first reload, which is not a wrap */
}

uint64_t ep_timer_ticks(void) {
  uint32_t wraps, current;
  do { /* re-read if the counter wrapped between the two reads */
    wraps = ep_systick_wraps;
    current = SYST_CVR;
  } while (wraps != ep_systick_wraps);
  return ep_systick_base + (uint64_t)wraps * (SYST_RELOAD + 1u) + (SYST_RELOAD - current);
}
