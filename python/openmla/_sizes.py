"""Sizes of the arrays a decoding step needs, from the library. Pure functions of ints and strings:
with PyTorch present they are marked constant for torch.compile (see _torch.py)."""

from . import _C


def plan_geometry(batch, s_q, h_q, h_kv, num_parts, device_type, device_index):
    """(num_parts resolved, int32 words per part, int32 word where num_splits starts)."""
    return _C.plan_geometry(batch, s_q, h_q, h_kv, num_parts, device_type, device_index)


def workspace_bytes(batch, s_q, h_q, d_v, num_parts, device_type, device_index):
    """Bytes of workspace decode needs, alignment slack included."""
    return _C.workspace_size(batch, s_q, h_q, d_v, num_parts, device_type, device_index)
