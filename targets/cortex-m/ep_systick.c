/* The board timer as a 64-bit tick counter at the core clock.
 *
 * Default: SysTick. Under QEMU with `-icount shift=0` one tick is (1e9 / clock_hz) guest
 * instructions; on silicon it is clock cycles.
 * EP_TIMER_DWT (board file `timer = "dwt"`): the DWT cycle counter CYCCNT, for real silicon with
 * a DWT (Cortex-M3/M4/M7/M33/M55). SysTick then only interrupts often enough to count CYCCNT's
 * wraps. QEMU does not model CYCCNT (it reads 0), so QEMU boards keep SysTick. */
#include <stdint.h>

#include "ep_board.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu
#define EP_ICSR (*(volatile uint32_t *)0xE000ED04u)

#ifdef EP_TIMER_DWT
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

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
#else
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
#endif
