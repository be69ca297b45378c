"""Read PyTorch's *legacy* (pre-1.6, non-zip) ``.pth`` state dicts with pickle + numpy only.

Why hand-written: torch is a 2 GB dependency we do not otherwise need, and no small, maintained
package reads this format. The reader is deliberately strict: the only classes the pickle may
name are an ``OrderedDict``, torch's tensor-rebuild function and torch's storage types; anything
else (a pickled function, a module, ...) is refused, so a hostile file cannot run code.

Legacy layout: magic number, protocol version and system info (three small pickles), then the
state dict pickle whose tensors point to storages by persistent id, then a pickled list of storage
keys, then for each key an int64 element count followed by the raw little-endian elements.
"""
from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np

_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageRef:
    __slots__ = ("key", "dtype")

    def __init__(self, key: str, dtype):
        self.key = key
        self.dtype = dtype


class _TensorRef:
    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    return _TensorRef(storage, storage_offset, size, stride)


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}:
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a weights file: only tensors and dicts are allowed"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r} in a weights file")
        storage_type, key = pid[1], pid[2]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        return _StorageRef(str(key), _STORAGE_DTYPES[storage_type.name])


def load_legacy_state_dict(path: str | Path) -> "collections.OrderedDict[str, np.ndarray]":
    """Return ``{name: ndarray}`` from a legacy-format PyTorch ``.pth`` file.

    Raises
    ------
    ValueError
        If the file is not a legacy torch file (for example the newer zip format).
    pickle.UnpicklingError
        If the pickle names anything but tensors, storages and ordered dicts.
    """
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ValueError(f"{path} is a zip-format torch file; only the legacy format is supported")
        f.seek(0)
        magic = pickle.load(f)
        if magic != _MAGIC:
            raise ValueError(f"{path} is not a legacy torch file (bad magic number)")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path} was written on a big-endian machine; not supported")
        state = _SafeUnpickler(f).load()
        keys = pickle.load(f)
        storages = {}
        dtypes = {}
        for value in state.values():
            if isinstance(value, _TensorRef):
                dtypes[value.storage.key] = value.storage.dtype
        for key in keys:
            count = int(np.frombuffer(f.read(8), dtype="<i8")[0])
            dtype = np.dtype(dtypes.get(key, np.float32)).newbyteorder("<")
            data = f.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise ValueError(f"{path} is truncated (storage {key})")
            storages[key] = np.frombuffer(data, dtype=dtype)
    out = collections.OrderedDict()
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = storages[ref.storage.key]
        itemsize = flat.dtype.itemsize
        arr = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.shape, strides=[s * itemsize for s in ref.stride]
        )
        out[name] = np.array(arr, dtype=flat.dtype.newbyteorder("="))
    return out
