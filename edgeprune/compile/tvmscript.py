"""TVMScript kernels parsed without TVM 0.27's repeated work.

The DSP and NEON kernels are closures: every layer calls `T.prim_func` and expands a few dozen
`T.macro`s, each time on the same few functions' source. TVM 0.27 repeats four things on each of
those calls, and `install()` makes each one cheap or once:

- `T.prim_func` takes `inspect.stack()`, which reads a line of source for every frame on the
  stack through `inspect.getmodule` (a walk of `sys.modules` per frame): 0.4 s per kernel in a
  search or a test, where torch is loaded and the stack is deep. The parser uses the frames and
  the decorator's line: `_stack` reads each frame's lines from `linecache` by its file name.
- Finding the parser that expands a macro (`ScriptMacro._find_parser_def`) uses
  `inspect.getouterframes`, which for every frame on the stack reads a line of source and looks up
  its module (`inspect.getmodule` walks `sys.modules`: thousands of modules once torch is loaded),
  only to read each frame's globals. The same search goes frame by frame, from the same one
  outwards, through `frame.f_back`: the same parser is found. On VWW MobileNet that lookup was half
  of the compile's CPU time.
- Reading a function's source (`Source.__init__`: `inspect.getsourcelines`, then the whole
  module's source) for every closure made from it: kept per code object.
- Parsing that source into TVM's doc tree (`Source.as_ast`, called again on every expansion of a
  macro): kept per source text. The parser only reads the tree (its one write, a missing slice
  step set to 1, gives the same tree again), so one tree serves every parse.

The kernels are the same TIR either way (tests/test_tvmscript.py)."""
from __future__ import annotations

import functools
import inspect
import linecache
import sys
import types

from tvm.script.parser.core import doc
from tvm.script.parser.core.diagnostics import Source
from tvm.script.parser.core.parser import ScriptMacro
from tvm.tirx.script.parser import entry as tir_entry

_SOURCE_FIELDS = ("source_name", "start_line", "start_column", "source", "full_source")
_read_source = Source.__init__
_sources: dict[types.CodeType, tuple] = {}


def _stack(context: int = 1) -> list[inspect.FrameInfo]:
    """`inspect.stack(context)`, each frame's lines read from `linecache` by its code's file name."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        code, lineno = frame.f_code, frame.f_lineno
        lines = linecache.getlines(code.co_filename, frame.f_globals)
        start = max(0, min(lineno - 1 - context // 2, len(lines) - context))
        shown = lines[start:start + context] or None
        frames.append(inspect.FrameInfo(frame, code.co_filename, lineno, code.co_name, shown,
                                        lineno - 1 - start if shown else None))
        frame = frame.f_back
    return frames


_inspect_with_fast_stack = types.ModuleType("inspect")  # what `T.prim_func` sees as `inspect`
_inspect_with_fast_stack.__dict__.update(vars(inspect))
_inspect_with_fast_stack.stack = _stack


def _find_parser_def(self: ScriptMacro):
    """The parser in the globals of the innermost frame that holds one (as TVM's own lookup)."""
    frame = sys._getframe()
    while frame is not None:
        parser = frame.f_globals.get(ScriptMacro.parser_object_name)
        if parser is not None:
            return parser
        frame = frame.f_back
    raise RuntimeError(f"{ScriptMacro.parser_object_name} not available")


def _source_once(self: Source, program) -> None:
    """`Source.__init__`, reading each function's source once (per code object)."""
    code = getattr(program, "__code__", None)
    if not isinstance(code, types.CodeType):
        _read_source(self, program)
        return
    if code not in _sources:
        _read_source(self, program)
        _sources[code] = tuple(getattr(self, field) for field in _SOURCE_FIELDS)
    for field, value in zip(_SOURCE_FIELDS, _sources[code]):
        setattr(self, field, value)


@functools.cache
def _doc_tree(source: str) -> doc.AST:
    """TVM's doc tree of a source text."""
    return doc.parse(source)


def _as_ast(self: Source) -> doc.AST:
    """`Source.as_ast`, parsing each source text once."""
    return _doc_tree(self.source)


def install() -> None:
    """Parse and expand TVMScript with the shortcuts above (idempotent)."""
    tir_entry.inspect = _inspect_with_fast_stack
    ScriptMacro._find_parser_def = _find_parser_def
    Source.__init__ = _source_once
    Source.as_ast = _as_ast
