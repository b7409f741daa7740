"""Where the project's own folders are (the package is installed editable from the repository)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = ROOT / "mappings"
CONFIG = ROOT / "config"
VAR = Path(os.environ.get("ERP2CRM_VAR", ROOT / "var"))


def var_dir() -> Path:
    """The state folder, read when needed (the embedded default sets ERP2CRM_VAR after this module loads)."""
    return Path(os.environ.get("ERP2CRM_VAR", ROOT / "var"))
