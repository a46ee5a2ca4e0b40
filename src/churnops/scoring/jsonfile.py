"""Read one JSON object from an artifact file, or say plainly that the file is not one.

Every JSON file of the model artifact holds an object; a file that parses to anything else
(a number, a list) must be a clear "cannot be read" error at load, not an AttributeError
deep inside the loader (the artifact fuzzer found four such places).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_object(path: Path) -> dict[str, Any]:
    """Return the JSON object in ``path``; ValueError when the file holds anything else."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} must hold a JSON object, not {type(data).__name__}")
    return data
