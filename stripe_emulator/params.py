"""Typed reads of parsed Stripe params, failing with the 400s Stripe sends for bad values.

Values arrive as strings from the wire (`"true"`, `"4500"`), or as native Python values when a
test calls the `Emulator` directly; every reader accepts both.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .errors import parameter_invalid, parameter_missing, parameter_unknown, parameter_unsupported

_INTEGER = re.compile(r"-?\d+")

Choice = TypeVar("Choice", bound=enum.Enum)

# Stripe's documented metadata limits; enforcing them keeps a too-long value from passing
# locally and failing in production.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


def param_path(*parts: str | int) -> str:
    """Stripe's spelling of a nested parameter: `("line_items", 0, "price")` → `line_items[0][price]`."""
    head, *rest = parts
    return str(head) + "".join(f"[{part}]" for part in rest)


def required(params: Mapping[str, Any], name: str, *, path: str | None = None) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise parameter_missing(path or name)
    return value


def reject_unknown(params: Mapping[str, Any], accepted: Iterable[str]) -> None:
    """Refuse top-level params the endpoint does not take, as Stripe does."""
    accepted = set(accepted)
    for name in params:
        if name not in accepted:
            raise parameter_unknown(name)


def reject_unsupported(params: Mapping[str, Any], names: Iterable[str], what_is_supported: str) -> None:
    """Refuse params Stripe takes but the emulator does not model (see `parameter_unsupported`)."""
    for name in names:
        if params.get(name) not in (None, ""):
            raise parameter_unsupported(name, what_is_supported)


def as_str(value: Any, param: str) -> str:
    if isinstance(value, str):
        return value
    raise parameter_invalid(param, f"Invalid string: {value!r}")


def as_optional_str(value: Any, param: str) -> str | None:
    """A string, or None when absent or blank (Stripe's way of unsetting a field)."""
    if value is None or value == "":
        return None
    return as_str(value, param)


def as_int(value: Any, param: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and _INTEGER.fullmatch(value))
    ):
        raise parameter_invalid(param, f"Invalid integer: {value}", code="parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise parameter_invalid(param, f"This value must be greater than or equal to {minimum}.")
    if maximum is not None and number > maximum:
        raise parameter_invalid(param, f"This value must be less than or equal to {maximum}.")
    return number


def as_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise parameter_invalid(param, f"Invalid boolean: {value}")


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise parameter_invalid(param, f"Invalid object: `{param}` must be a hash.")


def as_list(value: Any, param: str) -> list[Any]:
    if isinstance(value, list):
        return value
    raise parameter_invalid(param, f"Invalid array: `{param}` must be an array.")


def as_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Validated metadata; blank means empty (creation has nothing to clear)."""
    if value is None or value == "":
        return {}
    entries = as_dict(value, param)
    if len(entries) > MAX_METADATA_KEYS:
        raise parameter_invalid(param, f"Invalid {param}: at most {MAX_METADATA_KEYS} keys are allowed.")
    metadata: dict[str, str] = {}
    for key, entry in entries.items():
        entry_param = param_path(param, key)
        if len(key) > MAX_METADATA_KEY_LENGTH:
            raise parameter_invalid(
                entry_param, f"Metadata keys can be at most {MAX_METADATA_KEY_LENGTH} characters."
            )
        if isinstance(entry, (dict, list)):
            raise parameter_invalid(entry_param, f"Invalid {param}: values must be strings.")
        entry = entry if isinstance(entry, str) else str(entry)
        if len(entry) > MAX_METADATA_VALUE_LENGTH:
            raise parameter_invalid(
                entry_param, f"Metadata values can be at most {MAX_METADATA_VALUE_LENGTH} characters."
            )
        metadata[key] = entry
    return metadata


def merged_metadata(current: dict[str, str], update: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe's update semantics: keys merge in, a blank value deletes its key, blank metadata clears all."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        as_dict(update, param)  # raises the Stripe error
    merged = dict(current)
    for key, entry in update.items():
        if entry == "":
            merged.pop(key, None)
        else:
            merged[key] = entry
    return as_metadata(merged, param)


def as_choice(value: Any, choices: type[Choice], param: str) -> Choice:
    """One member of the enum `choices`, given as the member or as its value."""
    if isinstance(value, choices):
        return value
    for member in choices:
        if member.value == value:
            return member
    allowed = ", ".join(str(member.value) for member in choices)
    raise parameter_invalid(param, f"Invalid {param}: must be one of {allowed}")
