/* Times a loop of exactly 2,000,000 instructions (1,000,000 x subs+bne) and prints the ticks. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_semihost.h"

int main(void) {
  char text[24];
  int n = 22;
  uint32_t count = 1000000;
  ep_timer_start();
  uint64_t start = ep_timer_ticks();
  __asm__ volatile(".syntax unified\n1: subs %0, %0, #1\n\tbne 1b" : "+r"(count));
  uint64_t ticks = ep_timer_ticks() - start;
  text[23] = 0;
  text[22] = '\n';
  do { text[--n] = (char)('0' + ticks % 10); ticks /= 10; } while (ticks);
  ep_sh_write0(text + n);
  return 0;
}
