"""Reading option text: seed lists and network widths (shared by the command line and sweep files)."""

from __future__ import annotations

import re
from typing import Optional

MAX_SEED = 2**31 - 1  # seeds reach JAX as int32 (drol.learner.seed_key)
MAX_SEEDS = 10_000  # seeds in one run: they train together in one program (vmapped)


def split_items(text: str, option: str, example: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (stripped). Raises ValueError (one line) for an empty item
    ('a,,b', a trailing comma, or empty text), naming `option` and an `example` of the valid form."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ValueError(f"malformed {option} {text!r}: an item is empty; use comma-separated values like {example}")
    return items


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' or '0-4' or '0-2,7' -> (0, 1, 2, ...). Raises ValueError with the valid forms: seeds are
    integers 0..MAX_SEED, at most MAX_SEEDS of them, none repeated."""
    seeds: list[int] = []
    for part in split_items(text, "--seeds", "0,1,2 or a range 0-4"):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"malformed --seeds {text!r}; use non-negative integers like 0,1,2 or a range 0-4")
        lo, hi = int(match[1]), int(match[2] or match[1])
        if hi > MAX_SEED:
            raise ValueError(f"malformed --seeds {text!r}: {hi} is too large; seeds are integers from 0 to {MAX_SEED}")
        if hi < lo:
            raise ValueError(f"malformed --seeds {text!r}: range {part} is empty; write ranges low-high like 0-4")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise ValueError(f"--seeds {text!r} lists more than {MAX_SEEDS} seeds; one run trains its seeds together "
                             "in one program: list fewer (split them over several runs)")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"malformed --seeds {text!r}: a seed is repeated")
    return tuple(seeds)


def parse_widths(text: Optional[str], option: str) -> Optional[tuple[int, ...]]:
    """'512,512,512,512' -> (512, 512, 512, 512)."""
    if text is None:
        return None
    items = split_items(text, option, "512,512,512,512")
    try:
        widths = tuple(int(w) for w in items)
    except ValueError:
        raise ValueError(f"malformed {option} {text!r}; use comma-separated positive widths like 512,512,512,512") \
            from None
    if not widths or min(widths) < 1:
        raise ValueError(f"malformed {option} {text!r}; widths must be positive integers")
    return widths
