"""Save and load dicts of arrays (module or optimizer state) as ``.npz``, never pickling.

The archive is the format ``np.savez`` writes (a zip of ``<key>.npy`` members), written
member by member so that any string key works (``np.savez`` reserves ``file`` and
``allow_pickle`` as keyword names) and object arrays are refused up front.
"""
from __future__ import annotations

import os
import uuid
import zipfile
from typing import Dict, Mapping

import numpy as np

__all__ = ["save", "load"]


def _arrays_of(obj) -> Dict[str, np.ndarray]:
    """The arrays to store: ``obj.state_dict()`` for modules/optimizers, else the mapping."""
    if not isinstance(obj, Mapping) and callable(getattr(obj, "state_dict", None)):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save expects a Module or a dict of arrays, got {type(obj).__name__}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"keys must be non-empty strings, got {key!r}")
        array = np.asanyarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"{key!r}: object arrays would need pickle and cannot be saved")
        arrays[key] = np.asarray(array)
    return arrays


def _write_npz(file, arrays: Mapping[str, np.ndarray], compress: bool) -> None:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(file, mode="w", compression=method, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def save(path, obj, *, compress: bool = False):
    """Write ``obj`` (a Module, an optimizer or a dict of arrays) to an ``.npz`` file.

    ``path`` may be a file name (``.npz`` is appended if missing, as ``np.savez`` does;
    the file is replaced atomically) or a writable binary file object.
    Returns the path written, or the file object.
    """
    arrays = _arrays_of(obj)
    if not isinstance(path, (str, os.PathLike)):
        _write_npz(path, arrays, compress)
        return path
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as handle:
            _write_npz(handle, arrays, compress)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path) -> Dict[str, np.ndarray]:
    """Read an ``.npz`` file into a dict of arrays (``allow_pickle=False``)."""
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} holds a single array, not an .npz archive of named arrays")
    with archive:
        return {key: archive[key] for key in archive.files}
