/* Memory-mapped registers for the board drivers (drivers/): 32-bit access and a bounded wait. */
#ifndef EP_REGS_H
#define EP_REGS_H
#include <stdint.h>

#define EP_REG(address) (*(volatile uint32_t *)(uintptr_t)(address))

/* Waits until (*reg & mask) == want, at most `tries` reads; returns 1 if it got there. The
 * bound keeps a board whose clock or peripheral does not answer (or QEMU, which leaves many
 * vendor registers unimplemented and reading 0) from hanging at reset. */
static inline int ep_wait_bits(volatile uint32_t *reg, uint32_t mask, uint32_t want, uint32_t tries) {
  while (tries--) {
    if ((*reg & mask) == want) return 1;
  }
  return 0;
}

#endif
