"""TVMScript parses through edgeprune's shortcuts (compile/tvmscript.py: the frame walk, each
function's source read once, each source's doc tree parsed once) once the hand-written kernels are
imported, to the same TIR as the code written out by hand."""
import pytest
import tvm_ffi
from tvm.script import tirx as T
from tvm.script.parser.core.diagnostics import Source
from tvm.script.parser.core.parser import ScriptMacro

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
