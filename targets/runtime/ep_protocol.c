/* The device side of the profiling protocol (see ep_protocol.h). C99, no heap; every write into a
 * buffer is checked against its size. */
#include "ep_protocol.h"

#include <string.h>

#include "ep_port.h"

#define EP_REPLY_DATA_MAX (EP_PROTO_MAX_PAYLOAD - 1u) /* after the status byte */
#define EP_TICKS_PER_REPLY ((EP_REPLY_DATA_MAX - 4u) / 8u)
#define EP_DRAIN_MAX (4u * EP_PROTO_FRAME_MAX)

#if EP_PROTO_MAX_PAYLOAD < 64u || EP_PROTO_MAX_PAYLOAD > 65535u
#error "EP_PROTO_MAX_PAYLOAD must be between 64 and 65535"
#endif

uint32_t ep_crc32(const uint8_t *data, uint32_t length) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint32_t i = 0; i < length; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static void put_u16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
  put_u16(p, v);
  put_u16(p + 2, v >> 16);
}

static void put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)v);
  put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t get_u32(const uint8_t *p) { return get_u16(p) | get_u16(p + 2) << 16; }

/* Frames `length` payload bytes already at frame + HEADER and returns the frame's size. */
static uint32_t seal(uint8_t *frame, uint8_t type, uint8_t seq, uint32_t length) {
  frame[0] = EP_PROTO_SYNC;
  frame[1] = type;
  frame[2] = seq;
  put_u16(frame + 3, length);
  put_u32(frame + EP_PROTO_HEADER_BYTES + length,
          ep_crc32(frame + 1, EP_PROTO_HEADER_BYTES - 1u + length));
  return EP_PROTO_HEADER_BYTES + length + EP_PROTO_CRC_BYTES;
}

/* An error reply that is not cached: a frame that was never executed. */
static void send_error(uint8_t type, uint8_t seq, uint8_t status) {
  uint8_t frame[EP_PROTO_HEADER_BYTES + 1u + EP_PROTO_CRC_BYTES];
  frame[EP_PROTO_HEADER_BYTES] = status;
  ep_port_write(frame, seal(frame, (uint8_t)(type | EP_PROTO_REPLY), seq, 1u));
}

static uint32_t read_bytes(uint8_t *out, uint32_t length) {
  uint32_t got = 0;
  for (int c; got < length && (c = ep_port_read_byte(EP_PROTO_BYTE_TIMEOUT_MS)) >= 0;) out[got++] = (uint8_t)c;
  return got;
}

/* Skips the rest of a bad frame: reads until the line is quiet (or a bounded amount). */
static void drain(void) {
  for (uint32_t n = 0; n < EP_DRAIN_MAX && ep_port_read_byte(EP_PROTO_BYTE_TIMEOUT_MS) >= 0; ++n) {
  }
}

/* ---- The info blob, written through a window so that any slice of it fits one reply. ---- */

typedef struct {
  uint8_t *out;
  uint32_t start; /* blob offset of out[0] */
  uint32_t capacity;
  uint32_t position; /* blob bytes produced so far */
} ep_window;

static void win_put(ep_window *w, const uint8_t *bytes, uint32_t length) {
  for (uint32_t i = 0; i < length; ++i, ++w->position)
    if (w->position >= w->start && w->position - w->start < w->capacity) w->out[w->position - w->start] = bytes[i];
}

static void win_u8(ep_window *w, uint32_t v) {
  uint8_t b = (uint8_t)v;
  win_put(w, &b, 1u);
}

static void win_u16(ep_window *w, uint32_t v) {
  uint8_t b[2];
  put_u16(b, v);
  win_put(w, b, 2u);
}

static void win_u32(ep_window *w, uint32_t v) {
  uint8_t b[4];
  put_u32(b, v);
  win_put(w, b, 4u);
}

static void win_str(ep_window *w, const char *s) {
  uint32_t n = 0;
  while (s != NULL && n < 255u && s[n] != '\0') ++n;
  win_u8(w, n);
  win_put(w, (const uint8_t *)s, n);
}

static void win_tensor(ep_window *w, const ep_tensor *t) {
  uint32_t scale_bits;
  memcpy(&scale_bits, &t->scale, sizeof scale_bits);
  win_str(w, t->name);
  win_u8(w, t->dtype);
  win_u8(w, t->shape != NULL ? t->ndim : 0u);
  for (uint32_t i = 0; t->shape != NULL && i < t->ndim; ++i) win_u32(w, t->shape[i]);
  win_u32(w, t->nbytes);
  win_u32(w, scale_bits);
  win_u32(w, (uint32_t)t->zero_point);
}

static void win_info(ep_window *w, const ep_model *m) {
  win_u8(w, EP_PROTO_VERSION);
  win_u16(w, EP_PROTO_MAX_PAYLOAD);
  win_str(w, m->board);
  win_str(w, m->model_id);
  win_u32(w, m->tick_hz);
  win_u32(w, m->arena_bytes);
  win_u32(w, m->workspace_bytes);
  uint32_t inputs = m->inputs != NULL ? m->num_inputs : 0u;
  uint32_t outputs = m->outputs != NULL ? m->num_outputs : 0u;
  win_u8(w, inputs);
  win_u8(w, outputs);
  for (uint32_t i = 0; i < inputs; ++i) win_tensor(w, &m->inputs[i]);
  for (uint32_t i = 0; i < outputs; ++i) win_tensor(w, &m->outputs[i]);
  win_u16(w, m->num_layers);
  for (uint32_t i = 0; i < m->num_layers; ++i) win_str(w, m->layer_names != NULL ? m->layer_names[i] : NULL);
}

/* ---- Commands: each reads `in` (`n` bytes) and writes at most EP_REPLY_DATA_MAX bytes to
 * `out`, setting *out_n; returns a status. ---- */

static int cmd_hello(const ep_model *m, const uint8_t *in, uint32_t n, uint8_t *out, uint32_t *out_n) {
  (void)m;
  (void)in;
  if (n != 0u) return EP_STATUS_ARGUMENT;
  out[0] = EP_PROTO_VERSION;
  put_u16(out + 1, EP_PROTO_MAX_PAYLOAD);
  *out_n = 3u;
  return EP_STATUS_OK;
}

static int cmd_info(const ep_model *m, const uint8_t *in, uint32_t n, uint8_t *out, uint32_t *out_n) {
  if (n != 4u) return EP_STATUS_ARGUMENT;
  ep_window w = {out + 4, get_u32(in), EP_REPLY_DATA_MAX - 4u, 0u};
  win_info(&w, m);
  if (w.start > w.position) return EP_STATUS_ARGUMENT;
  uint32_t rest = w.position - w.start;
  put_u32(out, w.position);
  *out_n = 4u + (rest < w.capacity ? rest : w.capacity);
  return EP_STATUS_OK;
}

/* The tensor `index` of `count` and the checked byte range [offset, offset + length). */
static uint8_t *tensor_range(const ep_tensor *tensors, uint32_t count, uint32_t index, uint32_t offset,
                             uint32_t length) {
  if (tensors == NULL || index >= count) return NULL;
  const ep_tensor *t = &tensors[index];
  if (t->data == NULL || length > t->nbytes || offset > t->nbytes - length) return NULL;
  return (uint8_t *)t->data + offset;
}

static int cmd_write_input(const ep_model *m, const uint8_t *in, uint32_t n, uint8_t *out, uint32_t *out_n) {
  (void)out;
  (void)out_n;
  if (n < 5u) return EP_STATUS_ARGUMENT;
  uint8_t *dst = tensor_range(m->inputs, m->num_inputs, in[0], get_u32(in + 1), n - 5u);
  if (dst == NULL) return EP_STATUS_ARGUMENT;
  memcpy(dst, in + 5, n - 5u);
  return EP_STATUS_OK;
}

static int cmd_infer(const ep_model *m, const uint8_t *in, uint32_t n, uint8_t *out, uint32_t *out_n) {
  if (n != 4u || m->invoke == NULL) return EP_STATUS_ARGUMENT;
  uint32_t runs = get_u32(in);
  if (runs == 0u || runs > EP_TICKS_PER_REPLY) return EP_STATUS_ARGUMENT;
  for (uint32_t run = 0; run < runs; ++run) {
    if (m->layer_ticks != NULL) memset(m->layer_ticks, 0, sizeof(uint64_t) * m->num_layers);
    if (m->prepare != NULL) m->prepare();
#ifdef EP_PORT_TIMER_ALIGN
    ep_timer_align();
#endif
    uint64_t start = ep_timer_ticks();
    int code = m->invoke();
    uint64_t ticks = ep_timer_ticks() - start;
    if (code != 0) {
      put_u32(out, (uint32_t)code);
      put_u32(out + 4, run);
      *out_n = 8u;
      return EP_STATUS_INVOKE;
    }
    put_u64(out + 4u + 8u * run, ticks);
  }
  put_u32(out, runs);
  *out_n = 4u + 8u * runs;
  return EP_STATUS_OK;
}

static int cmd_read_output(const ep_model *m, const uint8_t *in, uint32_t n, uint8_t *out, uint32_t *out_n) {
  if (n != 7u) return EP_STATUS_ARGUMENT;
  uint32_t length = get_u16(in + 5);
  if (length > EP_REPLY_DATA_MAX) return EP_STATUS_ARGUMENT;
  const uint8_t *src = tensor_range(m->outputs, m->num_outputs, in[0], get_u32(in + 1), length);
  if (src == NULL) return EP_STATUS_ARGUMENT;
  memcpy(out, src, length);
  *out_n = length;
  return EP_STATUS_OK;
}

static int cmd_read_layer_ticks(const ep_model *m, const uint8_t *in, uint32_t n, uint8_t *out, uint32_t *out_n) {
  if (n != 2u) return EP_STATUS_ARGUMENT;
  uint32_t first = get_u16(in), layers = m->layer_ticks != NULL ? m->num_layers : 0u;
  if (first > layers) return EP_STATUS_ARGUMENT;
  uint32_t count = layers - first < EP_TICKS_PER_REPLY ? layers - first : EP_TICKS_PER_REPLY;
  put_u16(out, layers);
  put_u16(out + 2, count);
  for (uint32_t i = 0; i < count; ++i) put_u64(out + 4u + 8u * i, m->layer_ticks[first + i]);
  *out_n = 4u + 8u * count;
  return EP_STATUS_OK;
}

static int cmd_read_stack(const ep_model *m, const uint8_t *in, uint32_t n, uint8_t *out, uint32_t *out_n) {
  (void)m;
  (void)in;
  if (n != 0u) return EP_STATUS_ARGUMENT;
  put_u32(out, ep_stack_high_water());
  *out_n = 4u;
  return EP_STATUS_OK;
}

typedef int (*ep_command)(const ep_model *, const uint8_t *, uint32_t, uint8_t *, uint32_t *);

static ep_command command_for(uint8_t type) {
  switch (type) {
    case EP_CMD_HELLO: return cmd_hello;
    case EP_CMD_INFO: return cmd_info;
    case EP_CMD_WRITE_INPUT: return cmd_write_input;
    case EP_CMD_INFER: return cmd_infer;
    case EP_CMD_READ_OUTPUT: return cmd_read_output;
    case EP_CMD_READ_LAYER_TICKS: return cmd_read_layer_ticks;
    case EP_CMD_READ_STACK: return cmd_read_stack;
    default: return NULL;
  }
}

/* Runs a checked frame's command and keeps its reply in proto->tx. */
static void execute(ep_proto *p, uint8_t type, uint8_t seq, uint32_t length, uint32_t crc) {
  uint8_t *reply = p->tx + EP_PROTO_HEADER_BYTES;
  uint32_t data_length = 0;
  ep_command command = command_for(type);
  reply[0] = command != NULL ? (uint8_t)command(p->model, p->rx + EP_PROTO_HEADER_BYTES, length, reply + 1,
                                                &data_length)
                             : (uint8_t)EP_STATUS_COMMAND;
  if (reply[0] != EP_STATUS_OK && reply[0] != EP_STATUS_INVOKE) data_length = 0;
  p->tx_length = seal(p->tx, (uint8_t)(type | EP_PROTO_REPLY), seq, 1u + data_length);
  p->last_seq = seq;
  p->last_crc = crc;
  p->in_session = 1u;
}

void ep_proto_init(ep_proto *proto, const ep_model *model) {
  memset(proto, 0, sizeof *proto);
  proto->model = model;
}

int ep_proto_step(ep_proto *p, uint32_t wait_ms) {
  uint8_t *f = p->rx;
  int c;
  do {
    if ((c = ep_port_read_byte(wait_ms)) < 0) return 0;
  } while (c != (int)EP_PROTO_SYNC);
  uint32_t got = read_bytes(f + 1, EP_PROTO_HEADER_BYTES - 1u);
  uint8_t type = got >= 1u ? f[1] : 0x7Fu, seq = got >= 2u ? f[2] : 0u;
  if (got < EP_PROTO_HEADER_BYTES - 1u) {
    send_error(type, seq, EP_STATUS_TIMEOUT);
    return 1;
  }
  uint32_t length = get_u16(f + 3);
  if (length > EP_PROTO_MAX_PAYLOAD) {
    drain();
    send_error(type, seq, EP_STATUS_LENGTH);
    return 1;
  }
  uint32_t rest = length + EP_PROTO_CRC_BYTES;
  if (read_bytes(f + EP_PROTO_HEADER_BYTES, rest) < rest) {
    send_error(type, seq, EP_STATUS_TIMEOUT);
    return 1;
  }
  uint32_t crc = ep_crc32(f + 1, EP_PROTO_HEADER_BYTES - 1u + length);
  if (crc != get_u32(f + EP_PROTO_HEADER_BYTES + length)) {
    drain();
    send_error(type, seq, EP_STATUS_CRC);
  } else if (type & EP_PROTO_REPLY) {
    send_error(type, seq, EP_STATUS_COMMAND); /* a reply is not a command */
  } else if (type == EP_CMD_HELLO || (p->in_session && seq == (uint8_t)(p->last_seq + 1u))) {
    execute(p, type, seq, length, crc);
    ep_port_write(p->tx, p->tx_length);
  } else if (p->in_session && seq == p->last_seq && crc == p->last_crc) {
    ep_port_write(p->tx, p->tx_length); /* a retry: the same reply again */
  } else {
    send_error(type, seq, EP_STATUS_SEQUENCE);
  }
  return 1;
}

void ep_proto_serve(ep_proto *proto) {
  for (;;) ep_proto_step(proto, EP_PORT_FOREVER);
}
