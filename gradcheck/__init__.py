"""gradcheck: check hand-derived gradients of matrix functions against finite differences."""

__version__ = "0.1.0"

from .check import check  # noqa: E402
from .errors import SpecError  # noqa: E402
from .limits import Limits  # noqa: E402
from .spec import Spec, load, loads  # noqa: E402

__all__ = ["__version__", "check", "load", "loads", "Limits", "Spec", "SpecError"]
