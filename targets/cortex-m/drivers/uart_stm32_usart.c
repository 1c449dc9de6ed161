/* UART driver `stm32-usart`: the USART of the STM32F1/F2/F4 (status register SR, data register
 * DR; ST RM0090 section 30.6) at EP_UART_BASE, clocked at EP_UART_CLOCK_HZ (its APB bus clock),
 * 16x oversampling. The board's setup turns on its bus clock and its pins. */
#include <stdint.h>

#include "ep_regs.h"
#include "ep_uart.h"

#define USART_SR EP_REG(EP_UART_BASE + 0x00u)
#define USART_DR EP_REG(EP_UART_BASE + 0x04u)
#define USART_BRR EP_REG(EP_UART_BASE + 0x08u)
#define USART_CR1 EP_REG(EP_UART_BASE + 0x0Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RE (1u << 2)
/* 16x oversampling: BRR = USARTDIV * 16 = f_ck / baud, mantissa and fraction in one number (30.3.4) */
#define USART_DIV (((EP_UART_CLOCK_HZ) + (EP_UART_BAUD) / 2u) / (EP_UART_BAUD))

void ep_uart_init(void) {
  USART_BRR = USART_DIV;
  USART_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE; /* 8N1, no interrupts */
}

/* Reading SR then DR also clears an overrun (ORE). */
int ep_uart_rx_ready(void) { return (USART_SR & USART_SR_RXNE) != 0; }

uint8_t ep_uart_rx_byte(void) { return (uint8_t)USART_DR; }

void ep_uart_tx_byte(uint8_t b) {
  while (!(USART_SR & USART_SR_TXE)) {
  }
  USART_DR = b;
}
