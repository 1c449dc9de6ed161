/* A UART driver (drivers/uart_*.c) provides these; ep_uart_port.c builds the protocol's byte
 * stream (ep_port.h) on them. The board's setup (drivers/setup_*.c) has already given the UART
 * its bus clock and pins. */
#ifndef EP_UART_H
#define EP_UART_H
#include <stdint.h>

void ep_uart_init(void);          /* EP_UART_BAUD, 8 data bits, no parity, 1 stop bit */
int ep_uart_rx_ready(void);       /* a received byte is waiting */
uint8_t ep_uart_rx_byte(void);    /* takes it (after ep_uart_rx_ready) */
void ep_uart_tx_byte(uint8_t b);  /* waits until the transmitter takes `b` */

#endif
