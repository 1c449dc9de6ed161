/* UART driver `nrf`: the UART of the Nordic nRF51 (nRF51 Series Reference Manual v3.0, chapter
 * 29) at EP_UART_BASE. The board's setup selects its pins (PSELTXD, PSELRXD). */
#include <stdint.h>

#include "ep_regs.h"
#include "ep_uart.h"

#define UART_STARTRX EP_REG(EP_UART_BASE + 0x000u)
#define UART_STARTTX EP_REG(EP_UART_BASE + 0x008u)
#define UART_RXDRDY EP_REG(EP_UART_BASE + 0x108u)
#define UART_TXDRDY EP_REG(EP_UART_BASE + 0x11Cu)
#define UART_ENABLE EP_REG(EP_UART_BASE + 0x500u)
#define UART_RXD EP_REG(EP_UART_BASE + 0x518u)
#define UART_TXD EP_REG(EP_UART_BASE + 0x51Cu)
#define UART_BAUDRATE EP_REG(EP_UART_BASE + 0x524u)
#define UART_CONFIG EP_REG(EP_UART_BASE + 0x56Cu)
#define UART_ENABLE_ON 4u

/* BAUDRATE takes the values of the manual's table, not a divisor */
#if (EP_UART_BAUD) == 115200
#define UART_BAUD_VALUE 0x01D7E000u
#elif (EP_UART_BAUD) == 230400
#define UART_BAUD_VALUE 0x03AFB000u
#elif (EP_UART_BAUD) == 1000000
#define UART_BAUD_VALUE 0x10000000u
#else
#error "the nRF51 UART driver knows the BAUDRATE values for 115200, 230400 and 1000000 baud"
#endif

void ep_uart_init(void) {
  UART_BAUDRATE = UART_BAUD_VALUE;
  UART_CONFIG = 0; /* no parity, no flow control */
  UART_ENABLE = UART_ENABLE_ON;
  UART_STARTRX = 1u;
  UART_STARTTX = 1u;
}

int ep_uart_rx_ready(void) { return UART_RXDRDY != 0; }

uint8_t ep_uart_rx_byte(void) {
  UART_RXDRDY = 0; /* clear the event before reading RXD: the next byte sets it again */
  return (uint8_t)UART_RXD;
}

void ep_uart_tx_byte(uint8_t b) {
  UART_TXD = b;
  while (!UART_TXDRDY) {
  }
  UART_TXDRDY = 0;
}
