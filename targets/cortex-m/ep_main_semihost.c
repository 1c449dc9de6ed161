/* The `edgeprune run` application: reads input.bin (u32 run count, then every input tensor's
 * bytes) through semihosting straight into the model's input slots, runs the model that many
 * times (reading the inputs again before each run when they are in the arena: an invoke
 * overwrites them), writes the output slots to output.bin and prints "EP_RUN <i> <ticks>",
 * "EP_LAYER <i> <ticks>" (last run) and "EP_STACK <bytes>" lines. No buffers of its own. */
#include <stdint.h>

#include "edgeprune_model.h"
#include "ep_board.h"
#include "ep_semihost.h"

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

/* Reads the run count and the inputs into their slots; 0, or the exit code after an error. */
static int ep_read_inputs(uint32_t *runs) {
  int in = ep_sh_open("input.bin", 0);
  if (in < 0) return ep_fail("cannot open input.bin");
  int missing = ep_sh_read(in, runs, sizeof *runs) != 0;
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_INPUTS && !missing; ++i)
    missing = ep_sh_read(in, edgeprune_input_slots[i], edgeprune_input_bytes[i]) != 0;
  ep_sh_close(in);
  return missing ? ep_fail("input.bin is shorter than the model's inputs") : 0;
}

int main(void) {
  uint32_t runs = 0;
  ep_timer_start();
  if (ep_read_inputs(&runs) != 0) return 3;

  for (uint32_t r = 0; r < runs; ++r) {
    if (r > 0 && EDGEPRUNE_IO_IN_ARENA && ep_read_inputs(&runs) != 0) return 3;
    uint64_t start = ep_timer_ticks();
    if (edgeprune_invoke() != 0) return ep_fail("a kernel failed (workspace exhausted?)");
    ep_print_line("EP_RUN", r, ep_timer_ticks() - start);
  }
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_LAYERS; ++i) ep_print_line("EP_LAYER", i, edgeprune_layer_ticks[i]);
  ep_print_line("EP_STACK", 0, ep_stack_high_water());

  int out = ep_sh_open("output.bin", 4), failed = out < 0;
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_OUTPUTS && !failed; ++i)
    failed = ep_sh_write(out, edgeprune_output_slots[i], edgeprune_output_bytes[i]) != 0;
  if (failed) return ep_fail("cannot write output.bin");
  ep_sh_close(out);
  return 0;
}
