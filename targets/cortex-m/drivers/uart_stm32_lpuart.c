/* UART driver `stm32-lpuart`: the LPUART of the STM32L4/L4+ (ST RM0432 section 53.7) at
 * EP_UART_BASE, clocked at EP_UART_CLOCK_HZ. The board's setup selects its kernel clock and
 * turns on its bus clock and pins. */
#include <stdint.h>

#include "ep_regs.h"
#include "ep_uart.h"

#define LPUART_CR1 EP_REG(EP_UART_BASE + 0x00u)
#define LPUART_BRR EP_REG(EP_UART_BASE + 0x0Cu)
#define LPUART_ISR EP_REG(EP_UART_BASE + 0x1Cu)
#define LPUART_ICR EP_REG(EP_UART_BASE + 0x20u)
#define LPUART_RDR EP_REG(EP_UART_BASE + 0x24u)
#define LPUART_TDR EP_REG(EP_UART_BASE + 0x28u)
#define LPUART_CR1_UE (1u << 0)
#define LPUART_CR1_RE (1u << 2)
#define LPUART_CR1_TE (1u << 3)
#define LPUART_ISR_ORE (1u << 3)
#define LPUART_ISR_RXNE (1u << 5)
#define LPUART_ISR_TXE (1u << 7)
#define LPUART_ICR_ORECF (1u << 3)
/* BRR = 256 * f_ck / baud, which must lie in [0x300, 0xFFFFF] (RM0432 53.4.7) */
#define LPUART_DIV ((256ull * (EP_UART_CLOCK_HZ) + (EP_UART_BAUD) / 2u) / (EP_UART_BAUD))
#if LPUART_DIV < 0x300 || LPUART_DIV > 0xFFFFF
#error "the LPUART cannot make this baud rate from this clock (BRR out of range)"
#endif

void ep_uart_init(void) {
  LPUART_CR1 = 0;
  LPUART_BRR = (uint32_t)LPUART_DIV;
  LPUART_CR1 = LPUART_CR1_UE | LPUART_CR1_TE | LPUART_CR1_RE; /* 8N1, no FIFO, no interrupts */
}

int ep_uart_rx_ready(void) {
  if (LPUART_ISR & LPUART_ISR_ORE) LPUART_ICR = LPUART_ICR_ORECF; /* a lost byte: the CRC catches it */
  return (LPUART_ISR & LPUART_ISR_RXNE) != 0;
}

uint8_t ep_uart_rx_byte(void) { return (uint8_t)LPUART_RDR; }

void ep_uart_tx_byte(uint8_t b) {
  while (!(LPUART_ISR & LPUART_ISR_TXE)) {
  }
  LPUART_TDR = b;
}
