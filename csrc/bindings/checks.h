// Array validation for the raw kernel bindings: exact dtype, C-contiguity and shape, with
// errors naming the argument. The Python layer (pyrnn/functional.py) validates first with
// friendlier messages; these checks keep the raw module from ever reading out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "array_pool.h"
#include "pyrnn/common.h"

namespace pyrnn {
namespace bind {

namespace py = pybind11;

inline std::string shape_str(const std::vector<index_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// Returns the data pointer of `obj`, or nullptr when it is None and `optional`.
template <typename T>
const T* checked(const py::object& obj, const char* name, const std::vector<index_t>& shape,
                 bool optional = false) {
  if (obj.is_none()) {
    if (optional) return nullptr;
    throw py::type_error(std::string("argument '") + name + "': expected an array, got None");
  }
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string("argument '") + name + "': expected a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string("argument '") + name + "': expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(arr.dtype())));
  std::vector<index_t> got(arr.shape(), arr.shape() + arr.ndim());
  if (got != shape)
    throw py::value_error(std::string("argument '") + name + "': expected shape " +
                          shape_str(shape) + ", got " + shape_str(got));
  if (!(arr.flags() & py::array::c_style))
    throw py::value_error(std::string("argument '") + name + "': must be C-contiguous");
  return static_cast<const T*>(arr.data());
}

// checked() for an array the kernel writes into: also refuses a read-only one.
template <typename T>
T* checked_writeable(const py::object& obj, const char* name, const std::vector<index_t>& shape,
                     bool optional = false) {
  T* p = const_cast<T*>(checked<T>(obj, name, shape, optional));
  if (p && !py::reinterpret_borrow<py::array>(obj).writeable())
    throw py::value_error(std::string("argument '") + name + "': must be writeable");
  return p;
}

// The int64 lengths [B] (0 <= length <= T), or nullptr when None.
inline const index_t* checked_lengths(const py::object& lengths, index_t B, index_t T) {
  const index_t* p = checked<index_t>(lengths, "lengths", {B}, true);
  if (p)
    for (index_t b = 0; b < B; ++b)
      if (p[b] < 0 || p[b] > T)
        throw py::value_error("argument 'lengths': entry " + std::to_string(b) + " is " +
                              std::to_string(p[b]) + ", expected 0 <= length <= " +
                              std::to_string(T));
  return p;
}

// Output arrays: uninitialised, from the array pool when they fit there (array_pool.h).
template <typename T>
py::array_t<T> empty(const std::vector<index_t>& shape) {
  return pooled_empty<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

template <typename T>
T* ptr(py::array_t<T>& a) {
  return a.mutable_data();
}

}  // namespace bind
}  // namespace pyrnn
