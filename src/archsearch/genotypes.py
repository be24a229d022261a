"""Cell genotypes in the DARTS form, and the published ones.

A genotype (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019) lists, for each cell type, two
``(op, input)`` pairs per intermediate node (inputs 0 and 1 are the cell's two inputs, 2.. the earlier nodes) and the
nodes whose outputs are concatenated. Here a genotype is converted to and from an :class:`Architecture` of the
``cell`` space (:mod:`archsearch.spaces.cell`), whose decisions are ``{type}_n{i}_in{s}`` and ``{type}_n{i}_op{s}``.

The published cells are data transcribed from the DARTS reference genotypes (NASNet-A, AmoebaNet-A, DARTS V1/V2)
and from DARTS-style genotype lists for ENAS (the cell drawn in Pham et al., ICML 2018, Fig. 7).
"""
from __future__ import annotations

import ast
from collections import namedtuple
from typing import Any, Sequence

from .ops import CELL_OPS, DARTS_PRIMITIVES
from .space import Architecture, ArchitectureError, SearchSpace

__all__ = [
    "Genotype", "CELL_TYPES", "DEFAULT_CELL_OPS", "PUBLISHED", "DARTS_V1", "DARTS_V2", "NASNet", "AmoebaNet", "ENAS",
    "input_label", "op_label", "loose_ends", "concat_for", "infer_concat_mode", "format_genotype", "parse_genotype",
    "arch_to_genotype", "genotype_to_choices", "genotype_to_arch", "DARTS_EVALUATION",
    "PAPER_EVALUATION", "evaluation_config", "ENAS_RELEASED_ARC", "ENAS_ARC_OPS", "enas_arc_to_genotype",
]

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
Edge = tuple[str, int]

CELL_TYPES = ("normal", "reduce")
CONCAT_MODES = ("all", "loose")
#: The DARTS primitives without 'none' (which a derived DARTS cell never keeps).
DEFAULT_CELL_OPS: tuple[str, ...] = tuple(op for op in DARTS_PRIMITIVES if op != "none")


# --------------------------------------------------------------------------------------------------------------
# Published cells (data)
# --------------------------------------------------------------------------------------------------------------
NASNet = Genotype(  # Zoph et al., CVPR 2018: NASNet-A
    normal=[("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
            ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
            ("sep_conv_3x3", 1), ("skip_connect", 1)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
            ("avg_pool_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2),
            ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
    reduce_concat=[4, 5, 6],
)

AmoebaNet = Genotype(  # Real et al., AAAI 2019: AmoebaNet-A
    normal=[("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
            ("skip_connect", 0), ("avg_pool_3x3", 1)],
    normal_concat=[4, 5, 6],
    reduce=[("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
            ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
            ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)],
    reduce_concat=[3, 4, 6],
)

DARTS_V1 = Genotype(  # Liu et al., ICLR 2019: first-order DARTS
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5],
)

DARTS_V2 = Genotype(  # Liu et al., ICLR 2019: second-order DARTS (the paper's CIFAR-10 cell)
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)

ENAS = Genotype(  # Pham et al., ICML 2018: the micro cell of the paper's figure, in DARTS form
    normal=[("sep_conv_3x3", 1), ("skip_connect", 1), ("sep_conv_5x5", 1), ("skip_connect", 0),
            ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
            ("sep_conv_5x5", 1), ("avg_pool_3x3", 0)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 0), ("avg_pool_3x3", 1), ("sep_conv_3x3", 1), ("avg_pool_3x3", 1),
            ("sep_conv_3x3", 1), ("avg_pool_3x3", 1), ("sep_conv_5x5", 4), ("avg_pool_3x3", 1),
            ("sep_conv_3x3", 5), ("sep_conv_5x5", 0)],
    reduce_concat=[2, 3, 6],
)

PUBLISHED: dict[str, Genotype] = {
    "darts_v1": DARTS_V1,
    "darts_v2": DARTS_V2,
    "nasnet_a": NASNet,
    "amoebanet_a": AmoebaNet,
    "enas": ENAS,
}

#: The DARTS CIFAR-10 evaluation network (Liu et al. 2019): 20 cells, 36 initial channels.
DARTS_EVALUATION = {"network": "darts", "channels": 36, "layers": 20}
#: Cells the papers evaluated in their own CIFAR-10 networks (:mod:`archsearch.spaces.cell_networks`), with
#: those networks' settings. NASNet-A "6 @ 768" (Zoph et al. 2018; TF-slim ``cifar_config``: 18 normal cells
#: + 2 reduction cells, F=32); its code concatenates h_{i-1} and the five new states in a normal cell and
#: states 3-6 in a reduction cell (``used_hiddenstates``), not only the loose ends. ENAS (Pham et al. 2018;
#: ``cifar10_micro_final.sh``: 15 + 2 layers, 36 filters).
PAPER_EVALUATION: dict[str, dict[str, Any]] = {
    "nasnet_a": {"network": "nasnet", "channels": 32, "layers": 20, "normal_concat": [0, 2, 3, 4, 5, 6],
                 "reduce_concat": [3, 4, 5, 6]},
    "enas": {"network": "enas", "channels": 36, "layers": 17},
}


#: The arc ENAS's code trains in ``scripts/cifar10_micro_final.sh`` (melodyguan/enas), in its ``fixed_arc`` form.
#: It is not the cell drawn in the paper (:data:`ENAS`); read it with :func:`enas_arc_to_genotype`.
ENAS_RELEASED_ARC = ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1 "
                     "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")
#: ENAS's micro op ids (``MicroChild._fixed_layer``): 0, 1 separable 3x3 / 5x5, 2 average, 3 max pool, 4 identity.
ENAS_ARC_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "skip_connect")


def enas_arc_to_genotype(arc: str | Sequence[int], nodes: int = 5) -> Genotype:
    """The genotype of an ENAS micro ``fixed_arc`` (Pham et al., ICML 2018; normal cell then reduction cell, four
    numbers per node: input, op, input, op). Each cell concatenates its loose ends, as the ENAS network does."""
    ids = [int(t) for t in arc.split()] if isinstance(arc, str) else [int(t) for t in arc]
    if len(ids) != 8 * nodes:
        raise ArchitectureError(f"an ENAS arc of {nodes} nodes has {8 * nodes} numbers, got {len(ids)}")
    if any(not 0 <= op < len(ENAS_ARC_OPS) for op in ids[1::2]):
        raise ArchitectureError(f"ENAS op ids are 0-{len(ENAS_ARC_OPS) - 1}: {ids}")
    cells = [[(ENAS_ARC_OPS[ids[k + 1]], ids[k]) for k in range(start, start + 4 * nodes, 2)]
             for start in (0, 4 * nodes)]
    return _normalise(Genotype(cells[0], loose_ends(cells[0]), cells[1], loose_ends(cells[1])))


def evaluation_config(name: str, network: str | None = None) -> dict[str, Any]:
    """The network settings a published cell is evaluated in: its paper's own network (where it had one, see
    :data:`PAPER_EVALUATION`), or DARTS's with ``network="darts"`` (and for every other cell)."""
    paper = PAPER_EVALUATION.get(name)
    if paper is not None and network in (None, paper["network"]):
        return dict(paper)
    return dict(DARTS_EVALUATION, network=network or "darts")


# --------------------------------------------------------------------------------------------------------------
# Labels and concatenation rules
# --------------------------------------------------------------------------------------------------------------
def input_label(cell_type: str, node: int, slot: int) -> str:
    """Decision label for which state feeds input ``slot`` (0/1) of intermediate ``node`` (0-based)."""
    return f"{cell_type}_n{node}_in{slot}"


def op_label(cell_type: str, node: int, slot: int) -> str:
    """Decision label for the op on input ``slot`` of intermediate ``node``."""
    return f"{cell_type}_n{node}_op{slot}"


def loose_ends(edges: Sequence[Edge]) -> list[int]:
    """The intermediate nodes no other node of the cell reads (NASNet/AmoebaNet concatenate exactly these)."""
    used = {int(j) for _, j in edges}
    return [k for k in range(2, len(edges) // 2 + 2) if k not in used]


def concat_for(edges: Sequence[Edge], mode: str) -> list[int]:
    """The nodes a cell concatenates: every intermediate node ('all', DARTS) or the loose ends ('loose', NASNet)."""
    if mode == "all":
        return list(range(2, len(edges) // 2 + 2))
    if mode == "loose":
        return loose_ends(edges)
    raise ValueError(f"unknown concat mode {mode!r}; choose from: {', '.join(CONCAT_MODES)}")


def infer_concat_mode(genotype: Genotype) -> str:
    """'all' if both cells concatenate every node, else 'loose' if both concatenate their loose ends, else raise."""
    g = _normalise(genotype)
    for mode in CONCAT_MODES:
        if g.normal_concat == concat_for(g.normal, mode) and g.reduce_concat == concat_for(g.reduce, mode):
            return mode
    raise ArchitectureError(
        f"genotype concatenates normal={g.normal_concat}, reduce={g.reduce_concat}: neither every intermediate "
        "node nor the nodes no other node uses, so the cell space cannot express it")


# --------------------------------------------------------------------------------------------------------------
# Text form
# --------------------------------------------------------------------------------------------------------------
def format_genotype(genotype: Genotype) -> str:
    """The DARTS genotype string: ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], ...)``."""
    g = _normalise(genotype)

    def edges(es: list[Edge]) -> str:
        return "[" + ", ".join(f"({op!r}, {j})" for op, j in es) + "]"

    return (f"Genotype(normal={edges(g.normal)}, normal_concat={g.normal_concat}, "
            f"reduce={edges(g.reduce)}, reduce_concat={g.reduce_concat})")


def parse_genotype(text: str) -> Genotype:
    """Read a DARTS genotype string (keyword or positional fields; concat as a list or ``range(a, b)``).

    Only literals are read (no ``eval``)."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ArchitectureError(f"not a genotype string: {_short(text)}") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise ArchitectureError(f"a genotype string starts with 'Genotype(': {_short(text)}")
    if len(call.args) > 4:
        raise ArchitectureError(f"a genotype has 4 fields, got {len(call.args)} positional ones: {_short(text)}")
    fields: dict[str, ast.AST] = dict(zip(Genotype._fields, call.args))
    for kw in call.keywords:
        if kw.arg not in Genotype._fields or kw.arg in fields:
            raise ArchitectureError(f"unexpected or repeated genotype field {kw.arg!r} in {_short(text)}")
        fields[kw.arg] = kw.value
    missing = [f for f in Genotype._fields if f not in fields]
    if missing:
        raise ArchitectureError(f"genotype has no {missing[0]!r}: {_short(text)}")
    return _normalise(Genotype(**{name: _literal(node, text) for name, node in fields.items()}))


def _literal(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" \
            and not node.keywords and 1 <= len(node.args) <= 3:
        args = [_literal(a, text) for a in node.args]
        if all(isinstance(a, int) for a in args):
            return list(range(*args))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise ArchitectureError(f"genotype fields must be literals: {_short(text)}") from None


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def _normalise(genotype: Any) -> Genotype:
    """A genotype with lists of ``(str, int)`` edges and sorted int concat lists, checked for shape."""
    try:
        normal, normal_concat, reduce, reduce_concat = genotype
        out = Genotype([(str(op), int(j)) for op, j in normal], sorted(int(k) for k in normal_concat),
                       [(str(op), int(j)) for op, j in reduce], sorted(int(k) for k in reduce_concat))
    except (TypeError, ValueError):
        raise ArchitectureError(f"not a genotype (normal, normal_concat, reduce, reduce_concat): {genotype!r}") \
            from None
    if not out.normal or len(out.normal) % 2 or len(out.normal) != len(out.reduce):
        raise ArchitectureError("a genotype needs two edges per node and as many nodes in both cells "
                                f"(got {len(out.normal)} normal and {len(out.reduce)} reduce edges)")
    for cell_type, edges in (("normal", out.normal), ("reduce", out.reduce)):
        for e, (op, j) in enumerate(edges):
            if not 0 <= j < e // 2 + 2:
                raise ArchitectureError(f"{cell_type} node {e // 2 + 2} reads state {j}, which does not exist yet")
    return out


# --------------------------------------------------------------------------------------------------------------
# Architecture <-> genotype
# --------------------------------------------------------------------------------------------------------------
def _nodes_of(arch: Architecture) -> int:
    return sum(1 for label in arch if label.startswith("normal_n") and label.endswith("_op0"))


def arch_to_genotype(space: SearchSpace, arch: Architecture) -> Genotype:
    """The DARTS genotype of a ``cell``-space architecture (concat from the space's 'all'/'loose' mode)."""
    arch = space.validate(arch)
    nodes, mode = _nodes_of(arch), space.config.get("concat", "all")
    cells = {t: [(str(arch[op_label(t, i, s)]), int(arch[input_label(t, i, s)][0]))
                 for i in range(nodes) for s in (0, 1)] for t in CELL_TYPES}
    concat = {t: sorted(int(k) for k in space.config[f"{t}_concat"]) if space.config.get(f"{t}_concat")
              else concat_for(cells[t], mode) for t in CELL_TYPES}  # explicit lists (the NASNet network's)
    return Genotype(cells["normal"], concat["normal"], cells["reduce"], concat["reduce"])


def genotype_to_choices(genotype: Genotype) -> Architecture:
    """The ``cell``-space decisions of a genotype (the concat lists are not checked here)."""
    g = _normalise(genotype)
    choices: dict[str, Any] = {}
    for cell_type, edges in (("normal", g.normal), ("reduce", g.reduce)):
        for e, (op, j) in enumerate(edges):
            choices[input_label(cell_type, e // 2, e % 2)] = (j,)
            choices[op_label(cell_type, e // 2, e % 2)] = op
    return Architecture(choices)


def genotype_to_arch(genotype: Genotype) -> tuple[dict[str, Any], Architecture]:
    """``(space_config, arch)`` for the ``cell`` space: nodes, ops (the defaults plus any other op used) and the
    concat mode inferred from the genotype."""
    g = _normalise(genotype)
    used = {op for op, _ in g.normal + g.reduce}
    unknown = sorted(used - set(CELL_OPS))
    if unknown:
        raise ArchitectureError(f"unknown cell op {unknown[0]!r}; choose from: {', '.join(CELL_OPS)}")
    ops = list(DEFAULT_CELL_OPS) + [op for op in CELL_OPS if op in used and op not in DEFAULT_CELL_OPS]
    config = {"nodes": len(g.normal) // 2, "ops": ops, "concat": infer_concat_mode(g)}
    return config, genotype_to_choices(g)
