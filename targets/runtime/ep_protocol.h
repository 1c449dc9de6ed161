/* The device side of edgeprune's framed profiling protocol.
 *
 * Frame (both directions; integers little-endian):
 *   sync 0xEB | type u8 | seq u8 | length u16 | payload[length] | crc32 u32
 * The CRC is CRC-32 (IEEE 802.3, as zlib.crc32) over type..payload. A request's type is a
 * command (EP_CMD_*); its reply has type 0x80|command, the same seq, and a payload that starts
 * with a status byte (EP_STATUS_*). The host starts a session with HELLO (any seq); after that
 * each new command carries seq+1 (mod 256). Re-sending the previous frame unchanged (same seq) is
 * a retry: the device sends the cached reply again without executing the command twice.
 * Every frame that starts with the sync byte gets exactly one reply; other bytes are skipped.
 *
 * Commands (request payload -> reply data after the status byte):
 *   HELLO                                  -> version u8, max_payload u16
 *   INFO     offset u32                    -> total u32, bytes of the info blob from offset
 *   WRITE_INPUT index u8, offset u32, bytes -> (none)
 *   INFER    runs u32                      -> runs u32, ticks u64 per run
 *            (on failure status INVOKE and: code i32, run u32)
 *   READ_OUTPUT index u8, offset u32, length u16 -> bytes
 *   READ_LAYER_TICKS first u16             -> layers u16, count u16, ticks u64 per layer
 *   READ_STACK                             -> high-water bytes u32
 * The info blob: version u8, max_payload u16, str board, str model_id, tick_hz u32,
 *   arena u32, workspace u32, inputs u8, outputs u8, then per tensor (inputs, then outputs):
 *   str name, dtype u8, ndim u8, dims u32[ndim], nbytes u32, scale f32, zero_point i32;
 *   then layers u16 and str name per layer. A str is a length u8 and that many bytes. */
#ifndef EP_PROTOCOL_H
#define EP_PROTOCOL_H
#include <stdint.h>

#include "ep_model.h"

#ifndef EP_PROTO_MAX_PAYLOAD
#define EP_PROTO_MAX_PAYLOAD 512u /* bytes; sets the two frame buffers' size */
#endif
#ifndef EP_PROTO_BYTE_TIMEOUT_MS
#define EP_PROTO_BYTE_TIMEOUT_MS 50u /* silence that ends a partial frame */
#endif

#define EP_PROTO_VERSION 1u
#define EP_PROTO_SYNC 0xEBu
#define EP_PROTO_HEADER_BYTES 5u
#define EP_PROTO_CRC_BYTES 4u
#define EP_PROTO_FRAME_MAX (EP_PROTO_HEADER_BYTES + EP_PROTO_MAX_PAYLOAD + EP_PROTO_CRC_BYTES)
#define EP_PROTO_REPLY 0x80u

enum {
  EP_CMD_HELLO = 0x01,
  EP_CMD_INFO = 0x02,
  EP_CMD_WRITE_INPUT = 0x03,
  EP_CMD_INFER = 0x04,
  EP_CMD_READ_OUTPUT = 0x05,
  EP_CMD_READ_LAYER_TICKS = 0x06,
  EP_CMD_READ_STACK = 0x07
};

enum {
  EP_STATUS_OK = 0,
  EP_STATUS_CRC = 1,      /* the frame's CRC did not match */
  EP_STATUS_LENGTH = 2,   /* length above EP_PROTO_MAX_PAYLOAD */
  EP_STATUS_TIMEOUT = 3,  /* the frame stopped before its end */
  EP_STATUS_COMMAND = 4,  /* unknown command */
  EP_STATUS_ARGUMENT = 5, /* payload of the wrong size, index or range out of bounds */
  EP_STATUS_SEQUENCE = 6, /* no HELLO yet, or seq neither the last nor the next */
  EP_STATUS_INVOKE = 7    /* the model's invoke returned non-zero */
};

typedef struct {
  const ep_model *model;
  uint8_t rx[EP_PROTO_FRAME_MAX];
  uint8_t tx[EP_PROTO_FRAME_MAX]; /* the last executed command's reply, kept for retries */
  uint32_t tx_length;
  uint32_t last_crc;
  uint8_t last_seq;
  uint8_t in_session;
} ep_proto;

void ep_proto_init(ep_proto *proto, const ep_model *model);
/* Waits up to `wait_ms` for a frame and answers it. Returns 1 if a frame was answered,
 * 0 if nothing but non-sync bytes (or nothing) came. */
int ep_proto_step(ep_proto *proto, uint32_t wait_ms);
/* Answers frames forever. */
void ep_proto_serve(ep_proto *proto);

uint32_t ep_crc32(const uint8_t *data, uint32_t length);

#endif
