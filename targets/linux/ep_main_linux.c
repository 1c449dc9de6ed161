/* The `edgeprune run` application for Linux boards (a static executable; under qemu-user or on
 * the board). Same protocol as the bare-metal one, with plain files in the working directory:
 * reads input.bin (u32 run count, then every input tensor's bytes), runs the model that many
 * times (copying the inputs into their slots before each run: with the inputs in the arena an
 * invoke overwrites them), writes the output slots to output.bin, and prints on stdout
 *   EP_CLOCK <unit>         insn (qemu-user with edgeprune's plugin) or ns (wall clock)
 *   EP_RUN <i> <ticks>      every run
 *   EP_LAYER <i> <ticks>    every layer: its median over the runs (on a real board the wall
 *                           clock varies; under the plugin every run counts the same)
 *   EP_STACK 0 <bytes>      deepest stack use of the runs
 *   EP_TIMER_COST 0 <ticks> what one clock reading adds to a measured interval
 * Errors go to stdout as "EP_ERROR <message>" with exit code 3. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune_model.h"
#include "ep_board.h"

static uint8_t ep_inputs[EDGEPRUNE_INPUTS_TOTAL_BYTES] __attribute__((aligned(16)));

static int ep_fail(const char *message) {
  printf("EP_ERROR %s\n", message);
  return 3;
}

static int ep_compare_ticks(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The median of n values (the mean of the middle two for an even n); sorts them. */
static uint64_t ep_median(uint64_t *values, uint32_t n) {
  qsort(values, n, sizeof *values, ep_compare_ticks);
  return n % 2 ? values[n / 2] : values[n / 2 - 1] + (values[n / 2] - values[n / 2 - 1]) / 2;
}

static int ep_read_input(uint32_t *runs) {
  FILE *in = fopen("input.bin", "rb");
  if (in == NULL) return ep_fail("cannot open input.bin");
  int complete = fread(runs, sizeof *runs, 1, in) == 1 &&
                 fread(ep_inputs, 1, EDGEPRUNE_INPUTS_TOTAL_BYTES, in) == EDGEPRUNE_INPUTS_TOTAL_BYTES;
  fclose(in);
  return complete ? 0 : ep_fail("input.bin is shorter than the model's inputs");
}

/* The inputs read from input.bin into their slots. */
static void ep_fill_inputs(void) {
  uint32_t offset = 0;
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_INPUTS; offset += edgeprune_input_bytes[i++])
    memcpy(edgeprune_input_slots[i], ep_inputs + offset, edgeprune_input_bytes[i]);
}

int main(void) {
  uint32_t runs = 0;
  ep_timer_start();
  if (ep_read_input(&runs) != 0) return 3;
  if (runs == 0) return ep_fail("input.bin asks for 0 runs");
  uint64_t *run_ticks = calloc(runs, sizeof *run_ticks);
  uint64_t *layer_ticks = calloc((size_t)runs * EDGEPRUNE_NUM_LAYERS, sizeof *layer_ticks); /* [layer][run] */
  if (run_ticks == NULL || layer_ticks == NULL) return ep_fail("out of memory for the run count");

  uint64_t first = ep_timer_ticks(), second = ep_timer_ticks();
  ep_stack_paint();
  for (uint32_t r = 0; r < runs; ++r) { /* nothing printed until the stack is measured */
    ep_fill_inputs();
    uint64_t start = ep_timer_ticks();
    if (edgeprune_invoke() != 0) return ep_fail("a kernel failed (workspace exhausted?)");
    run_ticks[r] = ep_timer_ticks() - start;
    for (uint32_t i = 0; i < EDGEPRUNE_NUM_LAYERS; ++i) layer_ticks[(size_t)i * runs + r] = edgeprune_layer_ticks[i];
  }
  uint32_t stack = ep_stack_high_water();

  printf("EP_CLOCK %s\n", ep_timer_unit());
  for (uint32_t r = 0; r < runs; ++r) printf("EP_RUN %" PRIu32 " %" PRIu64 "\n", r, run_ticks[r]);
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_LAYERS; ++i)
    printf("EP_LAYER %" PRIu32 " %" PRIu64 "\n", i, ep_median(layer_ticks + (size_t)i * runs, runs));
  printf("EP_STACK 0 %" PRIu32 "\n", stack);
  printf("EP_TIMER_COST 0 %" PRIu64 "\n", second - first);
  free(run_ticks);
  free(layer_ticks);

  FILE *out = fopen("output.bin", "wb");
  int failed = out == NULL;
  for (uint32_t i = 0; i < EDGEPRUNE_NUM_OUTPUTS && !failed; ++i)
    failed = fwrite(edgeprune_output_slots[i], 1, edgeprune_output_bytes[i], out) != edgeprune_output_bytes[i];
  if (failed) return ep_fail("cannot write output.bin");
  return fclose(out) == 0 ? 0 : ep_fail("cannot write output.bin");
}
