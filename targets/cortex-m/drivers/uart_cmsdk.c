/* UART driver `cmsdk`: the Arm CMSDK APB UART of the MPS2/MPS3 FPGA images, at EP_UART_BASE. */
#include <stdint.h>

#include "ep_regs.h"
#include "ep_uart.h"

#define UART_DATA EP_REG(EP_UART_BASE + 0x00u)
#define UART_STATE EP_REG(EP_UART_BASE + 0x04u)
#define UART_CTRL EP_REG(EP_UART_BASE + 0x08u)
#define UART_BAUDDIV EP_REG(EP_UART_BASE + 0x10u)
#define UART_TX_FULL 0x1u
#define UART_RX_FULL 0x2u

void ep_uart_init(void) {
  UART_BAUDDIV = 16u; /* the smallest divisor the CMSDK UART accepts */
  UART_CTRL = 0x3u;   /* transmit and receive on, no interrupts */
}

int ep_uart_rx_ready(void) { return (UART_STATE & UART_RX_FULL) != 0; }

uint8_t ep_uart_rx_byte(void) { return (uint8_t)UART_DATA; }

void ep_uart_tx_byte(uint8_t b) {
  while (UART_STATE & UART_TX_FULL) {
  }
  UART_DATA = b;
}
