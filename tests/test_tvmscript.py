"""TVMScript parses through edgeprune's shortcuts (compile/tvmscript.py: the caller's stack read
through linecache, the frame walk, each function's source read once, each source's doc tree parsed
once) once the hand-written kernels are imported, to the same TIR as the code written out by hand."""
import inspect

import pytest
import tvm_ffi
from tvm.script import tirx as T
from tvm.script.parser.core.diagnostics import Source
from tvm.script.parser.core.parser import ScriptMacro
from tvm.tirx.script.parser import entry as tir_entry

import edgeprune.compile.dsp  # noqa: F401  (installs the shortcuts)
from edgeprune.compile import tvmscript


@T.macro
def _twice(y, i):
    y[i] = y[i] * T.int32(2)


@T.macro
def _double_then_add(y, i, k):
    _twice(y, i)  # a macro expanded inside another
    y[i] = y[i] + k


def _with_macros(k: int):
    @T.prim_func
    def f(y: T.Buffer((4,), "int32")):
        for i in range(4):
            _double_then_add(y, i, k)
    return f


def _by_hand(k: int):
    @T.prim_func
    def f(y: T.Buffer((4,), "int32")):
        for i in range(4):
            y[i] = y[i] * T.int32(2)
            y[i] = y[i] + k
    return f


def test_the_kernels_install_the_shortcuts():
    assert ScriptMacro._find_parser_def is tvmscript._find_parser_def
    assert Source.__init__ is tvmscript._source_once
    assert Source.as_ast is tvmscript._as_ast
    assert tir_entry.inspect.stack is tvmscript._stack
    assert tir_entry.inspect.isfunction is inspect.isfunction


def _both_stacks(context: int) -> tuple[list, list]:
    return inspect.stack(context), tvmscript._stack(context)  # one line: the same caller's line


@pytest.mark.parametrize("context", [1, 3])
def test_the_stack_shortcut_gives_inspect_stacks_frames_and_lines(context):
    expected, actual = _both_stacks(context)
    assert len(actual) == len(expected) > 3
    for want, got in zip(expected, actual):
        assert got.frame is want.frame
        assert (got.filename, got.lineno, got.function, got.code_context, got.index) == \
               (want.filename, want.lineno, want.function, want.code_context, want.index)
    assert "_both_stacks(context)" in actual[1].code_context[context // 2]


def test_a_closure_made_again_reuses_its_source_and_tree():
    first, second = _with_macros(3), _with_macros(3)
    assert tvm_ffi.structural_equal(first, second)
    sources = [Source(f) for f in (_with_macros, _with_macros)]
    assert sources[0].source == sources[1].source and "def f(" in sources[0].source
    assert sources[0].as_ast() is sources[1].as_ast()


@pytest.mark.parametrize("k", [3, -7])
def test_nested_macros_expand_to_the_code_written_out(k):
    assert tvm_ffi.structural_equal(_with_macros(k), _by_hand(k))
    assert not tvm_ffi.structural_equal(_with_macros(k), _by_hand(k + 1))


def test_a_macro_called_outside_a_script_says_so():
    with pytest.raises(RuntimeError, match="not available"):
        _twice(None, 0)
