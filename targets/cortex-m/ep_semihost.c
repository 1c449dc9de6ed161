/* Semihosting calls (BKPT 0xAB); the board exits through SYS_EXIT_EXTENDED. */
#include "ep_semihost.h"

#include "ep_board.h"

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE0 = 0x04, SYS_WRITE = 0x05, SYS_READ = 0x06,
       SYS_EXIT_EXTENDED = 0x20 };

static uint32_t ep_semihost(uint32_t op, const void *arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

static uint32_t ep_strlen(const char *s) {
  uint32_t n = 0;
  while (s[n]) ++n;
  return n;
}

int ep_sh_open(const char *path, int mode) {
  uint32_t args[3] = {(uint32_t)path, (uint32_t)mode, ep_strlen(path)};
  return (int)ep_semihost(SYS_OPEN, args);
}

int ep_sh_close(int handle) {
  uint32_t args[1] = {(uint32_t)handle};
  return (int)ep_semihost(SYS_CLOSE, args);
}

uint32_t ep_sh_read(int handle, void *buffer, uint32_t length) {
  uint32_t args[3] = {(uint32_t)handle, (uint32_t)buffer, length};
  return ep_semihost(SYS_READ, args);
}

uint32_t ep_sh_write(int handle, const void *buffer, uint32_t length) {
  uint32_t args[3] = {(uint32_t)handle, (uint32_t)buffer, length};
  return ep_semihost(SYS_WRITE, args);
}

void ep_sh_write0(const char *text) { ep_semihost(SYS_WRITE0, text); }

void ep_board_exit(int code) {
  uint32_t args[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
  for (;;) ep_semihost(SYS_EXIT_EXTENDED, args);
}
