"""Vendor silicon on QEMU: the netduinoplus2 (STM32F405, ST's USART) and the micro:bit (nRF51822
Cortex-M0, Nordic's UART and TIMER0) run and profile models through their own drivers; the M0
gets the portable int8 kernels and stays bit-exact; a model too big for 16 KiB of RAM says by
how much. QEMU 7.2 has no STM32F4 RCC, so the F405's clock set-up is checked against ST's
RM0090 (rev 19) instead, as tests/test_nucleo_l4r5zi.py does for the L4R5.
Every F405 value was checked against ST's CMSIS device header (github.com/STMicroelectronics/cmsis_device_f4,
Include/stm32f405xx.h at cdbad761857acedcdd07ece7939b4cb209ed826a): an address is the `*_BASE` plus the
member's offsetof() in the header's struct, a bit the `*_Msk` (from `*_Pos`), as were the PLLCFGR field
positions decoded below; GPIO_AF7_USART1 against github.com/STMicroelectronics/stm32f4xx_hal_driver
Inc/stm32f4xx_hal_gpio_ex.h at d232197f12c592d87944f0f462b2d5297750f762 (that PA9/PA10 carry it is the
datasheet's, not re-read). The micro:bit drivers' CLOCK, UART0 and TIMER0 offsets and values were checked
against github.com/NordicSemiconductor/nrfx bsp/stable/mdk/nrf51.h and nrf51_bitfields.h at
aa83d4df8d5f41b591f23a8555794632afb3475d (nrfx 4.2.1). The section numbers in the third column are
RM0090 rev 19's as the table's author knew them; they were not re-read against the PDF: a mismatch
with the manual is a bug in this table."""
import numpy as np
import pytest

from edgeprune.compile.api import compile_model
from edgeprune.compile.int8 import has_dsp
from edgeprune.errors import ModelTooLargeError
from edgeprune.profile.devices import open_device
from edgeprune.profile.inputs import random_inputs
from edgeprune.profile.run import run
from edgeprune.reference import reference_outputs
from edgeprune.targets import load_target

pytestmark = pytest.mark.qemu

# (macro in the netduinoplus2 drivers, expected value, where RM0090 gives it)
F405_REGISTERS = [
    ("&RCC_CR", 0x40023800, "2.3 memory map: RCC at 0x4002_3800; 7.3.1 RCC_CR offset 0x00"),
    ("RCC_CR_HSIRDY", 1 << 1, "7.3.1 HSIRDY bit 1"),
    ("RCC_CR_PLLON", 1 << 24, "7.3.1 PLLON bit 24"),
    ("RCC_CR_PLLRDY", 1 << 25, "7.3.1 PLLRDY bit 25"),
    ("&RCC_PLLCFGR", 0x40023804, "7.3.2 RCC_PLLCFGR offset 0x04"),
    ("&RCC_CFGR", 0x40023808, "7.3.3 RCC_CFGR offset 0x08"),
    ("RCC_CFGR_SW_PLL", 0b10, "7.3.3 SW[1:0] = 10: PLL"),
    ("RCC_CFGR_SWS_PLL", 0b10 << 2, "7.3.3 SWS[3:2] = 10: PLL"),
    ("RCC_CFGR_PPRE1_DIV4", 0b101 << 10, "7.3.3 PPRE1[12:10] = 101: HCLK / 4"),
    ("RCC_CFGR_PPRE2_DIV2", 0b100 << 13, "7.3.3 PPRE2[15:13] = 100: HCLK / 2"),
    ("&RCC_AHB1ENR", 0x40023830, "7.3.10 RCC_AHB1ENR offset 0x30"),
    ("RCC_AHB1ENR_GPIOAEN", 1 << 0, "7.3.10 GPIOAEN bit 0"),
    ("&RCC_APB1ENR", 0x40023840, "7.3.13 RCC_APB1ENR offset 0x40"),
    ("RCC_APB1ENR_PWREN", 1 << 28, "7.3.13 PWREN bit 28"),
    ("&RCC_APB2ENR", 0x40023844, "7.3.14 RCC_APB2ENR offset 0x44"),
    ("RCC_APB2ENR_USART1EN", 1 << 4, "7.3.14 USART1EN bit 4"),
    ("&PWR_CR", 0x40007000, "2.3: PWR at 0x4000_7000; 5.4.1 PWR_CR offset 0x00"),
    ("PWR_CR_VOS_SCALE1", 1 << 14, "5.4.1 VOS bit 14, 1: scale 1"),
    ("&FLASH_ACR", 0x40023C00, "2.3: flash interface at 0x4002_3C00; 3.9.1 FLASH_ACR offset 0x00"),
    ("FLASH_ACR_LATENCY_5WS", 5, "3.5.1 table 10: 150 < HCLK <= 168 MHz at 2.7-3.6 V: 5 wait states"),
    ("FLASH_ACR_CACHES", 0b111 << 8, "3.9.1 PRFTEN bit 8, ICEN bit 9, DCEN bit 10"),
    ("&GPIOA_MODER", 0x40020000, "2.3: GPIOA at 0x4002_0000; 8.4.1 GPIOx_MODER offset 0x00"),
    ("&GPIOA_AFRH", 0x40020024, "8.4.10 GPIOx_AFRH offset 0x24"),
    ("GPIO_AF7_USART1", 7, "datasheet DS8626 table 9: PA9/PA10 AF7 = USART1_TX/RX"),
    ("&USART_SR", 0x40011000, "2.3: USART1 at 0x4001_1000; 30.6.1 USART_SR offset 0x00"),
    ("USART_SR_RXNE", 1 << 5, "30.6.1 RXNE bit 5"),
    ("USART_SR_TXE", 1 << 7, "30.6.1 TXE bit 7"),
    ("&USART_DR", 0x40011004, "30.6.2 USART_DR offset 0x04"),
    ("&USART_BRR", 0x40011008, "30.6.3 USART_BRR offset 0x08"),
    ("&USART_CR1", 0x4001100C, "30.6.4 USART_CR1 offset 0x0C"),
    ("USART_CR1_UE", 1 << 13, "30.6.4 UE bit 13"),
    ("USART_CR1_TE", 1 << 3, "30.6.4 TE bit 3"),
    ("USART_CR1_RE", 1 << 2, "30.6.4 RE bit 2"),
]


@pytest.fixture(scope="module")
def f405_values(driver_macros) -> dict[str, int]:
    return driver_macros("netduinoplus2", [name for name, _, _ in F405_REGISTERS] + ["PLLCFGR_VALUE", "USART_DIV"])


def test_stm32f405_registers_match_rm0090(f405_values):
    wrong = [f"{name} = {f405_values[name]:#x}, RM0090 {where}: {expected:#x}"
             for name, expected, where in F405_REGISTERS if f405_values[name] != expected]
    assert not wrong


def test_stm32f405_pll_and_usart_divider_make_the_board_files_clocks(f405_values):
    target = load_target("netduinoplus2")
    pllcfgr = f405_values["PLLCFGR_VALUE"]
    assert not pllcfgr & (1 << 22)                          # 7.3.2 PLLSRC 0: HSI, 16 MHz
    m, n = pllcfgr & 0x3F, (pllcfgr >> 6) & 0x1FF           # PLLM[5:0], PLLN[14:6]
    p, q = 2 * (((pllcfgr >> 16) & 0b11) + 1), (pllcfgr >> 24) & 0xF  # PLLP[17:16]: 00 = /2, PLLQ[27:24]
    vco_in, vco = 16e6 / m, 16e6 / m * n
    assert 1e6 <= vco_in <= 2e6 and 100e6 <= vco <= 432e6  # 6.3.2 datasheet / 7.3.2 ranges
    assert vco / p == target.clock_hz == 168e6 and vco / q == 48e6
    assert target.uart_clock_hz == target.clock_hz / 2     # APB2 = HCLK / 2 (PPRE2)
    assert target.uart_clock_hz / f405_values["USART_DIV"] == pytest.approx(target.uart_baud, rel=1e-3)


def test_vendor_boards_name_their_drivers():
    names = {board: [path.name for path in load_target(board).drivers]
             for board in ("netduinoplus2", "microbit", "nucleo-l4r5zi", "mps2-an386")}
    assert names == {
        "netduinoplus2": ["timer_systick.c", "uart_stm32_usart.c", "setup_netduinoplus2.c"],
        "microbit": ["timer_nrf.c", "uart_nrf.c", "setup_microbit.c"],
        "nucleo-l4r5zi": ["timer_dwt.c", "uart_stm32_lpuart.c", "setup_nucleo_l4r5zi.c"],
        "mps2-an386": ["timer_systick.c", "uart_cmsdk.c"],
    }


@pytest.mark.parametrize("board,dsp", [("microbit", False), ("netduinoplus2", True)])
def test_int8_kernels_follow_the_cores_dsp_and_stay_bit_exact(quantized, compiled, board, dsp):
    """The M0 (Thumb-1, no DSP, no divide) gets the portable int8 kernels, the F405's M4 the DSP ones."""
    assert has_dsp(load_target(board).llvm_target()) is dsp
    model = compiled(quantized("digits_cnn"), board)
    int8_steps = [s for s in model.manifest["steps"] if s["kernel"].startswith(("conv2d_int8", "dense_int8"))]
    assert len(int8_steps) == 4 and all(("layer" in s) is dsp for s in int8_steps)  # "layer": a DSP kernel
    report = run(model)
    assert report.exact_matches[0] == report.exact_matches[1]  # bit-exact with onnxruntime


@pytest.mark.slow
def test_model_too_big_for_16_kib_of_ram_says_by_how_much(tmp_path):
    # digits_cnn plans a 6,144 B arena; with a 12 KiB stack it needs about 2.5 KiB more than the 16 KiB
    with pytest.raises(ModelTooLargeError) as err:
        compile_model("digits_cnn", "microbit", tmp_path / "out", stack_bytes=12_288)
    message = str(err.value)
    assert "does not fit microbit" in message and "RAM 16,384 bytes" in message
    overflow = int(message.split("overflows RAM by ")[1].split(" bytes")[0].replace(",", ""))
    assert 6_144 + 12_288 - 16_384 <= overflow < 6_144 + 12_288 - 16_384 + 1_024  # arena + stack, plus a little
    assert "arena 6,144 B, workspace beside it 0 B, stack 12,288 B (--stack-bytes)" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("board", ["netduinoplus2", "microbit"])
def test_profiling_over_the_vendor_uart_matches_the_reference(compiled, board):
    model = compiled("digits_cnn", board)
    inputs = random_inputs(model.manifest, seed=5)
    with open_device(f"qemu:{board}") as device:
        device.prepare(model.path)
        measured = device.run(inputs, 2)
    reference = reference_outputs(model.onnx, inputs)
    assert all(np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max() for out, ref in zip(measured.outputs, reference))
    assert measured.board == board and measured.units_per_tick == 1e9 / load_target(board).clock_hz
    assert len(set(measured.run_ticks)) == 1  # the timer is realigned before each run
    total = measured.run_ticks[-1]
    assert abs(sum(measured.layer_ticks) - total) <= 0.001 * total


def test_summary_gives_flash_and_ram_against_the_boards(compiled, capsys):
    from edgeprune.cli import main

    model = compiled("digits_cnn", "microbit")
    assert main(["run", str(model.path)]) == 0
    ram = model.manifest["elf"]["ram_total"]
    assert f"RAM {ram:>16,} B  ({100 * ram / 16_384:.0f} % of the board's 16,384 B; arena 6,144" in capsys.readouterr().out


def test_profile_command_on_netduinoplus2_stores_how_it_measured(compiled, capsys, tmp_path):
    from edgeprune.cli import main
    from edgeprune.profile.store import ResultsStore

    model = compiled("digits_cnn", "netduinoplus2")
    store = tmp_path / "results.sqlite"
    assert main(["profile", str(model.path), "--device", "qemu:netduinoplus2", "--runs", "2",
                 "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "on qemu:netduinoplus2 (QEMU, -icount shift=0), 2 runs" in out and "outputs vs onnxruntime: match" in out
    with ResultsStore(store) as results:
        record = results.latest()[0]
    assert (record.board, record.unit, record.method) == ("netduinoplus2", "instructions", "QEMU, -icount shift=0")
