"""Scalar arguments (ints, flags, the softmax scale) checked before they reach the bindings, so that a
wrong type gets an openmla message instead of a binding's signature dump."""

import numbers


def _describe(value):
    return f"{type(value).__name__} {value!r}"


def integer(value, name):
    """value as an int; Python and NumPy integers pass, bool, float and anything else raise TypeError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"openmla: {name}: expected an int, given {_describe(value)}")
    return int(value)


def flag(value, name):
    """value as a bool; Python and NumPy bools pass."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"openmla: {name}: expected a bool, given {_describe(value)}")
    return bool(value)


def optional_real(value, name):
    """None, or value as a float; ints and floats pass (the library checks that it is finite)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"openmla: {name}: expected a float or None, given {_describe(value)}")
    return float(value)
