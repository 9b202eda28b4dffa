"""How the loader reads a layer's activation and a term's objective: each by its table row (activations.py,
losses.py), a custom activation by its parsed f and df, an argument or target by refs.py."""

from __future__ import annotations

from .activations import TABLE, custom, lookup, with_argument
from .functions import ShapeProblem
from .losses import LOSSES, unknown_loss, unknown_objective, with_target
from .model import ActivationUse, Objective
from .nodes import check_keys, expect_mapping, place_of
from .refs import DATA
from .shapes import Shape, broadcast, fmt_shape
from .suggest import did_you_mean
from .yamlsrc import Node


class RowReader:
    """The Loader's reading of activations and objectives (a mixin: it uses the Loader's refs, shapes, problems)."""

    def activation(self, node: Node | None, index: int, z_shape: Shape, whole_matrix: bool = False) -> ActivationUse:
        """A layer's activation; a bad one is recorded and read as identity, so the layers after it are read too."""
        with self.problems.isolated():
            return self.activation_use(node, index, z_shape, whole_matrix)
        return ActivationUse("identity", TABLE["identity"])  # z's shape does not depend on the activation

    def activation_use(self, node: Node | None, index: int, z_shape: Shape, whole_matrix: bool) -> ActivationUse:
        """The activation as written; a whole-matrix one (inv, logdet) only where the kind says it may (dense)."""
        if node is None or node.value is None:
            return ActivationUse("identity", TABLE["identity"])
        if isinstance(node.value, str):
            row = lookup(node.value.strip(), node)
            if row.whole_matrix and not whole_matrix:
                raise node.error(f'"{row.name}" is a whole-matrix activation: only a dense layer (weight, bias, '
                                 f'activation) applies it; put it in a layer of its own')
            return ActivationUse(node.value, row, place=place_of(node))
        mapping = expect_mapping(node, f"the activation of layer {index}")
        if set(mapping) & {"f", "df"}:
            return self.custom_activation(node, mapping, index, z_shape)
        if len(mapping) != 1:
            raise node.error(f"an activation with an argument has one key ({', '.join(with_argument())}), "
                             f"or is custom with keys f and df")
        (name, arg_node), = mapping.items()
        if name not in with_argument():
            takes = "takes no argument" if name in TABLE else "is not an activation"
            raise arg_node.key_error(f'"{name}" {takes}{did_you_mean(name, [*with_argument(), "f", "df"])}; activations '
                                     f'with an argument: {", ".join(with_argument())}; custom: {{f: ..., df: ...}}')
        argument = self.ref(arg_node, f"the argument of {name}", allow_number=True, allow_transpose=True,
                            computed=DATA, identity=z_shape[0])
        self.require_fits(arg_node, f"the argument {argument.label} of {name}", self.ref_shape(argument), z_shape)
        return ActivationUse(f"{{{name}: {argument.label}}}", TABLE[name], argument, place=place_of(node))

    @staticmethod
    def activation_shape(node: Node | None, use: ActivationUse, index: int, z_shape: Shape) -> Shape:
        """a's shape from the row's shape rule; a z the row does not take is an error at the activation."""
        try:
            return use.row.shape(z_shape)
        except ShapeProblem as exc:
            raise node.error(f"activation {use.row.name} of layer {index} {exc} (z = W a + b, what the layer "
                             f"hands its activation)") from None

    def custom_activation(self, node: Node, mapping: dict[str, Node], index: int, z_shape: Shape) -> ActivationUse:
        check_keys(mapping, ("f", "df"), f"the custom activation of layer {index}")
        for key in ("f", "df"):
            if key not in mapping:
                raise node.error(f'a custom activation needs both "f" and "df" (missing "{key}")')
        data_names = {n for n, k in self.kinds.items() if k == "data"}
        shapes = {**{n: self.shapes[n] for n in data_names}, "z": z_shape}
        parsed = {}
        for key in ("f", "df"):
            e = self.expression(mapping[key], set(shapes) | set(self.shapes), f"custom {key}")
            mixing = e.not_elementwise()
            if mixing:  # backprop multiplies g by df entry by entry: only right for an elementwise f
                raise e.error(f"custom {key} must be elementwise (each a_ij from z_ij alone); {mixing} mixes "
                              f"entries: use an activation of the table (softmax) or a layer kind instead")
            params_used = sorted(e.names - data_names - {"z"})
            if params_used:
                raise e.error(f'custom {key} may use z and data names only; "{params_used[0]}" is a param '
                              f"(its gradient through a custom activation is not defined)", params_used[0])
            out = self.sized_shape(e, shapes, f"custom {key}")
            if broadcast(out, z_shape) != z_shape:
                raise mapping[key].error(f"custom {key} has shape {fmt_shape(out)}; it must match z {fmt_shape(z_shape)}")
            parsed[key] = e
        return ActivationUse("custom", custom(parsed["f"], parsed["df"]), f_text=parsed["f"].text,
                             df_text=parsed["df"].text, place=place_of(node),
                             expressions=(parsed["f"], parsed["df"]))

    def objective(self, node: Node | None, shape: Shape) -> Objective:
        if node is None:
            return Objective("sum")
        if isinstance(node.value, str):
            kind = node.value.strip()
            if kind in LOSSES and LOSSES[kind].needs_target:
                raise node.error(f'loss "{kind}" needs a target: {{loss: {kind}, target: <name>}}')
            if kind not in LOSSES:
                raise node.error(unknown_objective(kind))
            return Objective(kind, place=place_of(node))
        mapping = expect_mapping(node, "objective")
        check_keys(mapping, ("loss", "target", "reduce"), "objective")
        if "loss" not in mapping:
            raise node.error(f"objective needs a loss: one of {', '.join(with_target())}")
        loss = self.text(mapping["loss"], "loss")
        if loss not in with_target():
            raise mapping["loss"].error(unknown_loss(loss))
        if "target" not in mapping:
            raise node.error(f'loss "{loss}" needs a target: name the matrix of labels')
        target = self.ref(mapping["target"], "target", allow_transpose=True, computed=DATA, identity=shape[0])
        self.require_fits(mapping["target"], f"target {target.label}", self.ref_shape(target), shape)
        reduce = self.text(mapping["reduce"], "reduce") if "reduce" in mapping else "sum"
        if reduce not in ("sum", "mean"):
            raise mapping["reduce"].error(f'reduce must be "sum" or "mean", not "{reduce}"')
        return Objective(loss, target, reduce, place_of(node))
