"""One "did you mean" for every message that names something unknown."""

from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest of `choices`, or "" when none is close."""
    hint = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean "{hint[0]}"?)' if hint else ""
