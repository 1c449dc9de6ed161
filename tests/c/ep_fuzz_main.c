/* Fuzz harness for the device side of the protocol: the port reads from one test case at a time
 * and "times out" at its end. Input (stdin): cases, each a u32 length and that many bytes.
 * Output (stdout): per case, a u32 count of reply bytes and those bytes. Build with ASan/UBSan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ep_port.h"
#include "ep_protocol.h"

#define FUZZ_REPLY_MAX 65536u

static const uint8_t *fuzz_in;
static uint32_t fuzz_in_length, fuzz_in_position;
static uint8_t fuzz_out[FUZZ_REPLY_MAX];
static uint32_t fuzz_out_length;
static uint64_t fuzz_clock;

int ep_port_read_byte(uint32_t timeout_ms) {
  (void)timeout_ms;
  return fuzz_in_position < fuzz_in_length ? fuzz_in[fuzz_in_position++] : -1;
}

void ep_port_write(const uint8_t *data, uint32_t length) {
  if (length > FUZZ_REPLY_MAX - fuzz_out_length) abort();
  memcpy(fuzz_out + fuzz_out_length, data, length);
  fuzz_out_length += length;
}

uint64_t ep_timer_ticks(void) { return fuzz_clock += 7u; }

uint32_t ep_stack_high_water(void) { return 1234u; }

static void put_u32(uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  fwrite(b, 1, 4, stdout);
}

int main(void) {
  static ep_proto proto;
  size_t capacity = 1u << 20, size = 0, got;
  uint8_t *all = malloc(capacity);
  while (all != NULL && (got = fread(all + size, 1, capacity - size, stdin)) > 0)
    if ((size += got) == capacity) all = realloc(all, capacity *= 2);
  if (all == NULL) return 1;
  ep_proto_init(&proto, ep_model_get());
  for (size_t at = 0; at + 4 <= size;) {
    uint32_t length = (uint32_t)all[at] | (uint32_t)all[at + 1] << 8 | (uint32_t)all[at + 2] << 16 |
                      (uint32_t)all[at + 3] << 24;
    at += 4;
    if (length > size - at) return 1;
    fuzz_in = all + at;
    fuzz_in_length = length;
    fuzz_in_position = 0;
    fuzz_out_length = 0;
    while (ep_proto_step(&proto, 0)) {
    }
    put_u32(fuzz_out_length);
    fwrite(fuzz_out, 1, fuzz_out_length, stdout);
    at += length;
  }
  free(all);
  return 0;
}
