/* SysTick at the core clock as a 64-bit tick counter. Under QEMU with `-icount shift=0` one tick
 * is (1e9 / clock_hz) guest instructions; on silicon it is clock cycles. */
#include <stdint.h>

#include "ep_board.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t ep_systick_wraps;

void ep_systick_handler(void) { ep_systick_wraps++; }

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
  return (uint64_t)wraps * (SYST_RELOAD + 1u) + (SYST_RELOAD - current);
}
