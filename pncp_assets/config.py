"""Configuration errors and the modalidade list syntax (the settings themselves: `defs/resources.py`, filled
from the environment by `defs/environment.py`)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the variable and the accepted values."""


def parse_modalidades(text: str) -> tuple[int, ...]:
    """`"1..19"`, `"6,8,9"` or a mix such as `"1..3,6"` -> sorted, unique codes."""
    codes: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if ".." in part:
                lo, hi = (int(x) for x in part.split("..", 1))
                if lo > hi:
                    raise ValueError
                codes.update(range(lo, hi + 1))
            else:
                codes.add(int(part))
        except ValueError:
            raise ConfigError(
                f"PNCP_MODALIDADES: {part!r} is not a modalidade code or a range like 1..19"
            ) from None
    if not codes or min(codes) < 1:
        raise ConfigError("PNCP_MODALIDADES must name at least one modalidade code >= 1")
    return tuple(sorted(codes))


def parse_flag(text: str) -> bool:
    """`true`/`false` (also 1/0, yes/no, on/off), any case."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not true or false")
