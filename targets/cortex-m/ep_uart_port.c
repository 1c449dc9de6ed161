/* The profiling protocol's port (ep_port.h) on the board's UART driver (ep_uart.h). Time-outs
 * count the board timer (EP_CLOCK_HZ ticks per second); under QEMU -icount that is virtual time. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_port.h"
#include "ep_uart.h"

#ifdef EP_UART_BASE
#ifndef EP_CLOCK_HZ
#error "EP_CLOCK_HZ (the board's clock_hz) is needed for the UART's time-outs"
#endif

int ep_port_read_byte(uint32_t timeout_ms) {
  uint64_t start = ep_timer_ticks();
  uint64_t limit = (uint64_t)timeout_ms * ((EP_CLOCK_HZ) / 1000u);
  while (!ep_uart_rx_ready()) {
    if (timeout_ms != EP_PORT_FOREVER && ep_timer_ticks() - start >= limit) return -1;
  }
  return ep_uart_rx_byte();
}

void ep_port_write(const uint8_t *data, uint32_t length) {
  for (uint32_t i = 0; i < length; ++i) ep_uart_tx_byte(data[i]);
}
#endif
