/* What the profiling protocol needs to know about a compiled model. The generated driver fills
 * one `ep_model` and returns it from ep_model_get(); the protocol only reads it, except for the
 * input buffers (written by WRITE_INPUT) and layer_ticks (cleared before each invoke). */
#ifndef EP_MODEL_H
#define EP_MODEL_H
#include <stdint.h>

/* Element types, as the wire carries them. */
enum {
  EP_DTYPE_INT8 = 1,
  EP_DTYPE_UINT8 = 2,
  EP_DTYPE_INT16 = 3,
  EP_DTYPE_INT32 = 4,
  EP_DTYPE_FLOAT32 = 5
};

/* One input or output tensor. `data` points at `nbytes` bytes the model reads or writes. */
typedef struct {
  const char *name;       /* up to 255 characters are reported */
  uint8_t dtype;          /* EP_DTYPE_* */
  uint8_t ndim;           /* entries of `shape` */
  const uint32_t *shape;
  uint32_t nbytes;
  float scale;            /* quantization: real = scale * (q - zero_point); 1 and 0 if none */
  int32_t zero_point;
  void *data;
} ep_tensor;

typedef struct {
  const char *board;      /* e.g. "mps2-an386" */
  const char *model_id;   /* e.g. the model's content hash */
  uint32_t tick_hz;       /* ep_timer_ticks() per second; 0 if unknown */
  uint8_t num_inputs;
  uint8_t num_outputs;
  const ep_tensor *inputs;
  const ep_tensor *outputs;
  uint32_t arena_bytes;     /* static activation memory */
  uint32_t workspace_bytes; /* kernels' scratch memory */
  uint16_t num_layers;
  const char *const *layer_names; /* num_layers names */
  uint64_t *layer_ticks;  /* num_layers entries: ticks spent in each layer by the last invoke */
  int (*invoke)(void);    /* runs the model once on the inputs; 0 on success */
  /* Optional (NULL if none): called before each timed invoke, e.g. to copy the inputs into slots
   * that an invoke overwrites, so that every invoke runs on the inputs last written. */
  void (*prepare)(void);
} ep_model;

/* Defined by the generated driver (or a test's fake model). */
const ep_model *ep_model_get(void);

#endif
