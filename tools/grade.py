"""Grade a folder of submitted notebooks against the solved reference notebook.

For each submission and each graded exercise of the reference (see ``tools/make_student.py``
for the conventions), the grader

1. finds the submitted graded cell by its id (``exercise-N-...``), or else by the function it
   defines, never by its position;
2. refuses it without running it when its source does not parse, uses the reference solution
   (``fr_utils.verify``, ``fr_utils.who_is_it``, ``fr_triplets``...), reads the notebook or the
   hidden tests, runs shell commands, deletes files, stops the kernel or patches a module;
3. runs it in a kernel that has executed the reference notebook once (up to the last cell an
   exercise needs), in the state the reference had just before that cell (a checkpoint of the
   notebook's variables);
4. runs the visible test cells after it, then each later cell that uses the function (each from
   its own checkpoint, with the submitted function put in place), and compares every output with
   the reference's stored one using nbval's comparison;
5. runs the hidden tests of ``instructor/hidden_tests.py`` (not given to students) against the
   submitted function, with expected values computed by the package's own functions before any
   submission ran;
6. checks that the submission left the files, the modules and the model as they were.

An exercise scores 0, with the reason, when any of 1-4 or 6 fails (an error, a cell running
past the per-cell timeout, an output different from the reference's); otherwise it scores
``points x hidden tests passed / hidden tests``. One kernel serves every submission: the
reference notebook runs once, then each exercise costs only its own cells.

This is a grader for honest mistakes, not a sandbox: the kernel runs as the grader's user, in a
temporary copy of the files the notebook needs (so deleting files there harms nothing), and the
static checks refuse the obvious ways to cheat or to damage the machine, not every way.

Usage::

    python tools/grade.py SUBMISSIONS_DIR [--reference Face_Recognition.ipynb] [--out build/grades]

writes ``grades.csv`` (student, exercise, points, max_points, reason) and ``feedback/<student>.txt``.
"""

import argparse
import ast
import collections
import copy
import importlib.util
import inspect
import json
import os
import queue
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import nbformat
from nbformat import NotebookNode
from nbval import plugin as nbval_plugin
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, start_new_kernel

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.make_student import (  # noqa: E402
    END_MARKER,
    GRADED_TAG,
    START_MARKER,
    cell_tags,
    defined_functions,
    graded_cells,
    is_test_cell,
)

DEFAULT_REFERENCE = ROOT / "Face_Recognition.ipynb"
DEFAULT_HIDDEN_TESTS = ROOT / "instructor" / "hidden_tests.py"
DEFAULT_OUT = ROOT / "build" / "grades"
DEFAULT_SANITIZE = ROOT / "nbval_sanitize.cfg"  # the output noise `make test` tells nbval to ignore
# What the notebook needs at run time, copied into the kernel's working folder. Not the notebook,
# tools/ (build_notebook.py holds the solutions), instructor/ or tests/.
DEFAULT_INCLUDE = ("*.py", "images", "keras-facenet-h5")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_POINTS = 10.0
MAX_OUTPUT_CHARS = 1_000_000  # per cell; beyond this a submission's output is dropped
INTERRUPT_GRACE_S = 15.0  # after an interrupt, how long a cell may take to stop before a restart
# nbval's default keys left out of the comparison (IPyNbFile.__init__, without --nbdime).
NBVAL_SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                      "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")
# Modules whose attributes a submission must not rebind (checked and restored after each run).
WATCHED_MODULES = ("fr_utils", "fr_triplets", "fr_eval", "inception_blocks_v2", "numpy", "numpy.linalg",
                   "builtins", "math", "os", "os.path")


class GraderError(RuntimeError):
    """The grader itself cannot go on (the reference notebook fails, the kernel cannot start)."""


class KernelBroken(RuntimeError):
    """A submission left the kernel unusable; the grader restarts it."""


# ---------------------------------------------------------------------------------------------
# Static checks of a submitted cell
# ---------------------------------------------------------------------------------------------
SOLUTION_FUNCTIONS = {"fr_utils": {"verify", "who_is_it", "nearest_identity"}}
SOLUTION_MODULES = {"fr_triplets", "tools", "instructor"}
# Reading one of these attributes of anything (fr_utils.verify, fr_widgets.fr_utils.verify, an
# alias of fr_utils...) is taken for using the package's solution of an exercise.
SOLUTION_ATTRIBUTES = {"verify", "who_is_it", "nearest_identity", "triplet_loss", "triplet_hinge", "squared_l2_distance"}
FORBIDDEN_MODULES = {  # module -> what it is refused for
    "subprocess": "runs other programs", "shutil": "deletes or moves files", "ctypes": "calls C code",
    "importlib": "imports code dynamically", "multiprocessing": "starts processes", "signal": "handles signals",
    "socket": "opens network connections", "pty": "starts a shell",
}
FILE_CHANGING_CALLS = {"remove", "unlink", "rmdir", "removedirs", "rmtree", "rename", "renames", "replace",
                       "truncate", "move", "write_text", "write_bytes", "chmod", "chown", "link", "symlink"}
PROCESS_CALLS = {"system", "popen", "kill", "killpg", "_exit", "abort", "fork", "forkpty", "chdir"}
PATCHABLE_MODULES = {"fr_utils", "fr_triplets", "fr_eval", "inception_blocks_v2", "np", "numpy", "tf",
                     "tensorflow", "keras", "builtins", "math", "os", "sys", "pd", "pandas"}
HARMLESS_MAGICS = {"matplotlib", "time", "timeit"}
SECRET_STRINGS = (".ipynb", "hidden_tests", "build_notebook", "make_student", "__grader__")


@dataclass(frozen=True)
class Problem:
    kind: str  # syntax, solution, files, process, tamper
    message: str


def python_source(source):
    """A cell's source as plain Python (IPython's ``!cmd`` and ``%magic`` lines become calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _dotted(node):
    """'a.b.c' for Name/Attribute chains, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def source_problems(source):
    """Why a submitted cell must not run, as a list of :class:`Problem` (empty when it may)."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError as exc:
        return [Problem("syntax", f"syntax error on line {exc.lineno}: {exc.msg}")]
    except Exception as exc:  # IPython's transformer on odd input
        return [Problem("syntax", f"the cell does not parse: {exc}")]
    problems = []

    def refuse(kind, message):
        if all(p.message != message for p in problems):
            problems.append(Problem(kind, message))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for module in names:
                root = module.split(".")[0]
                if root in SOLUTION_MODULES:
                    refuse("solution", f"imports {module}, which holds the solution")
                elif root in FORBIDDEN_MODULES:
                    refuse("files" if root == "shutil" else "process", f"imports {module} ({FORBIDDEN_MODULES[root]})")
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    solutions = SOLUTION_FUNCTIONS.get(node.module, ())
                    if alias.name in solutions or (alias.name == "*" and solutions):
                        refuse("solution", f"imports the solution: from {node.module} import {alias.name}")
                    if node.module in ("os", "sys") and alias.name in FILE_CHANGING_CALLS | PROCESS_CALLS | {"exit"}:
                        refuse("files", f"imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node) or ""
            base = dotted.rpartition(".")[0]
            if node.attr in SOLUTION_ATTRIBUTES:
                refuse("solution", f"uses the solution {dotted or '.' + node.attr}")
            if set(base.split(".")) & SOLUTION_MODULES:
                refuse("solution", f"uses {dotted}, which holds the solution")
            if node.attr == "__dict__" and base in PATCHABLE_MODULES | SOLUTION_MODULES:
                refuse("solution", f"reads {dotted}")
            if dotted in ("sys.modules", "sys.exit"):
                refuse("tamper", f"uses {dotted}")
        elif isinstance(node, ast.Call):
            dotted = _dotted(node.func) or ""
            if isinstance(node.func, ast.Attribute):  # also Path("x").unlink(): a call in the chain
                base, name = _dotted(node.func.value) or "", node.func.attr
            else:
                base, name = "", dotted
            if name in FILE_CHANGING_CALLS and (base in ("os", "shutil", "pathlib", "Path", "os.path") or
                                                name in ("unlink", "rmdir", "rmtree", "write_text", "write_bytes")):
                refuse("files", f"deletes or changes files: {dotted or name}()")
            elif name in PROCESS_CALLS and base in ("os", "sys"):
                refuse("process", f"calls {dotted}()")
            elif dotted in ("exit", "quit"):
                refuse("process", f"calls {dotted}(), which stops the kernel")
            elif dotted in ("exec", "eval", "compile", "__import__", "breakpoint", "input"):
                refuse("tamper", f"calls {dotted}()")
            elif dotted in ("getattr", "setattr", "delattr", "vars") and node.args and \
                    _dotted(node.args[0]) in PATCHABLE_MODULES | SOLUTION_MODULES:
                refuse("tamper" if dotted != "getattr" else "solution", f"calls {dotted}({_dotted(node.args[0])}, ...)")
            elif name in ("system", "getoutput", "run_line_magic", "run_cell_magic") and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Call) and _dotted(node.func.value.func) == "get_ipython":
                magic = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
                if node.func.attr in ("system", "getoutput") or magic not in HARMLESS_MAGICS:
                    refuse("process", f"runs shell commands or magics ({'!' if magic is None else '%' + str(magic)})")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Attribute) and (_dotted(sub) or "").split(".")[0] in PATCHABLE_MODULES:
                        refuse("tamper", f"changes {_dotted(sub)} (a module's attribute)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for secret in SECRET_STRINGS:
                if secret in node.value:
                    refuse("solution", f"refers to {secret!r} (the notebook or the grader's files)")
        elif isinstance(node, ast.Name) and node.id.startswith("__grader"):
            refuse("tamper", "uses the grader's own objects")
    return problems


# ---------------------------------------------------------------------------------------------
# Exercises of the reference notebook
# ---------------------------------------------------------------------------------------------
def _skipped(cell):
    """nbval does not run a cell tagged nbval-skip or marked # NBVAL_SKIP."""
    options = dict(nbval_plugin.find_metadata_tags(cell.metadata))
    options.update(dict(nbval_plugin.find_comment_markers(cell.source)))
    return bool(options.get("skip"))


def _nbval_options(cell):
    options = collections.defaultdict(bool, nbval_plugin.find_metadata_tags(cell.metadata))
    options.update(dict(nbval_plugin.find_comment_markers(cell.source)))
    options.setdefault("check", True)
    return options


def names_used(source):
    """Names a cell reads (ast.Name nodes); a regex over words when it does not parse."""
    try:
        tree = ast.parse(python_source(source))
    except Exception:
        return set(re.findall(r"[A-Za-z_]\w*", source))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def names_defined_as_code(source):
    """Functions and classes a cell defines at top level: they may call an exercise function later."""
    try:
        tree = ast.parse(python_source(source))
    except Exception:
        return set()
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


@dataclass
class Exercise:
    """A graded exercise and the reference cells that check it."""

    cell_id: str
    number: int
    function: str
    index: int  # the graded cell
    block: list  # code cells run right after it, in order: up to its last visible test cell
    tests: list  # the visible test cells among them
    downstream: list  # later cells that use the function, each run from its own checkpoint
    points: float = DEFAULT_POINTS


def find_exercises(notebook, points=None):
    """The exercises of a reference notebook with the cells each one is checked by."""
    points = points or {}
    cells = notebook.cells
    runnable = [i for i, c in enumerate(cells) if c.cell_type == "code" and not _skipped(c)]
    exercises = []
    for graded in graded_cells(notebook):
        tests = [i for i in runnable if i > graded.index and is_test_cell(cells[i], graded.number)]
        block_end = max(tests) if tests else graded.index
        block = [i for i in runnable if graded.index < i <= block_end]
        used_by, downstream = {graded.function}, []
        for i in runnable:
            if i > block_end and names_used(cells[i].source) & used_by:
                downstream.append(i)
                used_by |= names_defined_as_code(cells[i].source)
        exercises.append(Exercise(graded.cell_id, graded.number, graded.function, graded.index, block, tests,
                                  downstream, float(points.get(graded.cell_id, DEFAULT_POINTS))))
    return exercises


def find_submitted_cell(notebook, exercise):
    """The submission's cell for an exercise: ``(cell, how)``, or ``(None, why)``.

    By id first (when that cell still defines the function); otherwise the last code cell that
    defines the function, preferring one tagged ``graded`` or holding the START marker.
    """
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    by_id = [c for c in code_cells if c.get("id") == exercise.cell_id]
    if by_id and exercise.function in defined_functions(by_id[0].source):
        return by_id[0], f"cell id {exercise.cell_id}"
    defining = [c for c in code_cells if exercise.function in defined_functions(c.source)]
    marked = [c for c in defining if GRADED_TAG in cell_tags(c) or START_MARKER in c.source]
    if marked or defining:
        return (marked or defining)[-1], f"the cell defining {exercise.function}()"
    if by_id:
        return by_id[0], f"cell id {exercise.cell_id}"
    return None, f"no cell with id {exercise.cell_id} and no cell defining {exercise.function}()"


# ---------------------------------------------------------------------------------------------
# Output comparison: nbval's own, outside pytest
# ---------------------------------------------------------------------------------------------
def _short(value, limit=160):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OutputComparison:
    """nbval's ``IPyNbCell.compare_outputs`` (same keys skipped, same stream merging, same
    sanitising) on outputs collected here rather than in a pytest item."""

    colors = nbval_plugin.nocolors
    compare_outputs = nbval_plugin.IPyNbCell.compare_outputs
    sanitize = nbval_plugin.IPyNbCell.sanitize

    def __init__(self, sanitize_patterns=None):
        self.parent = SimpleNamespace(skip_compare=NBVAL_SKIP_COMPARE,
                                      sanitize_patterns=collections.OrderedDict(sanitize_patterns or []))
        self.comparison_traceback = []

    def format_output_compare(self, key, left, right):
        self.comparison_traceback.append(f"{key}: expected {_short(left)}, got {_short(right)}")

    def difference(self, test_outputs, reference_outputs):
        """None when nbval finds the outputs equal, else a one-line description."""
        test = nbval_plugin.coalesce_streams(copy.deepcopy(list(test_outputs)))
        reference = nbval_plugin.coalesce_streams(copy.deepcopy(list(reference_outputs)))
        if self.compare_outputs(test, reference):
            return None
        return " ".join(line.strip() for line in self.comparison_traceback if line.strip())


# ---------------------------------------------------------------------------------------------
# The kernel
# ---------------------------------------------------------------------------------------------
@dataclass
class Execution:
    outputs: list
    error: dict = None  # {"ename", "evalue"} when the code raised
    timed_out: bool = False  # ran past its timeout (and was interrupted)
    dead: bool = False  # the kernel is no longer usable
    user_expressions: dict = field(default_factory=dict)
    seconds: float = 0.0


class Kernel:
    """One IPython kernel of this environment, running code with a timeout."""

    def __init__(self, cwd, startup_timeout=120):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)  # the working copy's modules, not the repository's
        self.devnull = open(os.devnull, "w")  # the kernel process's own stderr (not the cells')
        self.km, self.kc = start_new_kernel(startup_timeout=startup_timeout, kernel_name=CURRENT_ENV_KERNEL_NAME,
                                            cwd=str(cwd), env=env, stderr=self.devnull)

    def alive(self):
        return self.km.is_alive()

    def execute(self, code, timeout, user_expressions=None):
        start = time.monotonic()
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False, stop_on_error=False,
                                 user_expressions=user_expressions or {})
        run = Execution(outputs=[])
        deadline, clear_pending, idle, kept = start + timeout, False, False, 0
        while not idle:
            now = time.monotonic()
            if now > deadline:
                if run.timed_out:  # the interrupt did not stop it
                    run.dead = True
                    break
                self.km.interrupt_kernel()
                run.timed_out, deadline = True, now + INTERRUPT_GRACE_S
                continue
            try:
                msg = self.kc.get_iopub_msg(timeout=min(1.0, deadline - now))
            except queue.Empty:
                if not self.km.is_alive():
                    run.dead = True
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status":
                idle = content["execution_state"] == "idle"
                continue
            if kind == "clear_output":
                if content.get("wait"):
                    clear_pending = True
                else:
                    run.outputs = []
                continue
            if kind not in ("stream", "display_data", "execute_result", "error"):
                continue
            if clear_pending:
                run.outputs, clear_pending = [], False
            kept += len(str(content.get("text", content.get("data", ""))))
            if kept > MAX_OUTPUT_CHARS and kind != "error":
                continue  # a runaway print loop: enough is kept to show the difference
            if kind == "stream":
                run.outputs.append(NotebookNode(output_type="stream", name=content["name"], text=content["text"]))
            elif kind == "error":
                run.error = {"ename": content["ename"], "evalue": content["evalue"]}
                run.outputs.append(NotebookNode(output_type="error", ename=content["ename"],
                                                evalue=content["evalue"], traceback=content["traceback"]))
            else:
                out = NotebookNode(output_type=kind, data=content["data"], metadata=content["metadata"])
                if kind == "execute_result":
                    out.execution_count = content["execution_count"]
                run.outputs.append(out)
        if not run.dead:
            run.user_expressions = self._reply(msg_id).get("user_expressions", {})
        run.seconds = time.monotonic() - start
        return run

    def _reply(self, msg_id, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_shell_msg(timeout=1)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]
        return {}

    def shutdown(self):
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        except Exception:  # already gone
            pass
        self.devnull.close()


class _KernelSide:
    """The grader's helper inside the kernel (its source is sent there as ``__grader__``).

    Checkpoints copy the notebook's plain data (numbers, strings, arrays, containers of them,
    DataFrames) and keep other objects (the model, modules, functions) by reference.
    """

    def __init__(self, cwd, watched_modules):
        import IPython

        self.shell = IPython.get_ipython()
        self.cwd = cwd
        self.watched_modules = watched_modules
        self.checkpoints = {}
        self.modules = {}
        self.models = []
        self.before = {}
        self.submitted = {}
        self.result = ""

    def user_names(self):
        import re

        hidden = self.shell.user_ns_hidden
        internal = re.compile(r"_(i{1,3}|ih|oh|dh|\d*|i\d+)?")
        return [name for name in list(self.shell.user_ns)
                if name not in hidden and not name.startswith("__") and not internal.fullmatch(name)]

    def _plain(self, value, depth=0):
        import pathlib
        import sys

        import numpy as np

        if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic, pathlib.PurePath)):
            return True
        if isinstance(value, np.ndarray):
            return value.dtype != object
        pandas = sys.modules.get("pandas")
        if pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series)):
            return True
        if depth > 3:
            return False
        if type(value) in (list, tuple, set, frozenset):
            return len(value) <= 100_000 and all(self._plain(v, depth + 1) for v in value)
        if type(value) is dict:
            return all(self._plain(k, depth + 1) and self._plain(v, depth + 1) for k, v in value.items())
        return False

    def checkpoint(self, key):
        import copy

        ns = self.shell.user_ns
        self.checkpoints[key] = {name: (True, copy.deepcopy(ns[name])) if self._plain(ns[name]) else (False, ns[name])
                                 for name in self.user_names()}

    def restore(self, key, inject=False):
        import copy
        import os

        ns, snapshot = self.shell.user_ns, self.checkpoints[key]
        for name in self.user_names():
            if name not in snapshot:
                del ns[name]
        for name, (plain, value) in snapshot.items():
            ns[name] = copy.deepcopy(value) if plain else value
        if inject:
            ns.update(self.submitted)
        if os.getcwd() != self.cwd:
            os.chdir(self.cwd)
        self.restore_modules()
        self._restore_global_state()

    def save_state(self):
        """After the reference ran: remember the watched modules and fingerprint the models."""
        import sys

        self.modules = {}
        for name in self.watched_modules:
            if name in sys.modules:
                module = sys.modules[name]
                self.modules[name] = (module, {k: v for k, v in vars(module).items() if not k.startswith("__")})
        self.global_state = self._global_state()
        ns, seen = self.shell.user_ns, set()
        for name in self.user_names():
            value = ns[name]
            if hasattr(value, "get_weights") and hasattr(value, "count_params") and id(value) not in seen:
                seen.add(id(value))
                self.models.append((name, value, self._fingerprint(value)))

    @staticmethod
    def _global_state():
        """Settings kept outside any namespace that change what later cells print."""
        import sys
        import warnings

        state = {"warnings": list(warnings.filters)}
        if "numpy" in sys.modules:
            state["numpy"] = sys.modules["numpy"].get_printoptions()
        if "matplotlib" in sys.modules:
            state["matplotlib"] = dict(sys.modules["matplotlib"].rcParams)
        return state

    def _restore_global_state(self):
        import sys
        import warnings

        saved, changed = getattr(self, "global_state", None), []
        if not saved:
            return changed
        if list(warnings.filters) != saved["warnings"]:
            warnings.filters[:] = saved["warnings"]
            getattr(warnings, "_filters_mutated", lambda: None)()
            changed.append("the warning filters")
        if "numpy" in saved and sys.modules["numpy"].get_printoptions() != saved["numpy"]:
            sys.modules["numpy"].set_printoptions(**saved["numpy"])
            changed.append("NumPy's print options")
        if "matplotlib" in saved:
            params = sys.modules["matplotlib"].rcParams
            different = {k: v for k, v in saved["matplotlib"].items() if params.get(k) != v}
            if different:
                params.update(different)
                changed.append("matplotlib's rcParams")
        return changed

    @staticmethod
    def _fingerprint(model):
        import numpy as np

        weights = model.get_weights()
        return [len(weights), float(sum(np.sum(w, dtype=np.float64) for w in weights)),
                float(sum(np.sum(np.abs(w), dtype=np.float64) for w in weights))]

    def restore_modules(self):
        import sys

        changed = []
        for name, (module, saved) in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
                changed.append(name)
            current = vars(module)
            for key, value in saved.items():
                if f"{name}.{key}" in ("builtins.input", "builtins.raw_input"):
                    continue  # the kernel itself swaps these on every request
                if key not in current or current[key] is not value:
                    current[key] = value
                    changed.append(f"{name}.{key}")
        return changed

    def before_cell(self):
        ns = self.shell.user_ns
        self.before = {name: ns[name] for name in self.user_names()}

    def after_cell(self):
        ns, before = self.shell.user_ns, self.before
        self.submitted = {name: ns[name] for name in self.user_names()
                          if name not in before or ns[name] is not before[name]}
        self.before = {}

    def function_status(self, name):
        import json

        value = self.shell.user_ns.get(name)
        code = getattr(value, "__code__", None)
        self.result = json.dumps({"defined": name in self.shell.user_ns, "callable": callable(value),
                                  "module": getattr(value, "__module__", None),
                                  "in_cell": bool(code) and name in self.submitted})

    def health(self):
        """What a submission changed that it must not: modules, the working folder, the models."""
        import json
        import os

        problems = [f"changed {name} (restored)" for name in self.restore_modules()]
        # Settings (print options, warning filters, rcParams) are put back without a penalty.
        notes = [f"changed {what} (restored)" for what in self._restore_global_state()]
        if os.getcwd() != self.cwd:
            problems.append(f"changed the working folder to {os.getcwd()} (restored)")
            os.chdir(self.cwd)
        broken_models = [name for name, model, fingerprint in self.models if self._fingerprint(model) != fingerprint]
        self.result = json.dumps({"problems": problems, "notes": notes, "broken_models": broken_models})

    def hidden(self, source, task, *args):
        """Run ``task`` (compute_oracles or run_cases) of the hidden tests' source; JSON result."""
        import json

        namespace = {"__name__": "hidden_tests"}
        exec(compile(source, "hidden_tests.py", "exec"), namespace)
        self.result = json.dumps(namespace[task](*args, dict(self.shell.user_ns)))


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class ExerciseResult:
    student: str
    exercise: str
    points: float
    max_points: float
    reason: str
    details: list = field(default_factory=list)
    seconds: float = 0.0


def load_hidden_tests(path):
    """The hidden tests module (for its EXERCISES table) and its source (run in the kernel)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location("hidden_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path.read_text()


def _error_text(error):
    first = (error.get("evalue") or "").strip().splitlines()
    return f"{error['ename']}: {first[0]}" if first else error["ename"]


# ---------------------------------------------------------------------------------------------
# The grader
# ---------------------------------------------------------------------------------------------
class Grader:
    """Runs the reference once in a kernel, then grades submissions one exercise at a time.

    Use as a context manager::

        with Grader("Face_Recognition.ipynb") as grader:
            results = grader.grade_notebook("alice.ipynb", "alice")
    """

    def __init__(self, reference=DEFAULT_REFERENCE, hidden_tests=DEFAULT_HIDDEN_TESTS, timeout=DEFAULT_TIMEOUT_S,
                 source_root=ROOT, include=DEFAULT_INCLUDE, sanitize_with=DEFAULT_SANITIZE, reuse_identical=True,
                 log=None):
        self.reference_path = Path(reference)
        self.reference = nbformat.read(str(self.reference_path), as_version=4)
        self.hidden_module, self.hidden_source = load_hidden_tests(hidden_tests)
        table = getattr(self.hidden_module, "EXERCISES", {})
        points = {key: spec.get("points", DEFAULT_POINTS) for key, spec in table.items()}
        self.exercises = find_exercises(self.reference, points)
        if not self.exercises:
            raise GraderError(f"{self.reference_path}: no graded cells (tag 'graded', id 'exercise-N-...').")
        self.timeout = float(timeout)
        self.source_root = Path(source_root)
        self.include = include
        sanitize_with = Path(sanitize_with) if sanitize_with else None
        patterns = nbval_plugin.get_sanitize_patterns(sanitize_with.read_text()) \
            if sanitize_with and sanitize_with.is_file() else None
        self.comparison = OutputComparison(patterns)
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.kernel = None
        self.tmp = None
        self.workdir = None
        self.manifest = {}
        self.unstable = set()  # reference cells whose re-run output differs from the stored one
        self.cell_seconds = {}
        self.oracles = {}
        self.setup_seconds = 0.0
        self.restarts = 0
        # Grading is deterministic, so a cell identical to one graded before (the untouched
        # placeholder, a solution shared by a group) gets the same result without running again.
        self.reuse_identical = reuse_identical
        self.graded_sources = {}  # (exercise id, source) -> (student, ExerciseResult)

    # -- set-up -----------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        started = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="fr-grade-"))
        self.workdir = self.tmp / "work"
        self.workdir.mkdir()
        shared = self.source_root.parent / "shared"
        if shared.is_dir():  # read-only benchmark data the notebook may read as ../shared
            (self.tmp / "shared").symlink_to(shared)
        self._copy_workdir()
        self._start_kernel(first=True)
        self.setup_seconds = time.monotonic() - started
        self.log(f"grader ready in {self.setup_seconds:.1f} s (reference run once, up to the last cell an exercise needs)")

    def close(self):
        if self.kernel is not None:
            self.kernel.shutdown()
            self.kernel = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def _copy_workdir(self, only=None):
        for pattern in self.include:
            for source in sorted(self.source_root.glob(pattern)):
                if source.name.endswith(".ipynb"):
                    continue
                target = self.workdir / source.relative_to(self.source_root)
                if source.is_dir():
                    shutil.copytree(source, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
                elif only is None or target in only:
                    shutil.copy2(source, target)
        if only is not None:
            for target in only:  # files inside copied folders
                source = self.source_root / target.relative_to(self.workdir)
                if source.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
        self.manifest = self._scan(self.manifest.keys() if self.manifest else None)

    def _scan(self, paths=None):
        if paths is None:
            paths = [p for p in self.workdir.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        state = {}
        for path in paths:
            try:
                info = path.stat()
                state[path] = (info.st_size, info.st_mtime_ns)
            except OSError:
                state[path] = None
        return state

    def _damaged_files(self):
        now = self._scan(self.manifest.keys())
        return sorted(p for p, before in self.manifest.items() if now.get(p) != before)

    def _start_kernel(self, first=False):
        if self.kernel is not None:
            self.kernel.shutdown()
            self.restarts += 1
            self.log("restarting the kernel and running the reference again")
        self.kernel = Kernel(self.workdir)
        helper = inspect.getsource(_KernelSide)
        self._call(f"{helper}\n__grader__ = _KernelSide({str(self.workdir)!r}, {WATCHED_MODULES!r})\ndel _KernelSide")
        checkpoints = {ex.index for ex in self.exercises} | {i for ex in self.exercises for i in ex.downstream}
        # Cells after the last one an exercise needs cannot change any grade: they are not run.
        last_needed = max(max([ex.index, *ex.block, *ex.downstream]) for ex in self.exercises)
        for index, cell in enumerate(self.reference.cells[: last_needed + 1]):
            if cell.cell_type != "code" or _skipped(cell):
                continue
            if index in checkpoints:
                self._call(f"__grader__.checkpoint('cell-{index}')")
            run = self.kernel.execute(cell.source, timeout=max(600.0, 10 * self.timeout))
            if run.dead or run.timed_out:
                raise GraderError(f"the reference notebook's cell {index} ({cell.get('id')}) did not finish.")
            options = _nbval_options(cell)
            if run.error and not options["check_exception"]:
                raise GraderError(f"the reference notebook fails in cell {index} ({cell.get('id')}): "
                                  f"{_error_text(run.error)}")
            self.cell_seconds[index] = run.seconds
            if first and options["check"] and cell.execution_count is not None:
                difference = self.comparison.difference(run.outputs, cell.outputs)
                if difference:
                    self.unstable.add(index)
                    self.log(f"warning: reference cell {index} ({cell.get('id')}) does not reproduce its stored "
                             f"output, so it is not compared: {difference}")
        self._call("__grader__.save_state()")
        if first:
            self.oracles = self._call_json(f"__grader__.hidden({self.hidden_source!r}, 'compute_oracles')",
                                           timeout=max(600.0, 10 * self.timeout))

    def _call(self, code, timeout=None):
        """Run grader code in the kernel; raises KernelBroken if it fails."""
        run = self.kernel.execute(code, timeout=timeout or max(60.0, self.timeout),
                                  user_expressions={"result": "__grader__.result"} if "__grader__" in code else None)
        if run.dead or run.timed_out or run.error:
            why = "the kernel died" if run.dead else "timed out" if run.timed_out else _error_text(run.error)
            raise KernelBroken(f"grader code failed in the kernel ({why})")
        return run

    def _call_json(self, code, timeout=None):
        run = self._call(code, timeout)
        value = run.user_expressions.get("result", {})
        if value.get("status") != "ok":
            raise KernelBroken(f"grader result unavailable: {value.get('evalue', value)}")
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))

    def _cell_timeout(self, index):
        return max(self.timeout, 3 * self.cell_seconds.get(index, 0.0) + 10)

    # -- grading ----------------------------------------------------------------------------
    def grade_notebook(self, path, student):
        """Grade one submitted notebook; returns one :class:`ExerciseResult` per exercise."""
        try:
            notebook = nbformat.read(str(path), as_version=4)
        except Exception as exc:
            reason = f"not a readable notebook ({type(exc).__name__}: {exc})"
            return [ExerciseResult(student, ex.cell_id, 0.0, ex.points, reason) for ex in self.exercises]
        results = []
        for exercise in self.exercises:
            started = time.monotonic()
            cell, how = find_submitted_cell(notebook, exercise)
            if cell is None:
                result = self._zero(student, exercise, f"exercise not found: {how}")
            elif self.reuse_identical and (exercise.cell_id, cell.source) in self.graded_sources:
                first, earlier = self.graded_sources[exercise.cell_id, cell.source]
                result = ExerciseResult(student, exercise.cell_id, earlier.points, earlier.max_points, earlier.reason,
                                        [f"graded cell found by {how}", f"same code as {first}'s: result reused",
                                         *earlier.details[1:]])
            else:
                result = self.grade_source(cell.source, exercise, student)
                result.details.insert(0, f"graded cell found by {how}")
                self.graded_sources[exercise.cell_id, cell.source] = (student, result)
            result.seconds = time.monotonic() - started
            results.append(result)
        return results

    def grade_source(self, source, exercise, student="?"):
        """Grade one exercise from the source of the submitted cell."""
        problems = source_problems(source)
        if problems:
            return self._zero(student, exercise, problems[0].message, [p.message for p in problems[1:]])
        # Whatever the run's outcome, the kernel's health is checked now, so that damage is blamed
        # on this submission and repaired before the next one.
        try:
            result = self._run_exercise(source, exercise, student)
            health = self._call_json("__grader__.health()")
        except KernelBroken as exc:
            self._start_kernel()
            return self._zero(student, exercise, f"your code broke the notebook's kernel: {exc}")
        details = result.details = result.details + health["notes"]
        if health["broken_models"]:
            self._start_kernel()
            models = ", ".join(health["broken_models"])
            return self._zero(student, exercise, f"changed the model's weights ({models})", details)
        if health["problems"]:
            return self._zero(student, exercise, "; ".join(health["problems"]), details)
        damaged = self._damaged_files()
        if damaged:
            names = ", ".join(str(p.relative_to(self.workdir)) for p in damaged[:5])
            self._copy_workdir(only=damaged)
            return self._zero(student, exercise, f"deleted or changed files: {names}", details)
        return result

    def _zero(self, student, exercise, reason, details=()):
        return ExerciseResult(student, exercise.cell_id, 0.0, exercise.points, reason, list(details))

    def _execute(self, source, index):
        run = self.kernel.execute(source, timeout=self._cell_timeout(index))
        if run.dead:
            self._start_kernel()
        return run

    def _run_failure(self, run, index, what):
        """Why a run of reference cell ``index`` (or the submitted cell) fails, or None."""
        cell = self.reference.cells[index]
        if run.timed_out or run.dead:
            return f"{what} did not finish within {self._cell_timeout(index):.0f} s (an infinite loop?)"
        options = _nbval_options(cell)
        if run.error and not options["check_exception"]:
            if run.error["ename"] == "NotImplementedError":
                return f"not implemented yet: {what} raised NotImplementedError (replace the placeholder with your code)"
            return f"{what} raised {_error_text(run.error)}"
        if options["check"] and cell.execution_count is not None and index not in self.unstable:
            difference = self.comparison.difference(run.outputs, cell.outputs)
            if difference:
                return f"{what} printed something other than the reference: {difference}"
        return None

    def _run_exercise(self, source, exercise, student):
        zero = lambda reason, details=(): self._zero(student, exercise, reason, details)  # noqa: E731
        cells = self.reference.cells
        self._call(f"__grader__.restore('cell-{exercise.index}')\n__grader__.before_cell()")
        run = self._execute(source, exercise.index)
        if run.dead:
            return zero(self._run_failure(run, exercise.index, "your graded cell"))
        self._call("__grader__.after_cell()")
        failure = self._run_failure(run, exercise.index, "your graded cell")
        if failure:
            return zero(failure)
        status = self._call_json(f"__grader__.function_status({exercise.function!r})")
        if not status["defined"] or not status["callable"]:
            return zero(f"your graded cell does not define {exercise.function}()")
        if status["module"] != "__main__" or not status["in_cell"]:
            return zero(f"{exercise.function} is not a function written in your graded cell "
                        f"(it comes from {status['module']})")
        details = []
        for index in exercise.block:
            what = f"the visible test cell {cells[index].get('id')}" if index in exercise.tests else \
                f"cell {cells[index].get('id')}"
            run = self._execute(cells[index].source, index)
            failure = self._run_failure(run, index, what)
            if failure:
                return zero(failure)
        details.append(f"visible tests passed ({len(exercise.tests)} cells)")
        for index in exercise.downstream:
            self._call(f"__grader__.restore('cell-{index}', inject=True)")
            run = self._execute(cells[index].source, index)
            failure = self._run_failure(run, index, f"cell {cells[index].get('id')} (which uses {exercise.function})")
            if failure:
                return zero(failure, details)
        if exercise.downstream:
            details.append(f"{len(exercise.downstream)} later cells that use {exercise.function} match the reference")
        cases = self._hidden_cases(exercise)
        if isinstance(cases, str):
            return zero(cases, details)
        details += [f"hidden test {c['name']}: {'passed' if c['passed'] else 'FAILED, ' + c['message']}" for c in cases]
        if not cases:
            return ExerciseResult(student, exercise.cell_id, exercise.points, exercise.points,
                                  "visible tests and outputs match the reference", details)
        failed = [c for c in cases if not c["passed"]]
        points = round(exercise.points * (len(cases) - len(failed)) / len(cases), 2)
        if failed:
            reason = f"{len(failed)} of {len(cases)} hidden tests failed: " + "; ".join(
                f"{c['name']} ({c['message']})" for c in failed)
        else:
            reason = f"all visible tests and {len(cases)} hidden tests passed"
        return ExerciseResult(student, exercise.cell_id, points, exercise.points, reason, details)

    def _hidden_cases(self, exercise):
        """The hidden test results (list of dicts), or the reason for a 0 (str)."""
        case_names = self.hidden_module.case_names(exercise.cell_id) if hasattr(self.hidden_module, "case_names") else []
        if not case_names:
            return []
        oracle = json.dumps(self.oracles.get(exercise.cell_id, {}))
        code = (f"__grader__.hidden({self.hidden_source!r}, 'run_cases', {exercise.cell_id!r}, "
                f"{exercise.function!r}, {oracle!r})")
        timeout = max(2 * self.timeout, 3 * sum(self.cell_seconds.get(i, 0) for i in exercise.block) + 10)
        run = self.kernel.execute(code, timeout=timeout, user_expressions={"result": "__grader__.result"})
        if run.dead:
            self._start_kernel()
        if run.timed_out or run.dead:
            return f"the hidden tests did not finish within {timeout:.0f} s (an infinite loop?)"
        if run.error:
            raise KernelBroken(f"the hidden tests could not run: {_error_text(run.error)}")
        value = run.user_expressions.get("result", {})
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))


# ---------------------------------------------------------------------------------------------
# A folder of submissions
# ---------------------------------------------------------------------------------------------
def find_submissions(folder, reference_name=DEFAULT_REFERENCE.name):
    """``{student: path}`` for every .ipynb under ``folder``: ``alice.ipynb`` is alice, and
    ``alice/Face_Recognition.ipynb`` (a folder per student) is alice too."""
    folder = Path(folder)
    found = {}
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if ".ipynb_checkpoints" in relative.parts:
            continue
        student = relative.parent.as_posix() if path.name == reference_name and relative.parent.parts \
            else relative.with_suffix("").as_posix()
        found[student.replace("/", "__")] = path
    return found


def results_table(results):
    """A pandas DataFrame, one row per (student, exercise)."""
    import pandas as pd

    return pd.DataFrame([{"student": r.student, "exercise": r.exercise, "points": r.points,
                          "max_points": r.max_points, "reason": r.reason} for r in results],
                        columns=["student", "exercise", "points", "max_points", "reason"])


def feedback_text(student, results):
    """The feedback a student receives: points and reasons per exercise, then the details."""
    total = sum(r.points for r in results)
    out = [f"Feedback for {student}: {total:g} / {sum(r.max_points for r in results):g} points", ""]
    for r in results:
        out.append(f"{r.exercise}: {r.points:g} / {r.max_points:g}")
        out.append(f"  {r.reason}")
        out += [f"  - {line}" for line in r.details]
        out.append("")
    return "\n".join(out)


def write_reports(results, out_dir):
    """Write grades.csv and feedback/<student>.txt; returns the DataFrame."""
    out_dir = Path(out_dir)
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    table = results_table(results)
    table.to_csv(out_dir / "grades.csv", index=False)
    by_student = collections.defaultdict(list)
    for r in results:
        by_student[r.student].append(r)
    for student, rows in by_student.items():
        (out_dir / "feedback" / f"{student}.txt").write_text(feedback_text(student, rows))
    return table


def grade_submissions(submissions, reference=DEFAULT_REFERENCE, out_dir=None, **grader_options):
    """Grade ``{student: notebook_path}`` (or a folder); returns ``(table, timings, results)``:
    the pandas table, the timings and the :class:`ExerciseResult` list (with details).

    ``timings`` has ``setup_s`` (reference run once), ``per_submission_s`` ({student: s}) and
    ``total_s``.
    """
    if not isinstance(submissions, dict):
        submissions = find_submissions(submissions, Path(reference).name)
    started = time.monotonic()
    results, per_submission = [], {}
    with Grader(reference, **grader_options) as grader:
        for student, path in submissions.items():
            begun = time.monotonic()
            rows = grader.grade_notebook(path, student)
            per_submission[student] = time.monotonic() - begun
            grader.log(f"{student}: {sum(r.points for r in rows):g} / {sum(r.max_points for r in rows):g} "
                       f"({per_submission[student]:.1f} s)")
            results += rows
        timings = {"setup_s": grader.setup_seconds, "per_submission_s": per_submission,
                   "total_s": time.monotonic() - started, "kernel_restarts": grader.restarts}
    table = write_reports(results, out_dir) if out_dir is not None else results_table(results)
    return table, timings, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the solved, executed notebook")
    parser.add_argument("--hidden-tests", type=Path, default=DEFAULT_HIDDEN_TESTS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for grades.csv and feedback/")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per cell (default 60)")
    parser.add_argument("--nbval-sanitize-with", type=Path, default=DEFAULT_SANITIZE,
                        help=f"nbval sanitize file (regex/replace pairs; default {DEFAULT_SANITIZE.name})")
    parser.add_argument("--no-reuse", action="store_true",
                        help="grade every cell even when identical to one graded before (for timing)")
    args = parser.parse_args(argv)
    submissions = find_submissions(args.submissions, args.reference.name)
    if not submissions:
        print(f"grade: no .ipynb files under {args.submissions}", file=sys.stderr)
        return 1
    try:
        table, timings, _ = grade_submissions(submissions, args.reference, args.out, hidden_tests=args.hidden_tests,
                                              timeout=args.timeout, sanitize_with=args.nbval_sanitize_with,
                                              reuse_identical=not args.no_reuse)
    except GraderError as exc:
        print(f"grade: {exc}", file=sys.stderr)
        return 1
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.pivot(index="student", columns="exercise", values="points").assign(
            total=lambda t: t.sum(axis=1)).to_string())
    times = list(timings["per_submission_s"].values())
    print(f"\n{len(times)} submissions in {timings['total_s']:.1f} s: reference run once in {timings['setup_s']:.1f} s, "
          f"then {sum(times) / len(times):.1f} s per submission (min {min(times):.1f}, max {max(times):.1f})")
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'feedback'}/<student>.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
