"""Model pictures: Keras' ``plot_model`` and ``model_to_dot``.

Works on any model object by duck typing (it imports no models): the layers come from
``model.layers``, the edges from each layer's recorded calls (``layer._inbound_nodes``,
whose input tensors name their producing layer in ``_keras_history``), and a model without
a graph (a subclassed one) is drawn as the chain of its layers.

Drawing: ``model_to_dot`` always returns the graph in Graphviz's DOT language (a
``pydot.Dot`` when ``pydot`` is installed, as in Keras; else a ``DotGraph`` with the same
``to_string`` / ``write`` / ``create``). ``plot_model`` renders it with Graphviz's ``dot``
program when present (``apt-get install graphviz``; any format ``dot`` knows: png, svg,
pdf), and otherwise with matplotlib (``pip install dendrite[plot]``; png, svg, pdf), a
layered drawing of the same boxes and arrows, so it works on a fresh machine. A ``.dot``
file name writes the DOT text itself. When neither renderer is there the error says what
to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


def _tensor_shapes(tensors: Any) -> Any:
    items = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    shapes = [tuple(t.shape) for t in items if hasattr(t, "shape")]
    return shapes[0] if len(shapes) == 1 else (shapes or None)


def _layer_info(layer: Any, node: Any = None) -> dict:
    activation = getattr(layer, "activation", None)
    activation_name = getattr(activation, "__name__", None) if activation is not None else None
    info = {
        "id": layer.name,
        "name": layer.name,
        "class_name": type(layer).__name__,
        "dtype": str(getattr(layer, "dtype", None) or getattr(layer, "compute_dtype", "?")),
        "trainable": bool(getattr(layer, "trainable", True)),
        "activation": activation_name,
        "input_shape": None,
        "output_shape": None,
        "layer": layer,
    }
    if node is not None:
        info["input_shape"] = _tensor_shapes(node.input_tensors) if node.input_tensors else None
        info["output_shape"] = _tensor_shapes(node.output_tensors)
        if not node.input_tensors:
            info["input_shape"] = info["output_shape"]
    else:
        for key, attr in (("input_shape", "input"), ("output_shape", "output")):
            try:
                info[key] = _tensor_shapes(getattr(layer, attr))
            except Exception:  # a layer never called symbolically has no shapes
                info[key] = None
    return info


def layer_graph(model: Any, expand_nested: bool = False) -> tuple[list[dict], list[tuple]]:
    """``(nodes, edges)``: one dict per layer (``id``, ``name``, ``class_name``, shapes,
    ``dtype``, ``activation``, ``trainable``) in the model's order, and ``(source id,
    target id)`` pairs. Nested models are one node, or with ``expand_nested`` their layers
    (prefixed ``outer/``), entered from the nested model's inputs."""
    layers = list(getattr(model, "layers", []))
    inputs = list(getattr(model, "inputs", None) or [])
    input_layers = [
        t._keras_history[0]
        for t in inputs
        if getattr(t, "_keras_history", None) and t._keras_history[0] not in layers
    ]
    layers = input_layers + layers
    members = {id(layer) for layer in layers}
    nodes: list[dict] = []
    edges: list[tuple] = []
    has_graph = False
    for layer in layers:
        calls = [
            node
            for node in layer.__dict__.get("_inbound_nodes", [])
            if all(
                id(getattr(t, "_keras_history", (None,))[0]) in members for t in node.input_tensors
            )
        ]
        nodes.append(_layer_info(layer, calls[0] if calls else None))
        for node in calls:
            for tensor in node.input_tensors:
                source = tensor._keras_history[0]
                edges.append((source.name, layer.name))
                has_graph = True
    if not has_graph:  # a subclassed model, or one without recorded calls: a chain
        edges = [(a["id"], b["id"]) for a, b in zip(nodes, nodes[1:])]
    edges = list(dict.fromkeys(edges))
    if expand_nested:
        nodes, edges = _expand(nodes, edges)
    return nodes, edges


def _expand(nodes: list[dict], edges: list[tuple]) -> tuple[list[dict], list[tuple]]:
    out_nodes: list[dict] = []
    rename_in: dict[str, str] = {}
    rename_out: dict[str, str] = {}
    inner_edges: list[tuple] = []
    for node in nodes:
        layer = node["layer"]
        if getattr(layer, "layers", None):
            inner_nodes, inner = layer_graph(layer, expand_nested=True)
            if not inner_nodes:
                out_nodes.append(node)
                continue
            prefix = node["id"] + "/"
            for item in inner_nodes:
                out_nodes.append({**item, "id": prefix + item["id"]})
            inner_edges += [(prefix + a, prefix + b) for a, b in inner]
            targets = {b for _, b in inner}
            sources = {a for a, _ in inner}
            firsts = [n["id"] for n in inner_nodes if n["id"] not in targets]
            lasts = [n["id"] for n in inner_nodes if n["id"] not in sources]
            rename_in[node["id"]] = prefix + firsts[0]
            rename_out[node["id"]] = prefix + lasts[-1]
        else:
            out_nodes.append(node)
    edges = [(rename_out.get(a, a), rename_in.get(b, b)) for a, b in edges]
    return out_nodes, edges + inner_edges


def _label(
    node: dict,
    show_shapes: bool,
    show_dtype: bool,
    show_layer_names: bool,
    show_layer_activations: bool,
    show_trainable: bool,
) -> list[str]:
    head = f"{node['name']} ({node['class_name']})" if show_layer_names else node["class_name"]
    lines = [head]
    if show_layer_activations and node["activation"] and node["activation"] != "linear":
        lines.append(f"activation: {node['activation']}")
    if show_dtype:
        lines.append(f"dtype: {node['dtype']}")
    if show_shapes:
        lines.append(f"input: {_shape_text(node['input_shape'])}")
        lines.append(f"output: {_shape_text(node['output_shape'])}")
    if show_trainable:
        lines.append("trainable" if node["trainable"] else "frozen")
    return lines


class DotGraph:
    """A graph in the DOT language (what ``model_to_dot`` returns without pydot)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def to_string(self) -> str:
        return self.text

    def create(self, prog: str = "dot", format: str = "png") -> bytes:
        """The picture, rendered by Graphviz's ``prog`` (``dot``)."""
        binary = shutil.which(prog)
        if binary is None:
            raise ImportError(
                f"Rendering DOT needs Graphviz's '{prog}' program: apt-get install graphviz "
                "(or brew install graphviz)."
            )
        done = subprocess.run(
            [binary, f"-T{format}"], input=self.text.encode(), capture_output=True, check=True
        )
        return done.stdout

    def write(self, path: Any, prog: str = "dot", format: str = "raw") -> None:
        data = self.text.encode() if format in ("raw", "dot") else self.create(prog, format)
        Path(path).write_bytes(data)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def model_to_dot(
    model: Any,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    subgraph: bool = False,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    **kwargs: Any,
) -> Any:
    """The model's layer graph in DOT (Keras' arguments): a ``pydot.Dot`` when pydot is
    installed, else a ``DotGraph``. One box per layer, its label the layer's name and
    class, then the options' lines; an arrow per connection."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be 'TB' or 'LR', got {rankdir!r}.")
    nodes, edges = layer_graph(model, expand_nested=expand_nested)
    lines = [
        "digraph G {",
        f"  rankdir={rankdir};",
        "  concentrate=true;",
        f"  dpi={int(dpi)};",
        '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];',
    ]
    for node in nodes:
        label = _label(
            node, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable
        )
        text = "\n".join(label)
        lines.append(f"  {_quote(node['id'])} [label={_quote(text)}];")
    for a, b in edges:
        lines.append(f"  {_quote(a)} -> {_quote(b)};")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    try:
        import pydot
    except ImportError:
        return DotGraph(text)
    return pydot.graph_from_dot_data(text)[0]


def plot_model(
    model: Any,
    to_file: Any = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    **kwargs: Any,
) -> Any:
    """Draw the model's layer graph to ``to_file`` (Keras' arguments); the format comes
    from the file's extension (png by default). Graphviz's ``dot`` draws when installed,
    else matplotlib. Returns the path written (an IPython Image in a notebook is left to
    the caller)."""
    options = {
        "show_shapes": show_shapes,
        "show_dtype": show_dtype,
        "show_layer_names": show_layer_names,
        "rankdir": rankdir,
        "expand_nested": expand_nested,
        "dpi": dpi,
        "show_layer_activations": show_layer_activations,
        "show_trainable": show_trainable,
    }
    path = Path(os.fspath(to_file))
    extension = path.suffix[1:].lower() or "png"
    if path.suffix == "":
        path = path.with_suffix(".png")
    dot = model_to_dot(model, **options)
    text = dot.to_string()
    if extension == "dot":
        path.write_text(text, encoding="utf-8")
        return path
    renderer = kwargs.get("renderer") or ("graphviz" if shutil.which("dot") else "matplotlib")
    if renderer == "graphviz":
        DotGraph(text).write(path, format=extension)
        return path
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "plot_model needs Graphviz (apt-get install graphviz) or matplotlib "
            "(pip install 'dendrite[plot]') to draw; neither is installed. A to_file "
            "ending in .dot writes the graph's DOT text without either."
        ) from error
    _draw_matplotlib(model, path, extension, options)
    return path


def _levels(nodes: list[dict], edges: list[tuple]) -> dict[str, int]:
    """Each node's depth: the longest path from a source (nodes are in call order)."""
    depth = {node["id"]: 0 for node in nodes}
    incoming: dict[str, list[str]] = {node["id"]: [] for node in nodes}
    for a, b in edges:
        if a in incoming and b in incoming:
            incoming[b].append(a)
    for _ in range(len(nodes)):
        changed = False
        for node in nodes:
            best = max((depth[a] + 1 for a in incoming[node["id"]]), default=0)
            if best != depth[node["id"]]:
                depth[node["id"]] = best
                changed = True
        if not changed:
            break
    return depth


def _draw_matplotlib(model: Any, path: Path, extension: str, options: dict) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    nodes, edges = layer_graph(model, expand_nested=options["expand_nested"])
    depth = _levels(nodes, edges)
    rows: dict[int, list[str]] = {}
    for node in nodes:
        rows.setdefault(depth[node["id"]], []).append(node["id"])
    labels = {
        node["id"]: _label(
            node,
            options["show_shapes"],
            options["show_dtype"],
            options["show_layer_names"],
            options["show_layer_activations"],
            options["show_trainable"],
        )
        for node in nodes
    }
    box_w = max(len(line) for lines in labels.values() for line in lines) * 0.11 + 0.4
    box_h = max(len(lines) for lines in labels.values()) * 0.22 + 0.2
    gap_main, gap_cross = box_h + 0.5, box_w + 0.4
    if options["rankdir"] == "LR":
        gap_main = box_w + 0.6
    where = {}
    for level, ids in rows.items():
        for k, name in enumerate(ids):
            cross = (k - (len(ids) - 1) / 2) * (
                gap_cross if options["rankdir"] == "TB" else box_h + 0.4
            )
            main = level * gap_main
            where[name] = (cross, -main) if options["rankdir"] == "TB" else (main, -cross)
    xs = [p[0] for p in where.values()]
    ys = [p[1] for p in where.values()]
    width = max(xs) - min(xs) + box_w + 0.4
    height = max(ys) - min(ys) + box_h + 0.4
    figure, axis = plt.subplots(figsize=(max(width, 2.0), max(height, 1.0)))
    axis.set_xlim(min(xs) - box_w / 2 - 0.2, max(xs) + box_w / 2 + 0.2)
    axis.set_ylim(min(ys) - box_h / 2 - 0.2, max(ys) + box_h / 2 + 0.2)
    axis.axis("off")
    for a, b in edges:
        if a not in where or b not in where:
            continue
        (x0, y0), (x1, y1) = where[a], where[b]
        if options["rankdir"] == "TB":
            start, end = (x0, y0 - box_h / 2), (x1, y1 + box_h / 2)
        else:
            start, end = (x0 + box_w / 2, y0), (x1 - box_w / 2, y1)
        axis.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "lw": 1})
    for name, (x, y) in where.items():
        axis.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.02",
                facecolor="#eef3fb",
                edgecolor="#35507a",
            )
        )
        axis.text(
            x, y, "\n".join(labels[name]), ha="center", va="center", fontsize=8, family="monospace"
        )
    figure.savefig(path, format=extension, dpi=options["dpi"], bbox_inches="tight")
    plt.close(figure)
