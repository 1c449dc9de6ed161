/* The kernels' scratch memory: one static buffer used as a LIFO stack, as TVM's
 * TVMBackendAllocWorkspace / TVMBackendFreeWorkspace contract requires. No heap. */
#ifndef EP_WORKSPACE_H
#define EP_WORKSPACE_H
#include <stddef.h>
#include <stdint.h>

void ep_workspace_init(uint8_t *buffer, size_t bytes);
void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int dtype_code, int dtype_bits);
int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr);

#endif
