"""Reading option text: seed lists and network widths (shared by the command line and sweep files)."""

from __future__ import annotations

import re
from typing import Optional


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' or '0-4' or '0-2,7' -> (0, 1, 2, ...). Raises ValueError with the valid forms."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"malformed --seeds {text!r}; use non-negative integers like 0,1,2 or a range 0-4")
        lo, hi = int(match[1]), int(match[2] or match[1])
        if hi < lo:
            raise ValueError(f"malformed --seeds {text!r}: range {part} is empty; write ranges low-high like 0-4")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"malformed --seeds {text!r}: a seed is repeated")
    return tuple(seeds)


def parse_widths(text: Optional[str], option: str) -> Optional[tuple[int, ...]]:
    """'512,512,512,512' -> (512, 512, 512, 512)."""
    if text is None:
        return None
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise ValueError(f"malformed {option} {text!r}; use comma-separated positive widths like 512,512,512,512") \
            from None
    if not widths or min(widths) < 1:
        raise ValueError(f"malformed {option} {text!r}; widths must be positive integers")
    return widths
