/* Board setup `nucleo-l4r5zi` (STM32L4R5ZI; ST RM0432 rev 9): 120 MHz from the PLL on the
 * 16 MHz HSI with the regulator in range 1 boost mode and 5 flash wait states, and LPUART1 on
 * PG7 (TX) / PG8 (RX), the ST-LINK virtual COM port (UM2179). Runs first at reset, before
 * .data and .bss exist; every wait is bounded, and on a time-out the core stays on its 4 MHz
 * MSI reset clock (the serial port then stays silent: see the README). */
#include <stdint.h>

#include "ep_board.h"
#include "ep_regs.h"

#define RCC 0x40021000u                   /* RM0432 2.2.2, memory map */
#define RCC_CR EP_REG(RCC + 0x00u)        /* 6.4.1 */
#define RCC_CFGR EP_REG(RCC + 0x08u)      /* 6.4.3 */
#define RCC_PLLCFGR EP_REG(RCC + 0x0Cu)   /* 6.4.4 */
#define RCC_AHB2ENR EP_REG(RCC + 0x4Cu)   /* 6.4.17 */
#define RCC_APB1ENR1 EP_REG(RCC + 0x58u)  /* 6.4.19 */
#define RCC_APB1ENR2 EP_REG(RCC + 0x5Cu)  /* 6.4.20 */
#define RCC_CCIPR EP_REG(RCC + 0x88u)     /* 6.4.28 */
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK 3u
#define RCC_CFGR_SW_PLL 3u
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (3u << 2)
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_HPRE_DIV2 (8u << 4)
#define RCC_PLLCFGR_PLLSRC_HSI16 2u
#define RCC_PLLCFGR_PLLREN (1u << 24)
#define RCC_AHB2ENR_GPIOGEN (1u << 6)
#define RCC_APB1ENR1_PWREN (1u << 28)
#define RCC_APB1ENR2_LPUART1EN (1u << 0)
#define RCC_CCIPR_LPUART1SEL_MASK (3u << 10) /* 00: PCLK1 */
/* PLL: HSI16 / M 2 = 8 MHz, x N 30 = 240 MHz VCO, / R 2 = 120 MHz (PLLR field 00) */
#define PLL_M 2u
#define PLL_N 30u
#define PLLCFGR_VALUE (RCC_PLLCFGR_PLLSRC_HSI16 | (PLL_M - 1u) << 4 | PLL_N << 8 | RCC_PLLCFGR_PLLREN)

#define PWR 0x40007000u
#define PWR_CR1 EP_REG(PWR + 0x00u)       /* 5.4.1 */
#define PWR_CR2 EP_REG(PWR + 0x04u)       /* 5.4.2 */
#define PWR_SR2 EP_REG(PWR + 0x14u)       /* 5.4.6 */
#define PWR_CR5 EP_REG(PWR + 0x80u)       /* 5.4.25 */
#define PWR_CR1_VOS_MASK (3u << 9)
#define PWR_CR1_VOS_RANGE1 (1u << 9)
#define PWR_CR2_IOSV (1u << 9)            /* VDDIO2 valid: port G pins 2..15 */
#define PWR_SR2_VOSF (1u << 10)
#define PWR_CR5_R1MODE (1u << 8)          /* 0: range 1 boost mode */

#define FLASH_ACR EP_REG(0x40022000u)     /* 3.7.1 */
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_LATENCY_5WS 5u          /* range 1 boost, 100 < HCLK <= 120 MHz (3.3.3) */

#define GPIOG 0x48001800u
#define GPIOG_MODER EP_REG(GPIOG + 0x00u) /* 8.5.1 */
#define GPIOG_AFRL EP_REG(GPIOG + 0x20u)  /* 8.5.9 */
#define GPIOG_AFRH EP_REG(GPIOG + 0x24u)  /* 8.5.10 */
#define GPIO_AF8_LPUART1 8u

#define EP_SETUP_TRIES 100000u

/* SYSCLK 120 MHz: boost mode first, then the wait states, then the PLL with HCLK halved for
 * the switch and restored after 1 us (6.2.7, "transition state" above 80 MHz). */
static void ep_clock_120mhz(void) {
  RCC_APB1ENR1 |= RCC_APB1ENR1_PWREN;
  PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS_MASK) | PWR_CR1_VOS_RANGE1;
  PWR_CR5 &= ~PWR_CR5_R1MODE;
  if (!ep_wait_bits(&PWR_SR2, PWR_SR2_VOSF, 0u, EP_SETUP_TRIES)) return;
  FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_ACR_LATENCY_5WS;
  if (!ep_wait_bits(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_LATENCY_5WS, EP_SETUP_TRIES)) return;
  RCC_CR |= RCC_CR_HSION;
  if (!ep_wait_bits(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, EP_SETUP_TRIES)) return;
  RCC_CR &= ~RCC_CR_PLLON;
  RCC_PLLCFGR = PLLCFGR_VALUE;
  RCC_CR |= RCC_CR_PLLON;
  if (!ep_wait_bits(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY, EP_SETUP_TRIES)) return;
  RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_HPRE_MASK) | RCC_CFGR_HPRE_DIV2;
  RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
  ep_wait_bits(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL, EP_SETUP_TRIES);
  for (volatile uint32_t i = 0; i < 100u; ++i) {
  } /* at least 1 us at 60 MHz */
  RCC_CFGR &= ~RCC_CFGR_HPRE_MASK; /* HCLK = SYSCLK = 120 MHz; APB1, APB2 undivided */
}

void ep_board_setup(void) {
  ep_clock_120mhz();
  /* LPUART1: PCLK1 as its clock, its bus clock, and PG7/PG8 (powered by VDDIO2) in AF8 */
  PWR_CR2 |= PWR_CR2_IOSV;
  RCC_CCIPR &= ~RCC_CCIPR_LPUART1SEL_MASK;
  RCC_APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
  RCC_AHB2ENR |= RCC_AHB2ENR_GPIOGEN;
  GPIOG_MODER = (GPIOG_MODER & ~(0xFu << 14)) | (0xAu << 14); /* MODER7, MODER8 = 10 (AF) */
  GPIOG_AFRL = (GPIOG_AFRL & ~(0xFu << 28)) | (GPIO_AF8_LPUART1 << 28);
  GPIOG_AFRH = (GPIOG_AFRH & ~0xFu) | GPIO_AF8_LPUART1;
}
