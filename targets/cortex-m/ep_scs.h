/* Registers of the Cortex-M System Control Space that the board runtime uses (Armv7-M / Armv6-M
 * Architecture Reference Manuals, "System Control Space"). */
#ifndef EP_SCS_H
#define EP_SCS_H
#include <stdint.h>

#define EP_SCS_REG(address) (*(volatile uint32_t *)(address))
#define SYST_CSR EP_SCS_REG(0xE000E010u) /* SysTick control and status */
#define SYST_RVR EP_SCS_REG(0xE000E014u) /* SysTick reload value */
#define SYST_CVR EP_SCS_REG(0xE000E018u) /* SysTick current value */
#define SYST_RELOAD 0x00FFFFFFu          /* SysTick counts 24 bits */
#define EP_ICSR EP_SCS_REG(0xE000ED04u)  /* interrupt control and state */
#define EP_CPACR EP_SCS_REG(0xE000ED88u) /* coprocessor access (the FPU) */
#define DEMCR EP_SCS_REG(0xE000EDFCu)    /* debug exception and monitor control */
#define DWT_CTRL EP_SCS_REG(0xE0001000u)
#define DWT_CYCCNT EP_SCS_REG(0xE0001004u)
#define DWT_LAR EP_SCS_REG(0xE0001FB0u)

#endif
