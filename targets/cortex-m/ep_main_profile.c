/* The profiling application (profile.elf): serves edgeprune's framed protocol on the board's
 * UART forever; the host writes inputs, runs the model and reads outputs and timings. */
#include "ep_board.h"
#include "ep_model.h"
#include "ep_protocol.h"
#include "ep_uart.h"

static ep_proto ep_proto_state;

int main(void) {
  ep_timer_start();
  ep_uart_init();
  ep_proto_init(&ep_proto_state, ep_model_get());
  ep_proto_serve(&ep_proto_state);
  return 0;
}
