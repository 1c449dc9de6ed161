/* Cortex-M start-up: vector table, reset handler (the board's setup, FPU on, .data copied, .bss
 * zeroed, stack painted for the high-water mark), fault handlers that report through the
 * board's exit path. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_scs.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern uint32_t __stack_bottom, __stack_top;
extern int main(void);

#define EP_STACK_PAINT 0xA5A5A5A5u

__attribute__((noreturn)) void ep_reset_handler(void);
__attribute__((noreturn)) static void ep_fault_handler(void) { ep_board_exit(0xFA); }
/* Timer drivers that use SysTick's interrupt define it; elsewhere a SysTick interrupt is a fault. */
__attribute__((weak)) void ep_systick_handler(void) { ep_board_exit(0xFA); }
/* The board's setup (drivers/setup_*.c) if it has one; without it the core keeps its reset clock. */
__attribute__((weak)) void ep_board_setup(void) {}

__attribute__((section(".isr_vector"), used)) static const void *const ep_vectors[16] = {
    &__stack_top,                /* initial stack pointer */
    (void *)ep_reset_handler,    /* reset */
    (void *)ep_fault_handler,    /* NMI */
    (void *)ep_fault_handler,    /* HardFault */
    (void *)ep_fault_handler,    /* MemManage */
    (void *)ep_fault_handler,    /* BusFault */
    (void *)ep_fault_handler,    /* UsageFault */
    (void *)ep_fault_handler,    /* SecureFault (v8-M) */
    0, 0, 0,                     /* reserved */
    (void *)ep_fault_handler,    /* SVCall */
    (void *)ep_fault_handler,    /* DebugMonitor */
    0,                           /* reserved */
    (void *)ep_fault_handler,    /* PendSV */
    (void *)ep_systick_handler,  /* SysTick */
};

static void ep_paint_stack(void) {
  /* Paint from the bottom up to a little below the current frame. */
  uint32_t *sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t *p = &__stack_bottom; p < sp - 16; ++p) *p = EP_STACK_PAINT;
}

uint32_t ep_stack_high_water(void) {
  const uint32_t *p = &__stack_bottom;
  while (p < &__stack_top && *p == EP_STACK_PAINT) ++p;
  return (uint32_t)((const uint8_t *)&__stack_top - (const uint8_t *)p);
}

void ep_reset_handler(void) {
  ep_board_setup();
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  EP_CPACR |= 0xFu << 20; /* CP10 and CP11: full access */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  for (uint32_t *src = &__data_load, *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  ep_paint_stack();
  ep_board_exit(main());
}
