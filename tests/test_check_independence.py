"""Each exercise can be checked on its own: a static walk of every solution notebook, no kernel.

For each exercise X (answer cell ``X``, check cell ``test_X``) the test simulates a learner who answered only X,
running the notebook's code cells in order and tracking the names bound at module level:

* the answer cell of X runs statement by statement and stops at the first statement that loads an unbound name
  (what a kernel does: the names bound before the error stay bound);
* the answer cells of the other exercises bind nothing (as released they raise ``NotImplementedError``, and a
  learner may rewrite them freely);
* every other cell (locked cells, plain given cells, the visible part of other exercises' checks) binds its names
  only if all of its statements load bound names (builtins and the cell's own imports count as bound);
* the visible part of X's check (the hidden-tests block stripped) must then load only bound names.

What a check genuinely needs from another part (a model trained with that part's answer, say) is listed in
``CHECK_NEEDS`` with the reason; those parts count as answered too. Separately, every part whose cells (locked
set-up, answer, check) need another part's answer must say so in its own markdown ("... Part A ...").

Approximations (the walk is a static one):

* a ``def`` loads nothing where it stands, except its decorators and defaults; a module-level statement that
  names a function or class defined earlier in the notebook also loads the names that function's body (for a
  class: its methods' bodies) loads from the module, transitively. Body loads that are unbound even when every
  exercise is answered are ignored there: they sit in branches the notebook does not take at that point (lesson
  05's ``train`` names ``coral_loss``, defined later, in its CORAL branch only);
* a dict entry read with a constant key (``test_acc["pcgrad"]``) counts as a name of its own where the notebook
  stores it with that constant key (``test_acc["pcgrad"] = ...``), and is not followed otherwise;
* a method called on an instance (``net(x)`` running ``forward``) is covered only through the class's name;
* both branches of an ``if`` and every ``try`` handler count as run; comprehension variables are local;
* names bound inside a function body through ``global`` are not seen.

``test_every_cell_runs_when_every_exercise_is_answered`` keeps the walk honest: on the full solutions every cell
must run, so nothing the walk reports is an artefact of the approximations above.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

import nbformat
import pytest
from conftest import LESSON_NOTEBOOKS

from autograder.assemble import nbgrader_meta

HIDDEN_TESTS = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.DOTALL)
PART_HEADING = re.compile(r"^#+\s*Part ([A-Z])\b", re.MULTILINE)
ALWAYS_BOUND = frozenset(dir(builtins)) | {"display", "get_ipython", "In", "Out", "__name__"}

# Checks that need another part's answer because they test what that answer produced. Everything else a check
# needs must come from locked cells. {lesson: {answer id: (answer ids it needs, why)}}
CHECK_NEEDS: dict[str, dict[str, tuple[set[str], str]]] = {
    "02_feature_extraction": {
        "head": ({"features"}, "the head is trained on the features Part B's extract_features computes"),
    },
    "03_fine_tuning": {
        "fine_tune": ({"head_first", "unfreeze", "param_groups"},
                      "stage 2 fine-tunes Part A's model with Part B's unfreezing and Part C's optimizer"),
    },
    "04_multi_task": {
        "weighted_loss": ({"multitask_model"}, "the equal-weights model is Part A's network"),
        "uncertainty": ({"multitask_model"}, "the learned weights are trained on Part A's network"),
        "pcgrad": ({"multitask_model"}, "PCGrad trains Part A's network"),
    },
    "05_domain_adaptation": {
        "dann": ({"grl", "lambda_schedule"}, "DANN trains with Part A's gradient reversal and Part B's schedule"),
    },
}


# ---------------------------------------------------------------------------------------------------------------
# What a statement loads and binds


def _keyed(node: ast.AST) -> str | None:
    """``name["key"]`` for a subscript of a name by a string constant, else None."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and isinstance(node.slice, ast.Constant) \
            and isinstance(node.slice.value, str):
        return f'{node.value.id}["{node.slice.value}"]'
    return None


def _target_names(node: ast.AST) -> set[str]:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    return names | {k for n in ast.walk(node) if isinstance(getattr(n, "ctx", None), ast.Store) and (k := _keyed(n))}


def _arg_names(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, *(a for a in (args.vararg, args.kwarg) if a)]
    return {a.arg for a in every}


def _def_time_loads(node) -> list[ast.AST]:
    """The parts of a def, lambda or class evaluated where it stands."""
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    args = node.args
    parts = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    return parts if isinstance(node, ast.Lambda) else [*node.decorator_list, *parts]


def body_loads(node) -> set[str]:
    """Free names of a function's (or a class's methods') body: loaded and not bound inside it."""
    inner = node.body if isinstance(node.body, list) else [node.body]
    loaded, local = set(), _arg_names(node.args) if hasattr(node, "args") else set()
    for stmt in inner:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name):
                (loaded if isinstance(n.ctx, ast.Load) else local).add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                local |= _arg_names(n.args) | ({n.name} if hasattr(n, "name") else set())
            elif isinstance(n, ast.ClassDef):
                local.add(n.name)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                local |= _import_names(n)
            elif isinstance(n, ast.ExceptHandler) and n.name:
                local.add(n.name)
    return loaded - local


def _import_names(node) -> set[str]:
    return {a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"}


def expression_loads(node: ast.AST | None) -> set[str]:
    """Module-level names an expression loads when evaluated (lambda bodies count: they are usually called)."""
    if node is None:
        return set()
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and (key := _keyed(node)):
        return {key, node.value.id}
    if isinstance(node, ast.Lambda):
        return set().union(*map(expression_loads, _def_time_loads(node))) | body_loads(node)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        loads, local = set(), set()
        for gen in node.generators:
            loads |= expression_loads(gen.iter) - local
            local |= _target_names(gen.target)
            loads |= set().union(*(expression_loads(c) for c in gen.ifs)) - local
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        return loads | (set().union(*map(expression_loads, elts)) - local)
    return set().union(*(expression_loads(child) for child in ast.iter_child_nodes(node)))


@dataclass
class Step:
    """One simple statement as the walk runs it: what it loads, what it binds, what it defines, whether it raises."""

    loads: set[str]
    binds: set[str]
    definition: tuple[str, set[str]] | None = None  # (name, body loads) of a def or class
    raises: bool = False


def steps(stmt: ast.stmt) -> list[Step]:
    """A statement as a flat sequence of steps (compound statements are unrolled: both branches run)."""
    out = _steps(stmt)
    if out and not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        heads = [n for f in ("test", "iter", "value", "items") for n in _as_list(getattr(stmt, f, None))]
        out[0].binds |= {n.target.id for h in heads for n in ast.walk(h) if isinstance(n, ast.NamedExpr)}
    return out


def _as_list(node) -> list:
    return node if isinstance(node, list) else [] if node is None else [node]


def _steps(stmt: ast.stmt) -> list[Step]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        loads = set().union(*map(expression_loads, _def_time_loads(stmt)))
        return [Step(loads, {stmt.name}, (stmt.name, body_loads(stmt)))]
    if isinstance(stmt, ast.ClassDef):
        out = [Step(set().union(*map(expression_loads, _def_time_loads(stmt))), set())]
        methods = [s for s in stmt.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for s in stmt.body:  # the class body runs now; its own names stay in the class
            if s not in methods:
                out += [Step(st.loads, set(), raises=st.raises) for st in steps(s)]
        return [*out, Step(set(), {stmt.name}, (stmt.name, set().union(*map(body_loads, methods))))]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [Step(set(), _import_names(stmt))]
    if isinstance(stmt, ast.Raise):
        return [Step(expression_loads(stmt.exc), set(), raises=True)]
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [Step(expression_loads(stmt.iter), _target_names(stmt.target)),
                *(s for b in stmt.body + stmt.orelse for s in steps(b))]
    if isinstance(stmt, (ast.While, ast.If)):
        return [Step(expression_loads(stmt.test), set()), *(s for b in stmt.body + stmt.orelse for s in steps(b))]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        heads = [Step(expression_loads(i.context_expr), _target_names(i.optional_vars) if i.optional_vars else set())
                 for i in stmt.items]
        return [*heads, *(s for b in stmt.body for s in steps(b))]
    if isinstance(stmt, ast.Try):
        handlers = [Step(expression_loads(h.type), {h.name} if h.name else set()) for h in stmt.handlers]
        return [*(s for b in stmt.body for s in steps(b)),
                *(s for h, head in zip(stmt.handlers, handlers)
                  for s in [head, *(x for b in h.body for x in steps(b))]),
                *(s for b in stmt.orelse + stmt.finalbody for s in steps(b))]
    if isinstance(stmt, ast.AugAssign):
        return [Step(expression_loads(stmt.value) | expression_loads(stmt.target) | _target_names(stmt.target),
                     _target_names(stmt.target))]
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        loads = expression_loads(stmt.value) | set().union(*(expression_loads(t) for t in targets))
        return [Step(loads, set().union(*map(_target_names, targets)))]
    if isinstance(stmt, ast.Delete):
        return [Step(set().union(*(expression_loads(t) for t in stmt.targets)), set())]
    if isinstance(stmt, (ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue)):
        return []
    return [Step(expression_loads(stmt), set())]  # Expr, Return, Assert, Match...


def python_of(source: str) -> str:
    """A cell's source as Python: IPython magics and shell lines become ``pass``."""
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines())


# ---------------------------------------------------------------------------------------------------------------
# The notebook walk


@dataclass
class Cell:
    index: int
    kind: str  # "answer", "check", "markdown" or "given" (locked or plain code)
    grade_id: str | None
    steps: list[Step]
    source: str


@dataclass
class Exercise:
    answer_id: str
    letter: str
    first: int  # index of the first cell of the part (its heading), through the check cell
    check: int


@dataclass
class Notebook:
    cells: list[Cell]
    exercises: dict[str, Exercise] = field(default_factory=dict)


def read(path) -> Notebook:
    cells = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if cell.cell_type != "code":
            cells.append(Cell(i, "markdown", gid, [], cell.source))
            continue
        if meta.get("solution") and not meta.get("grade"):
            kind, source = "answer", cell.source
        elif meta.get("grade") and str(gid).startswith("test_"):
            kind, source = "check", HIDDEN_TESTS.sub("", cell.source)
        else:
            kind, source = "given", cell.source
        tree = ast.parse(python_of(source))
        cells.append(Cell(i, kind, gid, [s for stmt in tree.body for s in steps(stmt)], source))
    nb = Notebook(cells)
    answers = {c.grade_id: c.index for c in cells if c.kind == "answer"}
    for check in (c for c in cells if c.kind == "check"):
        answer_id = check.grade_id.removeprefix("test_")
        assert answer_id in answers, f"{path}: check {check.grade_id} has no answer cell {answer_id}"
        headings = [(c.index, m[1]) for c in cells[:answers[answer_id]] if c.kind == "markdown"
                    for m in [PART_HEADING.search(c.source)] if m]
        assert headings, f"{path}: no '## Part X' heading before the answer cell {answer_id}"
        first, letter = headings[-1]
        nb.exercises[answer_id] = Exercise(answer_id, letter, first, check.index)
    return nb


@dataclass
class Failure:
    cell: int
    kind: str
    missing: set[str]


def walk(nb: Notebook, answered: set[str], baseline: dict | None = None) -> tuple[list[Failure], dict]:
    """Run the notebook's cells as a learner who answered `answered`: the cells that fail (with the names they
    miss), and the names bound before each step. Without a `baseline` (the names bound before each step when
    every exercise is answered), function bodies are not followed."""
    bound, bodies, before, failures = set(ALWAYS_BOUND), {}, {}, []
    for cell in nb.cells:
        if cell.kind == "markdown" or (cell.kind == "answer" and cell.grade_id not in answered):
            continue
        names, defs, missing, raised = set(bound), dict(bodies), set(), False
        for k, step in enumerate(cell.steps):
            before[cell.index, k] = set(names)
            plain = {n for n in step.loads if "[" not in n}
            missing = plain - names
            if baseline is not None:  # entries and names a function's body needs, where every answer binds them
                needed = {n for n in step.loads if "[" in n} | _reached(plain, defs)
                missing |= (needed & baseline.get((cell.index, k), set())) - names
            if missing or step.raises:
                raised = step.raises
                break
            names |= step.binds
            if step.definition:
                defs[step.definition[0]] = step.definition[1]
        ok = not missing and not raised
        if ok or cell.kind == "answer":  # an answer keeps what ran before its error; other cells all or nothing
            bound, bodies = names, defs
        if not ok:
            failures.append(Failure(cell.index, cell.kind, missing))
    return failures, before


def _reached(loads: set[str], defs: dict[str, set[str]]) -> set[str]:
    """What the bodies of the functions (and classes) named in `loads` load, following the functions they name."""
    seen, todo, found = set(), [n for n in loads if n in defs], set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            found |= defs[name]
            todo += [n for n in defs[name] if n in defs]
    return found


def prerequisites(lesson: str, answer_id: str) -> set[str]:
    return CHECK_NEEDS.get(lesson, {}).get(answer_id, (set(), ""))[0]
def part_markdown(nb: Notebook, ex: Exercise) -> str:
    return "\n".join(c.source for c in nb.cells[ex.first:ex.check + 1] if c.kind == "markdown")


def check_failures(nb: Notebook, lesson: str, answered_extra: set[str] | None = None) -> dict[str, set[str]]:
    """{answer id: names its visible check misses} for a learner who answered only that exercise (and what
    CHECK_NEEDS lists for it, unless `answered_extra` is given)."""
    _, baseline = walk(nb, set(nb.exercises))
    found = {}
    for answer_id, ex in nb.exercises.items():
        extra = prerequisites(lesson, answer_id) if answered_extra is None else answered_extra
        failures, _ = walk(nb, {answer_id, *extra}, baseline)
        missing = [f for f in failures if f.cell == ex.check]
        if missing:
            found[answer_id] = missing[0].missing or {"(an error raised)"}
    return found


def part_needs(nb: Notebook) -> dict[str, set[str]]:
    """{answer id: the other exercises whose answers some cell of its part (set-up, answer, check) needs}."""
    every = set(nb.exercises)
    _, baseline = walk(nb, every)
    needs = {answer_id: set() for answer_id in every}
    for other in every:
        failures, _ = walk(nb, every - {other}, baseline)
        for answer_id, ex in nb.exercises.items():
            if answer_id != other and any(ex.first <= f.cell <= ex.check for f in failures):
                needs[answer_id].add(other)
    return needs


NOTEBOOKS = {ln: read(ln.solution) for ln in LESSON_NOTEBOOKS}
IDS = [ln.stem for ln in LESSON_NOTEBOOKS]


@pytest.mark.parametrize("ln", LESSON_NOTEBOOKS, ids=IDS)
def test_every_cell_runs_when_every_exercise_is_answered(ln):
    nb = NOTEBOOKS[ln]
    assert nb.exercises, f"{ln.stem}: no exercise found"
    failures, baseline = walk(nb, set(nb.exercises))
    assert not failures, [(f.cell, f.kind, sorted(f.missing)) for f in failures]
    failures, _ = walk(nb, set(nb.exercises), baseline)
    assert not failures, [(f.cell, f.kind, sorted(f.missing)) for f in failures]


@pytest.mark.parametrize("ln", LESSON_NOTEBOOKS, ids=IDS)
def test_each_check_runs_with_only_its_own_answer(ln):
    nb = NOTEBOOKS[ln]
    found = check_failures(nb, ln.lesson)
    assert not found, "\n".join(
        f"{ln.stem} Part {nb.exercises[a].letter} ({a}): its visible check needs {sorted(names)}, which only "
        "another part's answer defines; define them in a locked cell of the part" for a, names in found.items())


@pytest.mark.parametrize("lesson", sorted(CHECK_NEEDS))
def test_what_a_check_needs_from_other_parts_is_needed(lesson):
    """Each need in CHECK_NEEDS shows in the walk of at least one twin (the walk does not see every need: in
    PyTorch, lesson 04's `test_acc["equal"]` is stored under a key it cannot read, `test_acc[method]`)."""
    twins = [nb for ln, nb in NOTEBOOKS.items() if ln.lesson == lesson]
    assert len(twins) == 2
    for answer_id, (needs, why) in CHECK_NEEDS[lesson].items():
        for nb in twins:
            assert why and answer_id in nb.exercises and needs <= set(nb.exercises), (answer_id, needs)
        for other in needs:
            seen = []
            for nb in twins:
                _, baseline = walk(nb, set(nb.exercises))
                failures, _ = walk(nb, {answer_id, *needs} - {other}, baseline)
                seen.append(any(f.cell == nb.exercises[answer_id].check for f in failures))
            assert any(seen), f"{lesson}: the check of {answer_id} runs without {other}: drop it from CHECK_NEEDS"


@pytest.mark.parametrize("ln", LESSON_NOTEBOOKS, ids=IDS)
def test_parts_say_which_parts_they_build_on(ln):
    nb = NOTEBOOKS[ln]
    unsaid = []
    for answer_id, others in part_needs(nb).items():
        text = part_markdown(nb, nb.exercises[answer_id])
        unsaid += [f"Part {nb.exercises[answer_id].letter} ({answer_id}) needs Part {nb.exercises[o].letter} "
                   f"({o}) but its text does not say so" for o in sorted(others)
                   if not re.search(rf"\bPart {nb.exercises[o].letter}\b", text)]
    assert not unsaid, f"{ln.stem}:\n" + "\n".join(unsaid)


if __name__ == "__main__":  # a report of every notebook
    for ln, nb in NOTEBOOKS.items():
        print(ln.stem, {a: e.letter for a, e in nb.exercises.items()})
        print("   full walk:", [(f.cell, f.kind, sorted(f.missing)) for f in walk(nb, set(nb.exercises))[0]])
        print("   checks alone:", check_failures(nb, ln.lesson, set()))
        print("   with CHECK_NEEDS:", check_failures(nb, ln.lesson))
        print("   part needs:", {a: o for a, o in part_needs(nb).items() if o})
