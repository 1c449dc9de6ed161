#include "ep_workspace.h"

#define EP_WORKSPACE_ALIGN 16u

static uint8_t *ep_ws_base;
static size_t ep_ws_size, ep_ws_top;

void ep_workspace_init(uint8_t *buffer, size_t bytes) {
  ep_ws_base = buffer;
  ep_ws_size = bytes;
  ep_ws_top = 0;
}

/* Each block is preceded by the previous top, so frees must come in reverse order (LIFO). */
void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int dtype_code,
                               int dtype_bits) {
  (void)device_type; (void)device_id; (void)dtype_code; (void)dtype_bits;
  size_t size = ((size_t)nbytes + EP_WORKSPACE_ALIGN - 1u) & ~(size_t)(EP_WORKSPACE_ALIGN - 1u);
  if (ep_ws_base == NULL || size > ep_ws_size - ep_ws_top) return NULL;
  void *block = ep_ws_base + ep_ws_top;
  ep_ws_top += size;
  return block;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr) {
  (void)device_type; (void)device_id;
  uint8_t *block = (uint8_t *)ptr;
  if (block < ep_ws_base || block > ep_ws_base + ep_ws_top) return -1;
  ep_ws_top = (size_t)(block - ep_ws_base);
  return 0;
}

/* LLVM-built kernels reach the two functions through these pointers (NULL unless defined). */
void *(*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = TVMBackendAllocWorkspace;
int (*__TVMBackendFreeWorkspace)(int, int, void *) = TVMBackendFreeWorkspace;
