/* The profiling protocol's port on a Cortex-M board: a CMSDK APB UART (the MPS2/MPS3 boards)
 * at EP_UART_BASE, set from the board file's `[uart] base`. Time-outs count the board timer
 * (EP_CLOCK_HZ ticks per second); under QEMU -icount that is virtual time. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_port.h"

#ifdef EP_UART_BASE
#ifndef EP_CLOCK_HZ
#error "EP_CLOCK_HZ (the board's clock_hz) is needed for the UART's time-outs"
#endif

#define EP_UART_REG(offset) (*(volatile uint32_t *)((uintptr_t)(EP_UART_BASE) + (offset)))
#define EP_UART_DATA EP_UART_REG(0x00u)
#define EP_UART_STATE EP_UART_REG(0x04u)
#define EP_UART_CTRL EP_UART_REG(0x08u)
#define EP_UART_BAUDDIV EP_UART_REG(0x10u)
#define EP_UART_TX_FULL 0x1u
#define EP_UART_RX_FULL 0x2u

void ep_uart_init(void) {
  EP_UART_BAUDDIV = 16u; /* the smallest divisor the CMSDK UART accepts */
  EP_UART_CTRL = 0x3u;   /* transmit and receive on, no interrupts */
}

int ep_port_read_byte(uint32_t timeout_ms) {
  uint64_t start = ep_timer_ticks();
  uint64_t limit = (uint64_t)timeout_ms * ((EP_CLOCK_HZ) / 1000u);
  while (!(EP_UART_STATE & EP_UART_RX_FULL)) {
    if (timeout_ms != EP_PORT_FOREVER && ep_timer_ticks() - start >= limit) return -1;
  }
  return (int)(EP_UART_DATA & 0xFFu);
}

void ep_port_write(const uint8_t *data, uint32_t length) {
  for (uint32_t i = 0; i < length; ++i) {
    while (EP_UART_STATE & EP_UART_TX_FULL) {
    }
    EP_UART_DATA = data[i];
  }
}
#endif
