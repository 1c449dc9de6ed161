"""Board files name the profiling UART and the timer; both reach the C build as -D flags."""
import pytest

from edgeprune.compile.firmware import build_profile_app
from edgeprune.errors import EdgepruneError
from edgeprune.targets import load_target, target_names


@pytest.mark.parametrize("board", [n for n in target_names()
                                   if load_target(n).qemu_machine and load_target(n).family == "cortex-m"
                                   and n != "lm3s6965evb"])
def test_qemu_cortex_m_boards_name_their_uart(board):
    target = load_target(board)
    assert target.uart_base is not None and target.timer != "dwt"  # QEMU's DWT reads 0
    assert f"-DEP_UART_BASE={target.uart_base:#x}u" in target.c_defines
    assert f"uart_{target.uart_driver.replace('-', '_')}.c" in [path.name for path in target.drivers]


def test_real_board_uses_the_dwt_cycle_counter():
    target = load_target("nucleo-l4r5zi")
    assert target.timer == "dwt" and target.drivers[0].name == "timer_dwt.c"
    assert target.timer_method == "DWT cycle counter"


def test_unknown_timer_is_refused(tmp_path, monkeypatch):
    text = load_target("mps2-an386").source.read_text().replace('clock_hz', 'timer = "rtc"\nclock_hz', 1)
    (tmp_path / "odd-board.toml").write_text(text)
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(tmp_path))
    with pytest.raises(EdgepruneError, match="timer 'rtc' is not one of systick, dwt, nrf"):
        load_target("odd-board")


def test_board_without_uart_cannot_build_the_profiling_app(tmp_path):
    with pytest.raises(EdgepruneError, match=r"lm3s6965evb has no UART .*\[uart\] base = 0x...` and `driver"):
        build_profile_app(tmp_path, load_target("lm3s6965evb"))


def test_missing_driver_is_refused(tmp_path, monkeypatch):
    text = load_target("mps2-an386").source.read_text().replace('driver = "cmsdk"', 'driver = "pl011"')
    (tmp_path / "pl011-board.toml").write_text(text)
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(tmp_path))
    with pytest.raises(EdgepruneError, match=r"pl011-board.toml: no driver uart_pl011.c in .*drivers"):
        load_target("pl011-board")


def test_a_board_folder_can_carry_its_own_driver(tmp_path, monkeypatch):
    text = load_target("mps2-an386").source.read_text().replace('driver = "cmsdk"', 'driver = "pl011"')
    (tmp_path / "pl011-board.toml").write_text(text)
    (tmp_path / "drivers").mkdir()
    (tmp_path / "drivers" / "uart_pl011.c").write_text("/* a PL011 driver */\n")
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(tmp_path))
    assert tmp_path / "drivers" / "uart_pl011.c" in load_target("pl011-board").drivers
