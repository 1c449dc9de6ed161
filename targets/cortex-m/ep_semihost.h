/* Arm semihosting: file I/O and exit through the debugger (QEMU -semihosting-config). */
#ifndef EP_SEMIHOST_H
#define EP_SEMIHOST_H
#include <stdint.h>

int ep_sh_open(const char *path, int mode); /* mode: 0 = "rb", 4 = "wb"; -1 on error */
int ep_sh_close(int handle);
/* Bytes NOT transferred (0 = all of them), as the semihosting calls define it. */
uint32_t ep_sh_read(int handle, void *buffer, uint32_t length);
uint32_t ep_sh_write(int handle, const void *buffer, uint32_t length);
void ep_sh_write0(const char *text);

#endif
