/* The `edgeprune run` application: reads input.bin (u32 run count, then every input tensor's
 * bytes) through semihosting, runs the model that many times, writes output.bin and prints
 * "EP_RUN <i> <ticks>", "EP_LAYER <i> <ticks>" (last run) and "EP_STACK <bytes>" lines. */
#include <stdint.h>

#include "edgeprune_model.h"
#include "ep_board.h"
#include "ep_semihost.h"

static uint8_t ep_inputs[EDGEPRUNE_INPUTS_TOTAL_BYTES] __attribute__((aligned(16)));
static uint8_t ep_outputs[EDGEPRUNE_OUTPUTS_TOTAL_BYTES] __attribute__((aligned(16)));

static void ep_print_line(const char *tag, uint32_t index, uint64_t value) {
  char line[64], digits[24];
  uint32_t n = 0, d = 0;
  while (*tag) line[n++] = *tag++;
  line[n++] = ' ';
  do { digits[d++] = (char)('0' + index % 10); index /= 10; } while (index);
  while (d) line[n++] = digits[--d];
  line[n++] = ' ';
  do { digits[d++] = (char)('0' + value % 10); value /= 10; } while (value);
  while (d) line[n++] = digits[--d];
  line[n++] = '\n';
  line[n] = 0;
  ep_sh_write0(line);
}

static int ep_fail(const char *message) {
  ep_sh_write0("EP_ERROR ");
  ep_sh_write0(message);
  ep_sh_write0("\n");
  return 3;
}

int main(void) {
  const void *inputs[EDGEPRUNE_NUM_INPUTS];
  void *outputs[EDGEPRUNE_NUM_OUTPUTS];
  uint32_t runs = 0, offset = 0;
  ep_timer_start();

  int in = ep_sh_open("input.bin", 0);
  if (in < 0) return ep_fail("cannot open input.bin");
  if (ep_sh_read(in, &runs, sizeof runs) != 0 ||
      ep_sh_read(in, ep_inputs, EDGEPRUNE_INPUTS_TOTAL_BYTES) != 0)
    return ep_fail("input.bin is shorter than the model's inputs");
  ep_sh_close(in);

  for (uint32_t i = 0; i < EDGEPRUNE_NUM_INPUTS; offset += edgeprune_input_bytes[i++]) inputs[i] = ep_inputs + offset;
  offset = 0;
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_OUTPUTS; offset += edgeprune_output_bytes[i++]) outputs[i] = ep_outputs + offset;

  for (uint32_t r = 0; r < runs; ++r) {
    uint64_t start = ep_timer_ticks();
    if (edgeprune_invoke(inputs, outputs) != 0) return ep_fail("a kernel failed (workspace exhausted?)");
    ep_print_line("EP_RUN", r, ep_timer_ticks() - start);
  }
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_LAYERS; ++i) ep_print_line("EP_LAYER", i, edgeprune_layer_ticks[i]);
  ep_print_line("EP_STACK", 0, ep_stack_high_water());

  int out = ep_sh_open("output.bin", 4);
  if (out < 0 || ep_sh_write(out, ep_outputs, EDGEPRUNE_OUTPUTS_TOTAL_BYTES) != 0)
    return ep_fail("cannot write output.bin");
  ep_sh_close(out);
  return 0;
}
