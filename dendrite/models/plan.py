"""``ExecutionPlan``: the one way a model runs its layers, for ``Sequential`` and
functional models alike.

A plan is made once from a model's symbolic inputs and outputs (``KerasTensor``s from
``Input``): it walks the recorded layer calls (``Node``s) back from the outputs, orders them
so every call comes after the calls it consumes (an explicit stack, no recursion), and
``run`` replays them on real Tensors. Several inputs and outputs, shared layers (one layer,
several nodes, one set of weights), residual branches and nested models all follow.

Fusion is one pass over the plan when it is made: where a plain call ``a(x)`` feeds only
the next plain call ``b``, and is no model output, the plan asks ``a.fuse(b)`` (a public
``Layer`` method) for one function computing ``b(a(x))`` as a single primitive (Conv +
MaxPooling today, see ``layers/conv.py``). At run time that function may still decline
(return None) for inputs it cannot take, and the two layers then run one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dendrite._settings import max_sample_elements
from dendrite.layers.symbolic import (
    KerasTensor,
    Node,
    check_connected,
    flatten,
    map_structure,
    walk_graph,
)


class ExecutionPlan:
    """The layer calls between ``inputs`` and ``outputs`` (lists of KerasTensors), in order.

    Args:
        inputs: the model's Input tensors, in the order ``run`` receives values for them.
        outputs: the tensors ``run`` returns, in order.
        owner: the model's name, for error messages.
    """

    def __init__(self, inputs: list[KerasTensor], outputs: list[KerasTensor], owner: str) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.owner = owner
        self.order, self.layer_rank = walk_graph(self.inputs, self.outputs)
        self.nodes: list[Node] = check_connected(self.order, self.inputs, self.outputs)
        # Per node: the input's id when the call is plain layer(x), the output's id when it
        # makes one tensor (the replay then skips walking structures).
        self.steps = [
            (
                node,
                id(node.inputs)
                if isinstance(node.inputs, KerasTensor) and not node.args and not node.kwargs
                else None,
                id(node.outputs) if isinstance(node.outputs, KerasTensor) else None,
            )
            for node in self.nodes
        ]
        self.fused = self._fusion_pass()
        self.chain = self._plain_chain()
        self.refusal = self._size_refusal()

    def _size_refusal(self) -> str | None:
        """Why the model may not run, when some layer's output for one sample holds more
        values than ``max_sample_elements()`` (unknown axes count as 1); else None.

        Building and loading are shape-only and never hit this: a file of a few bytes may
        describe gigabytes of activations, and is refused only when called.
        """
        bound = max_sample_elements()
        for node in self.nodes:
            for x in node.output_tensors:
                per_sample = 1
                for size in x.shape[1:]:
                    per_sample *= size or 1
                if per_sample > bound:
                    return (
                        f"Model '{self.owner}' cannot run: layer '{node.layer.name}' "
                        f"({type(node.layer).__name__}) outputs {x.shape}, {per_sample:,} "
                        f"values per sample, above the bound of {bound:,} values per "
                        f"sample. Set DENDRITE_MAX_SAMPLE_ELEMENTS to raise it if the model "
                        f"is meant to be this large."
                    )
        return None

    def _plain_chain(self) -> list | None:
        """The layers in order when the plan is one plain chain ``l_n(...l_1(x))`` with
        nothing fused (the usual Sequential model): ``run`` then skips the bookkeeping."""
        if self.fused or len(self.inputs) != 1 or len(self.outputs) != 1:
            return None
        previous = id(self.inputs[0])
        for _, simple_input, simple_output in self.steps:
            if simple_input != previous or simple_output is None:
                return None
            previous = simple_output
        return [node.layer for node in self.nodes] if previous == id(self.outputs[0]) else None

    def _fusion_pass(self) -> dict[int, Callable[[Any], Any]]:
        """Step index -> the function running that step and the next as one primitive."""
        uses: dict[int, int] = {}
        for node in self.nodes:
            for x in flatten((node.inputs, node.args, node.kwargs)):
                if isinstance(x, KerasTensor):
                    uses[id(x)] = uses.get(id(x), 0) + 1
        kept = {id(x) for x in self.outputs}
        fused = {}
        for k in range(len(self.steps) - 1):
            (first, first_in, first_out), (second, second_in, second_out) = self.steps[k : k + 2]
            if (
                first_in is not None
                and first_out is not None
                and second_in == first_out
                and second_out is not None
                and uses.get(first_out) == 1
                and first_out not in kept
            ):
                function = first.layer.fuse(second.layer)
                if function is not None:
                    fused[k] = function
        return fused

    def run(self, values: list[Any]) -> list[Any]:
        """The outputs for ``values`` (one per input, in order), by replaying every call."""
        if self.refusal is not None:
            raise ValueError(self.refusal)
        if self.chain is not None:
            x = values[0]
            for layer in self.chain:
                x = layer(x)
            return [x]
        found: dict[int, Any] = {id(kt): x for kt, x in zip(self.inputs, values)}

        def resolve(v: Any) -> Any:
            return found[id(v)] if isinstance(v, KerasTensor) else v

        steps, fused = self.steps, self.fused
        index = 0
        while index < len(steps):
            node, simple_input, simple_output = steps[index]
            if index in fused:
                result = fused[index](found[simple_input])
                if result is not None:
                    found[steps[index + 1][2]] = result
                    index += 2
                    continue
            index += 1
            if simple_input is not None:  # layer(x): the common case, no structure to walk
                result = node.layer(found[simple_input])
            else:
                node_inputs = map_structure(resolve, node.inputs)
                args = map_structure(resolve, node.args)
                kwargs = {k: map_structure(resolve, v) for k, v in node.kwargs.items()}
                result = node.layer(node_inputs, *args, **kwargs)
            if simple_output is not None and not isinstance(result, (list, tuple, dict)):
                found[simple_output] = result
                continue
            produced = flatten(result)
            expected = flatten(node.outputs)
            if len(produced) != len(expected):
                raise ValueError(
                    f"Layer '{node.layer.name}' returned {len(produced)} outputs when called "
                    f"inside model '{self.owner}', but {len(expected)} when the model was built."
                )
            for kt, value in zip(expected, produced):
                found[id(kt)] = value
        return [found[id(kt)] for kt in self.outputs]
