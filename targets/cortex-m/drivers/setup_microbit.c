/* Board setup `microbit` (BBC micro:bit v1, nRF51822; nRF51 Series Reference Manual v3.0):
 * HFCLK from the 16 MHz crystal (chapter 13, CLOCK), which TIMER0 and the UART count, and the
 * UART on P0.24 (TX) / P0.25 (RX), the interface chip's USB serial port. Runs first at reset,
 * before .data and .bss exist; the wait is bounded. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_regs.h"

#define CLOCK 0x40000000u
#define CLOCK_HFCLKSTART EP_REG(CLOCK + 0x000u)
#define CLOCK_HFCLKSTARTED EP_REG(CLOCK + 0x100u)
#define CLOCK_XTALFREQ EP_REG(CLOCK + 0x550u)
#define CLOCK_XTALFREQ_16MHZ 0xFFu
#define UART0 0x40002000u
#define UART_PSELTXD EP_REG(UART0 + 0x50Cu)
#define UART_PSELRXD EP_REG(UART0 + 0x514u)
#define MICROBIT_TX_PIN 24u
#define MICROBIT_RX_PIN 25u

void ep_board_setup(void) {
  CLOCK_XTALFREQ = CLOCK_XTALFREQ_16MHZ;
  CLOCK_HFCLKSTARTED = 0;
  CLOCK_HFCLKSTART = 1u;
  ep_wait_bits(&CLOCK_HFCLKSTARTED, 1u, 1u, 100000u); /* else HFCLK stays on the RC oscillator */
  UART_PSELTXD = MICROBIT_TX_PIN;
  UART_PSELRXD = MICROBIT_RX_PIN;
}
