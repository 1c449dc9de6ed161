/* Linux board runtime: the tick clock and the stack gauge behind ep_board.h.
 *
 * Clock: under qemu-user, edgeprune's TCG plugin (qemu-plugin/ep_insn_plugin.c) counts guest
 * instructions; a marker system call makes it store the count in a counter file, which
 * ep_timer_ticks() then reads, so ticks are instructions and come out the same on every run. The
 * two system calls and the libc wrappers around them cost a fixed number of instructions per
 * reading (EP_TIMER_COST reports it). Without the plugin (a real board, or a program that embeds
 * the model) the ticks are CLOCK_MONOTONIC nanoseconds. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "ep_board.h"

#define EP_MARKER_SYSCALL 0x4550 /* keep in step with qemu-plugin/ep_insn_plugin.c */
#define EP_STACK_PAINT_BYTES (256u * 1024u)
#define EP_STACK_PAINT 0xA5u

static int ep_counter_fd = -1;

void ep_timer_start(void) {
  const char *path = getenv("EP_INSN_COUNTER");
  if (path != NULL && ep_counter_fd < 0) ep_counter_fd = open(path, O_RDONLY);
}

const char *ep_timer_unit(void) { return ep_counter_fd >= 0 ? "insn" : "ns"; }

uint64_t ep_timer_ticks(void) {
  if (ep_counter_fd >= 0) {
    uint64_t instructions = 0;
    syscall(EP_MARKER_SYSCALL); /* -ENOSYS; the plugin stores the count on the way in */
    if (pread(ep_counter_fd, &instructions, sizeof instructions, 0) == (ssize_t)sizeof instructions)
      return instructions;
  }
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* The painted region lies just below the frame of ep_stack_paint's caller; whatever the caller
 * calls afterwards uses the same addresses, so the lowest overwritten byte is its deepest use. */
static uintptr_t ep_stack_low;

__attribute__((noinline)) void ep_stack_paint(void) {
  volatile uint8_t region[EP_STACK_PAINT_BYTES];
  for (uint32_t i = 0; i < EP_STACK_PAINT_BYTES; ++i) region[i] = EP_STACK_PAINT;
  ep_stack_low = (uintptr_t)region;
}

__attribute__((noinline)) uint32_t ep_stack_high_water(void) {
  const volatile uint8_t *region = (const volatile uint8_t *)ep_stack_low;
  uint32_t untouched = 0;
  if (region == NULL) return 0;
  while (untouched < EP_STACK_PAINT_BYTES && region[untouched] == EP_STACK_PAINT) ++untouched;
  return EP_STACK_PAINT_BYTES - untouched;
}

void ep_board_exit(int code) { exit(code); }
