"""``shape``, ``batch_size`` and ``layout`` settings: parsing, and applying them to a model.

Forms follow OVMS: ``shape`` is ``"auto"``, ``"(1,3,224,224)"`` (dims may be -1 or a
range ``1:448`` / ``1..448``) or ``{"input": "(...)"}``; ``batch_size`` is an integer or
``"auto"``; ``layout`` is ``"NHWC:NCHW"`` (what clients send : what the model has, which
adds a transpose), a plain ``"NHWC"``, or ``{"tensor": "..."}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import openvino as ov

AUTO = "auto"

#: One dimension as (lower, upper); upper -1 is unbounded; (-1, -1) is fully dynamic.
DimRange = tuple[int, int]
#: A parsed shape, or "auto".
ShapeValue = tuple[DimRange, ...] | str
#: Per-input settings; the name "" means "every input" (the plain, unnamed form).
Shapes = tuple[tuple[str, ShapeValue], ...]

_LAYOUT = re.compile(r"^(?:[NCHWD?]|\.\.\.)+$")


@dataclass(frozen=True)
class LayoutValue:
    tensor: str
    """Layout of the tensor clients send or receive."""
    model: str
    """Layout the model itself has; differs from ``tensor`` when a transpose is added."""


Layouts = tuple[tuple[str, LayoutValue], ...]


def parse_dims(text: str) -> tuple[DimRange, ...]:
    body = text.strip()
    if not (body[:1] in "([" and body[-1:] in ")]"):
        raise ValueError(f'expected "auto" or a shape like "(1,3,224,224)" with -1 or lo:hi ranges, got "{text}"')
    dims: list[DimRange] = []
    for part in filter(None, (p.strip() for p in body[1:-1].split(","))):
        low, sep, high = part.replace("..", ":").partition(":")
        try:
            if sep:
                lo, hi = int(low), int(high)
                if lo < 0 or hi < lo:
                    raise ValueError
                dims.append((lo, hi))
            elif int(part) == -1:
                dims.append((-1, -1))
            elif int(part) > 0:
                dims.append((int(part), int(part)))
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f'dimension "{part}" in "{text}" is not a positive size, -1 or a lo:hi range') from None
    if not dims:
        raise ValueError(f'shape "{text}" has no dimensions')
    return tuple(dims)


def _shape_value(value: Any) -> ShapeValue:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {json.dumps(value)}")
    return AUTO if value.strip() == AUTO else parse_dims(value)


def parse_shapes(value: Any) -> Shapes | None:
    """``shape`` from config.json (string or object) or the CLI (string, possibly JSON)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().startswith("{"):
        value = json.loads(value)
    if isinstance(value, dict):
        return tuple((name, _shape_value(item)) for name, item in sorted(value.items()))
    return (("", _shape_value(value)),)


def parse_batch_size(value: Any) -> int | str | None:
    if value is None or value == 0 or value == "0":
        return None
    if value == AUTO:
        return AUTO
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValueError(f'expected a positive integer or "auto", got {json.dumps(value)}')


def _layout_value(value: Any) -> LayoutValue:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {json.dumps(value)}")
    tensor, sep, model = value.strip().partition(":")
    model = model if sep else tensor
    for layout in (tensor, model):
        if not _LAYOUT.match(layout):
            raise ValueError(f'layout "{value}" may only use N, C, H, W, D, ? and "..." (e.g. "NHWC:NCHW")')
    if sep and sorted(tensor) != sorted(model):
        raise ValueError(f'layout "{value}": both sides must name the same dimensions')
    return LayoutValue(tensor, model)


def parse_layouts(value: Any) -> Layouts | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().startswith("{"):
        value = json.loads(value)
    if isinstance(value, dict):
        return tuple((name, _layout_value(item)) for name, item in sorted(value.items()))
    return (("", _layout_value(value)),)


def is_auto(shapes: Shapes | None, batch_size: int | str | None) -> bool:
    return batch_size == AUTO or any(value == AUTO for _, value in shapes or ())


def _partial_shape(dims: tuple[DimRange, ...]) -> ov.PartialShape:
    return ov.PartialShape([ov.Dimension(-1) if lo == -1 else ov.Dimension(lo, hi) for lo, hi in dims])


def _ports_named(ports: list[ov.Output], name: str, what: str) -> list[ov.Output]:
    if not name:
        return ports
    found = [port for port in ports if name in port.names]
    if not found:
        known = ", ".join(port.any_name for port in ports)
        raise ValueError(f'{what} "{name}" is not in the model ({what}s: {known})')
    return found


def apply_settings(
    model: ov.Model, shapes: Shapes | None, batch_size: int | str | None, layouts: Layouts | None
) -> ov.Model:
    """Reshape the model, then add layout conversions; raises ValueError naming what does not fit."""
    new_shapes: dict[ov.Output, ov.PartialShape] = {}
    if shapes:
        for name, value in shapes:
            if value == AUTO:
                continue
            for port in _ports_named(list(model.inputs), name, "input"):
                new_shapes[port] = _partial_shape(value)  # type: ignore[arg-type]
    elif isinstance(batch_size, int):
        for port in model.inputs:
            shape = port.get_partial_shape()
            if shape.rank.is_dynamic or len(shape) == 0:
                raise ValueError(f'batch_size needs a known rank; input "{port.any_name}" has {shape}')
            shape[0] = ov.Dimension(batch_size)
            new_shapes[port] = shape
    if new_shapes:
        try:
            model.reshape(new_shapes)
        except Exception as exc:
            wanted = ", ".join(f"{port.any_name}: {shape}" for port, shape in new_shapes.items())
            raise ValueError(f"cannot reshape to {wanted}: {str(exc).splitlines()[-1]}") from exc
    if layouts:
        model = _apply_layouts(model, layouts)
    return model


def _apply_layouts(model: ov.Model, layouts: Layouts) -> ov.Model:
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    input_names = {name for port in model.inputs for name in port.names}
    output_names = {name for port in model.outputs for name in port.names}
    for name, value in layouts:
        if not name or name in input_names:
            for port in _ports_named(list(model.inputs), name, "input"):
                step = ppp.input(port.any_name)
                step.tensor().set_layout(ov.Layout(value.tensor))
                step.model().set_layout(ov.Layout(value.model))
        elif name in output_names:
            step_out = ppp.output(name)
            step_out.model().set_layout(ov.Layout(value.model))
            step_out.tensor().set_layout(ov.Layout(value.tensor))
        else:
            raise ValueError(f'layout names "{name}", which is neither an input nor an output of the model')
    try:
        return ppp.build()
    except Exception as exc:
        raise ValueError(f"cannot apply layout: {str(exc).splitlines()[-1]}") from exc
