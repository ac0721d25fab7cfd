"""Finding the Shopify emulator for `demo` and `emulator`.

The emulator is a test double, not part of the product: it ships with the source tree, not in the
wheel. From a clone (`make demo`, or an editable install run from anywhere) it sits beside the
`gateway` package; an installed wheel has none, and the commands say so in one line.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

NOT_INSTALLED = (
    "catalog-gateway: the Shopify emulator (used by `demo` and `emulator`) ships with the source, not with "
    "the installed package. Run it from a clone of the repository: `make demo`."
)


SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the clone, when `gateway` is not an installed wheel


def emulator_available() -> bool:
    """True once `shopify_emulator` is importable, adding the source tree beside `gateway` if needed."""
    if find_spec("shopify_emulator") is not None:
        return True
    if not (SOURCE_ROOT / "shopify_emulator" / "__init__.py").is_file():
        return False
    sys.path.append(str(SOURCE_ROOT))
    return find_spec("shopify_emulator") is not None
