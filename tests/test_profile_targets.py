"""Board files name the profiling UART and the timer; both reach the C build as -D flags."""
import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.profile.devices import build_profile_app
from edgeprune.targets import load_target, target_names


@pytest.mark.parametrize("board", [n for n in target_names()
                                   if load_target(n).qemu_machine and load_target(n).family == "cortex-m"
                                   and n != "lm3s6965evb"])
def test_qemu_cortex_m_boards_name_their_uart(board):
    target = load_target(board)
    assert target.uart_base is not None and target.timer == "systick"  # QEMU's DWT reads 0
    assert f"-DEP_UART_BASE={target.uart_base:#x}u" in target.c_defines


def test_real_board_uses_the_dwt_cycle_counter():
    target = load_target("nucleo-l4r5zi")
    assert target.timer == "dwt" and "-DEP_TIMER_DWT=1" in target.c_defines


def test_unknown_timer_is_refused(tmp_path, monkeypatch):
    text = load_target("mps2-an386").source.read_text().replace('clock_hz', 'timer = "rtc"\nclock_hz', 1)
    (tmp_path / "odd-board.toml").write_text(text)
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(tmp_path))
    with pytest.raises(EdgepruneError, match="timer 'rtc' is not one of systick, dwt"):
        load_target("odd-board")


def test_board_without_uart_cannot_build_the_profiling_app(tmp_path):
    with pytest.raises(EdgepruneError, match=r"lm3s6965evb has no UART .*\[uart\] base"):
        build_profile_app(tmp_path, load_target("lm3s6965evb"))
