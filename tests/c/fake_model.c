/* A fake model for protocol tests: output 0 is every input byte plus one, output 1 the sum of the
 * input bytes (int32); 70 "layers" (more than one reply of layer ticks). An input that starts
 * with 0xEE makes invoke fail with code 42. */
#include <stdint.h>
#include <string.h>

#include "ep_model.h"
#include "ep_port.h"

#define FAKE_BYTES 1000u
#define FAKE_LAYERS 70u

static int8_t fake_input[FAKE_BYTES];
static int8_t fake_plus_one[FAKE_BYTES];
static int32_t fake_sum;
static uint64_t fake_layer_ticks[FAKE_LAYERS];
static char fake_name_text[FAKE_LAYERS][12];
static const char *fake_layer_names[FAKE_LAYERS];
static const uint32_t fake_shape[] = {1, 10, 10, 10};
static const uint32_t fake_sum_shape[] = {1};

static const ep_tensor fake_inputs[] = {
    {"image", EP_DTYPE_INT8, 4, fake_shape, FAKE_BYTES, 0.5f, -3, fake_input}};
static const ep_tensor fake_outputs[] = {
    {"plus_one", EP_DTYPE_INT8, 4, fake_shape, FAKE_BYTES, 0.5f, -2, fake_plus_one},
    {"sum", EP_DTYPE_INT32, 1, fake_sum_shape, 4, 1.0f, 0, &fake_sum}};

static int fake_invoke(void) {
  if ((uint8_t)fake_input[0] == 0xEEu) return 42;
  for (uint32_t layer = 0; layer < FAKE_LAYERS; ++layer) {
    uint64_t start = ep_timer_ticks();
    if (layer == 0)
      for (uint32_t i = 0; i < FAKE_BYTES; ++i) fake_plus_one[i] = (int8_t)(uint8_t)((uint8_t)fake_input[i] + 1u);
    if (layer == 1) {
      fake_sum = 0;
      for (uint32_t i = 0; i < FAKE_BYTES; ++i) fake_sum += fake_input[i];
    }
    fake_layer_ticks[layer] = ep_timer_ticks() - start;
  }
  return 0;
}

static const ep_model fake_model = {"host-sim", "fake-plus-one", 1000000000u, 1, 2, fake_inputs, fake_outputs,
                                    4096, 256, FAKE_LAYERS, fake_layer_names, fake_layer_ticks, fake_invoke, NULL};

const ep_model *ep_model_get(void) {
  for (uint32_t i = 0; i < FAKE_LAYERS; ++i) {
    memcpy(fake_name_text[i], "layer_", 6);
    fake_name_text[i][6] = (char)('0' + i / 10);
    fake_name_text[i][7] = (char)('0' + i % 10);
    fake_layer_names[i] = fake_name_text[i];
  }
  return &fake_model;
}
