"""The NUCLEO-L4R5ZI, which QEMU cannot run, checked as far as a machine can: every register
address and bit field its drivers use equals ST's RM0432 (rev 9) value, the PLL settings give
the board file's 120 MHz, and `make profile.elf` links the LPUART1 profiling firmware.

The values are read from the drivers as the C compiler sees them (tests/conftest.py
`driver_macros`: a host program includes the driver sources and prints each macro). Section
numbers are RM0432's ("6.4.1" is RCC_CR), the Armv7-M ARM's for the DWT (C1.8).
Every value was checked against ST's CMSIS device header (github.com/STMicroelectronics/cmsis_device_l4,
Include/stm32l4r5xx.h at a2530753e86dd326a75467d28feb92e2ba7d0df2, v1.7.4): an address is the `*_BASE`
plus the member's offsetof() in the header's struct, a bit the `*_Msk` (from `*_Pos`); the L4+ names
the ISR bits USART_ISR_RXNE_RXFNE and USART_ISR_TXE_TXFNF. The DWT/DEMCR addresses were checked against
github.com/ARM-software/CMSIS_5 CMSIS/Core/Include/core_cm4.h at 51f8f89612c8330c0116479cfe3a2cb04c390e2b,
GPIO_AF8_LPUART1 against github.com/STMicroelectronics/stm32l4xx_hal_driver Inc/stm32l4xx_hal_gpio_ex.h
at a9f8b8a1ce65f8bec3d7ce992afb2daa3495a586 (that PG7/PG8 carry it is the datasheet's, not re-read).
The section numbers in the third column are RM0432 rev 9's as the table's author knew them; they were
not re-read against the PDF: a mismatch with the manual is a bug in this table."""
import pytest

from edgeprune.compile.firmware import build_profile_app
from edgeprune.targets import load_target

# (macro as the drivers name it, expected value, where RM0432 gives it)
REGISTERS = [
    ("&RCC_CR", 0x40021000, "2.2.2 memory map: RCC at 0x4002_1000; 6.4.1 RCC_CR offset 0x00"),
    ("RCC_CR_HSION", 1 << 8, "6.4.1 HSION bit 8"),
    ("RCC_CR_HSIRDY", 1 << 10, "6.4.1 HSIRDY bit 10"),
    ("RCC_CR_PLLON", 1 << 24, "6.4.1 PLLON bit 24"),
    ("RCC_CR_PLLRDY", 1 << 25, "6.4.1 PLLRDY bit 25"),
    ("&RCC_CFGR", 0x40021008, "6.4.3 RCC_CFGR offset 0x08"),
    ("RCC_CFGR_SW_PLL", 0b11, "6.4.3 SW[1:0] = 11: PLL"),
    ("RCC_CFGR_SWS_PLL", 0b11 << 2, "6.4.3 SWS[3:2] = 11: PLL"),
    ("RCC_CFGR_HPRE_DIV2", 0b1000 << 4, "6.4.3 HPRE[7:4] = 1000: SYSCLK / 2"),
    ("&RCC_PLLCFGR", 0x4002100C, "6.4.4 RCC_PLLCFGR offset 0x0C"),
    ("RCC_PLLCFGR_PLLSRC_HSI16", 0b10, "6.4.4 PLLSRC[1:0] = 10: HSI16"),
    ("RCC_PLLCFGR_PLLREN", 1 << 24, "6.4.4 PLLREN bit 24"),
    ("&RCC_AHB2ENR", 0x4002104C, "6.4.17 RCC_AHB2ENR offset 0x4C"),
    ("RCC_AHB2ENR_GPIOGEN", 1 << 6, "6.4.17 GPIOGEN bit 6"),
    ("&RCC_APB1ENR1", 0x40021058, "6.4.19 RCC_APB1ENR1 offset 0x58"),
    ("RCC_APB1ENR1_PWREN", 1 << 28, "6.4.19 PWREN bit 28"),
    ("&RCC_APB1ENR2", 0x4002105C, "6.4.20 RCC_APB1ENR2 offset 0x5C"),
    ("RCC_APB1ENR2_LPUART1EN", 1 << 0, "6.4.20 LPUART1EN bit 0"),
    ("&RCC_CCIPR", 0x40021088, "6.4.28 RCC_CCIPR offset 0x88"),
    ("RCC_CCIPR_LPUART1SEL_MASK", 0b11 << 10, "6.4.28 LPUART1SEL[11:10], 00: PCLK1"),
    ("&PWR_CR1", 0x40007000, "2.2.2: PWR at 0x4000_7000; 5.4.1 PWR_CR1 offset 0x00"),
    ("PWR_CR1_VOS_RANGE1", 0b01 << 9, "5.4.1 VOS[10:9] = 01: range 1"),
    ("&PWR_CR2", 0x40007004, "5.4.2 PWR_CR2 offset 0x04"),
    ("PWR_CR2_IOSV", 1 << 9, "5.4.2 IOSV bit 9: VDDIO2 valid (port G)"),
    ("&PWR_SR2", 0x40007014, "5.4.6 PWR_SR2 offset 0x14"),
    ("PWR_SR2_VOSF", 1 << 10, "5.4.6 VOSF bit 10"),
    ("&PWR_CR5", 0x40007080, "5.4.25 PWR_CR5 offset 0x80"),
    ("PWR_CR5_R1MODE", 1 << 8, "5.4.25 R1MODE bit 8, 0: range 1 boost"),
    ("&FLASH_ACR", 0x40022000, "2.2.2: FLASH registers at 0x4002_2000; 3.7.1 FLASH_ACR offset 0x00"),
    ("FLASH_ACR_LATENCY_5WS", 5, "3.3.3 table: range 1 boost, 100 < HCLK <= 120 MHz: 5 wait states"),
    ("&GPIOG_MODER", 0x48001800, "2.2.2: GPIOG at 0x4800_1800; 8.5.1 GPIOx_MODER offset 0x00"),
    ("&GPIOG_AFRL", 0x48001820, "8.5.9 GPIOx_AFRL offset 0x20"),
    ("&GPIOG_AFRH", 0x48001824, "8.5.10 GPIOx_AFRH offset 0x24"),
    ("GPIO_AF8_LPUART1", 8, "datasheet DS12023 table 'Alternate function': PG7/PG8 AF8 = LPUART1_TX/RX"),
    ("&LPUART_CR1", 0x40008000, "2.2.2: LPUART1 at 0x4000_8000; 53.7.1 LPUART_CR1 offset 0x00"),
    ("LPUART_CR1_UE", 1 << 0, "53.7.1 UE bit 0"),
    ("LPUART_CR1_RE", 1 << 2, "53.7.1 RE bit 2"),
    ("LPUART_CR1_TE", 1 << 3, "53.7.1 TE bit 3"),
    ("&LPUART_BRR", 0x4000800C, "53.7.4 LPUART_BRR offset 0x0C"),
    ("&LPUART_ISR", 0x4000801C, "53.7.7 LPUART_ISR offset 0x1C"),
    ("LPUART_ISR_ORE", 1 << 3, "53.7.7 ORE bit 3"),
    ("LPUART_ISR_RXNE", 1 << 5, "53.7.7 RXNE bit 5"),
    ("LPUART_ISR_TXE", 1 << 7, "53.7.7 TXE bit 7"),
    ("&LPUART_ICR", 0x40008020, "53.7.8 LPUART_ICR offset 0x20"),
    ("LPUART_ICR_ORECF", 1 << 3, "53.7.8 ORECF bit 3"),
    ("&LPUART_RDR", 0x40008024, "53.7.9 LPUART_RDR offset 0x24"),
    ("&LPUART_TDR", 0x40008028, "53.7.10 LPUART_TDR offset 0x28"),
    ("&DEMCR", 0xE000EDFC, "Armv7-M ARM C1.6.5: DEMCR; TRCENA is bit 24"),
    ("&DWT_CTRL", 0xE0001000, "Armv7-M ARM C1.8.7: DWT_CTRL, CYCCNTENA bit 0"),
    ("&DWT_CYCCNT", 0xE0001004, "Armv7-M ARM C1.8.8: DWT_CYCCNT"),
]


@pytest.fixture(scope="module")
def driver_values(driver_macros) -> dict[str, int]:
    return driver_macros("nucleo-l4r5zi", [name for name, _, _ in REGISTERS] + ["PLLCFGR_VALUE", "LPUART_DIV"])


@pytest.mark.parametrize("name,expected,where", REGISTERS, ids=[name for name, _, _ in REGISTERS])
def test_register_matches_rm0432(driver_values, name, expected, where):
    assert driver_values[name] == expected, f"{name}: RM0432 {where}"


def test_pll_makes_the_board_files_clock(driver_values):
    pllcfgr = driver_values["PLLCFGR_VALUE"]
    source = {0b10: 16_000_000}[pllcfgr & 0b11]     # 6.4.4 PLLSRC: HSI16
    m = ((pllcfgr >> 4) & 0xF) + 1                   # PLLM[7:4]: M - 1
    n = (pllcfgr >> 8) & 0x7F                        # PLLN[14:8]
    r = 2 * (((pllcfgr >> 25) & 0b11) + 1)           # PLLR[26:25]: 00 = /2
    vco_in, vco = source / m, source / m * n
    assert 2_660_000 <= vco_in <= 16_000_000 and 64_000_000 <= vco <= 344_000_000  # 6.2.5 PLL ranges
    assert vco / r == load_target("nucleo-l4r5zi").clock_hz == 120_000_000


def test_lpuart_divider_gives_115200_baud(driver_values):
    target = load_target("nucleo-l4r5zi")
    brr = driver_values["LPUART_DIV"]
    assert 0x300 <= brr <= 0xFFFFF  # 53.4.7: the LPUART_BRR range
    assert 256 * target.uart_clock_hz / brr == pytest.approx(target.uart_baud, rel=1e-5)


@pytest.mark.slow
def test_make_builds_the_lpuart_profiling_firmware(compiled):
    from elftools.elf.elffile import ELFFile

    model = compiled("digits_cnn", "nucleo-l4r5zi")
    elf = build_profile_app(model.path, load_target("nucleo-l4r5zi"))
    assert elf.name == "profile.elf"
    with open(elf, "rb") as f:
        symbols = {s.name: s for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
    for name in ("ep_board_setup", "ep_uart_init", "ep_uart_rx_byte", "ep_systick_handler", "ep_proto_serve"):
        assert symbols[name]["st_info"]["bind"] == "STB_GLOBAL", name  # the board's, not the weak default
    assert symbols["ep_board_setup"]["st_size"] > 100  # the clock set-up, not an empty function
    assert symbols["__data_start"]["st_value"] >= 0x20000000 and symbols["ep_reset_handler"]["st_value"] >= 0x08000000
