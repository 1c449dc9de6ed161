/* Board setup `netduinoplus2` (STM32F405RG; ST RM0090 rev 19): 168 MHz from the PLL on the
 * 16 MHz HSI, flash wait states, bus prescalers, and USART1 on PA9 (TX) / PA10 (RX) for the
 * profiling protocol. Runs first at reset, before .data and .bss exist.
 * Every wait is bounded: QEMU 7.2 leaves the RCC unimplemented (its registers read 0), so there
 * the PLL never reports lock and the core stays on its reset clock, which QEMU ignores anyway. */
#include <stdint.h>

#include "ep_board.h"
#include "ep_regs.h"

#define RCC 0x40023800u           /* RM0090 2.3, memory map */
#define RCC_CR EP_REG(RCC + 0x00u)      /* 7.3.1 */
#define RCC_PLLCFGR EP_REG(RCC + 0x04u) /* 7.3.2 */
#define RCC_CFGR EP_REG(RCC + 0x08u)    /* 7.3.3 */
#define RCC_AHB1ENR EP_REG(RCC + 0x30u) /* 7.3.10 */
#define RCC_APB1ENR EP_REG(RCC + 0x40u) /* 7.3.13 */
#define RCC_APB2ENR EP_REG(RCC + 0x44u) /* 7.3.14 */
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_PLL 2u
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (2u << 2)
#define RCC_CFGR_PPRE1_DIV4 (5u << 10) /* APB1 42 MHz (at most 42) */
#define RCC_CFGR_PPRE2_DIV2 (4u << 13) /* APB2 84 MHz (at most 84): USART1 */
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB2ENR_USART1EN (1u << 4)
/* PLL: HSI 16 MHz / M 8 = 2 MHz, x N 168 = 336 MHz VCO, / P 2 = 168 MHz, / Q 7 = 48 MHz */
#define PLL_M 8u
#define PLL_N 168u
#define PLL_P_DIV2 0u
#define PLL_Q 7u
#define PLLCFGR_VALUE (PLL_M | PLL_N << 6 | PLL_P_DIV2 << 16 | 0u << 22 /* PLLSRC = HSI */ | PLL_Q << 24)

#define PWR_CR EP_REG(0x40007000u)      /* 5.4.1 */
#define PWR_CR_VOS_SCALE1 (1u << 14)

#define FLASH_ACR EP_REG(0x40023C00u)   /* 3.9.1 */
#define FLASH_ACR_LATENCY_5WS 5u        /* 168 MHz at 2.7-3.6 V: 5 wait states (table 10) */
#define FLASH_ACR_CACHES ((1u << 8) | (1u << 9) | (1u << 10)) /* prefetch, instruction, data cache */

#define GPIOA 0x40020000u
#define GPIOA_MODER EP_REG(GPIOA + 0x00u) /* 8.4.1 */
#define GPIOA_AFRH EP_REG(GPIOA + 0x24u)  /* 8.4.10 */
#define GPIO_AF7_USART1 7u

#define EP_SETUP_TRIES 100000u

/* SYSCLK 168 MHz from the PLL; on a time-out the core stays on the 16 MHz HSI. */
static void ep_clock_168mhz(void) {
  RCC_APB1ENR |= RCC_APB1ENR_PWREN;
  PWR_CR |= PWR_CR_VOS_SCALE1; /* the regulator's scale 1: 168 MHz needs it */
  if (!ep_wait_bits(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, EP_SETUP_TRIES)) return;
  RCC_CR &= ~RCC_CR_PLLON;
  RCC_PLLCFGR = PLLCFGR_VALUE;
  RCC_CR |= RCC_CR_PLLON;
  if (ep_wait_bits(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY, EP_SETUP_TRIES)) {
    /* more wait states before the faster clock, then the bus prescalers, then the switch */
    FLASH_ACR = FLASH_ACR_CACHES | FLASH_ACR_LATENCY_5WS;
    ep_wait_bits(&FLASH_ACR, 0x7u, FLASH_ACR_LATENCY_5WS, EP_SETUP_TRIES);
    RCC_CFGR = RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR |= RCC_CFGR_SW_PLL;
    ep_wait_bits(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL, EP_SETUP_TRIES);
  }
}

void ep_board_setup(void) {
  ep_clock_168mhz();
  /* USART1: its clock, and PA9/PA10 in alternate function 7 */
  RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
  RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
  GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18); /* MODER9, MODER10 = 10 (AF) */
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (GPIO_AF7_USART1 << 4) | (GPIO_AF7_USART1 << 8);
}
