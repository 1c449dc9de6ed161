/* Board timer `dwt`: the DWT cycle counter CYCCNT, for silicon whose core has a DWT with a
 * cycle counter (Cortex-M3/M4/M7/M33/M55; not M0/M0+). SysTick only interrupts often enough to
 * count CYCCNT's wraps. QEMU does not model CYCCNT (it reads 0): QEMU boards use `systick`. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_scs.h"

static volatile uint32_t ep_dwt_high, ep_dwt_last;

/* CYCCNT extended to 64 bits; callers keep interrupts off around it. */
static uint64_t ep_dwt_extend(void) {
  uint32_t now = DWT_CYCCNT;
  if (now < ep_dwt_last) ep_dwt_high++;
  ep_dwt_last = now;
  return (uint64_t)ep_dwt_high << 32 | now;
}

void ep_systick_handler(void) { (void)ep_dwt_extend(); }

void ep_timer_start(void) {
  DEMCR |= 1u << 24;      /* TRCENA: the DWT on */
  DWT_LAR = 0xC5ACCE55u;  /* unlock (Cortex-M7; ignored elsewhere) */
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u;         /* CYCCNTENA */
  SYST_RVR = SYST_RELOAD; /* a wrap check every 2^24 cycles, well inside CYCCNT's 2^32 */
  SYST_CVR = 0;
  SYST_CSR = 0x7u;
}

void ep_timer_align(void) {} /* CYCCNT counts every cycle: no phase to align */

uint64_t ep_timer_ticks(void) {
  uint32_t primask;
  __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
  uint64_t ticks = ep_dwt_extend();
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return ticks;
}
