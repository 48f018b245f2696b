"""Saving fixture models so that the same build gives the same bytes, whatever ran before in the process."""

from __future__ import annotations

import re
from pathlib import Path

import openvino as ov

# OpenVINO names unnamed nodes "<Type>_<n>" (or "<Type>_<n>.0", "<Type>_<n>_compressed") and models
# "Model<n>" from a process-wide counter, so two identical builds in one process would differ in their XML.
# Only names of that form are renumbered.
_COUNTER_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_\d+(\.\d+|_compressed)?$")


def save_model(model: ov.Model, path: Path, name: str) -> None:
    """``ov.save_model`` without FP16 compression, after renumbering counter-made names in graph order."""
    model.set_friendly_name(name)
    for index, node in enumerate(model.get_ordered_ops()):
        old = node.get_friendly_name()
        match = _COUNTER_NAME.match(old)
        if match is None:
            continue
        new = f"{match.group(1)}_{index}{match.group(2) or ''}"
        node.set_friendly_name(new)
        for output in node.outputs():
            names = output.get_names()
            if old in names:
                output.get_tensor().set_names((names - {old}) | {new})
    ov.save_model(model, str(path), compress_to_fp16=False)
