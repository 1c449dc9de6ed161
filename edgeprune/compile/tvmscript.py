"""TVMScript macros expanded without inspecting the whole stack on every call.

TVM 0.27 finds the parser that expands a `T.macro` (`ScriptMacro._find_parser_def`) with
`inspect.getouterframes`, which for every frame on the stack reads a line of source and looks up
its module (`inspect.getmodule` walks `sys.modules`: thousands of modules once torch is loaded),
on every macro call, only to read each frame's globals. The DSP and NEON kernels expand a few
hundred macros per model: on VWW MobileNet that lookup was half of the compile's CPU time.
`install()` makes the same search, frame by frame from the same one outwards, through
`frame.f_back`: the same parser is found, and the kernels are the same."""
from __future__ import annotations

import sys

from tvm.script.parser.core.parser import ScriptMacro


def _find_parser_def(self: ScriptMacro):
    """The parser in the globals of the innermost frame that holds one (as TVM's own lookup)."""
    frame = sys._getframe()
    while frame is not None:
        parser = frame.f_globals.get(ScriptMacro.parser_object_name)
        if parser is not None:
            return parser
        frame = frame.f_back
    raise RuntimeError(f"{ScriptMacro.parser_object_name} not available")


def install() -> None:
    """Expand TVMScript macros with the frame walk above (idempotent)."""
    ScriptMacro._find_parser_def = _find_parser_def
