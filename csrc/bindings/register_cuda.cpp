// CUDA entry points of pyrnn._core (built only with -DPYRNN_CUDA=ON):
//   cuda_device_info()   what is built and which GPU is usable; never raises
//   CudaWeights          one layer/direction's parameters resident on the GPU
//   CudaSaves            a training forward's x and saved activations, kept on the GPU for backward
//   cuda_forward / cuda_backward   NumPy in, NumPy out, with the checks of `forward`/`backward`
// The kernels live in libpyrnn_kernels_cuda beside this module and are loaded with dlopen on first
// use, so this module imports (and reports why) even where the CUDA libraries cannot be loaded.
// The GIL is released around every device copy and kernel.
#include <dlfcn.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "checks.h"
#include "cuda/api.h"
#include "pyrnn/common.h"

namespace pyrnn {
namespace bind {
namespace {

using cuda::CudaTable;

// ----------------------------------------------------------------------------- the library

struct Library {
  const CudaTable* table = nullptr;
  std::string path;
  std::string error;  // why table is nullptr
};

Library load_library() {
  Library lib;
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&load_library), &info) || !info.dli_fname) {
    lib.error = "cannot locate the pyrnn._core module file";
    return lib;
  }
  std::string dir = info.dli_fname;
  const size_t slash = dir.find_last_of('/');
  dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  lib.path = dir + "/libpyrnn_kernels_cuda.so";
  void* handle = dlopen(lib.path.c_str(), RTLD_NOW | RTLD_LOCAL);  // kept for the process
  if (!handle) {
    const char* e = dlerror();
    lib.error = "cannot load the CUDA kernels: " + std::string(e ? e : lib.path);
    return lib;
  }
  using Entry = const CudaTable* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(handle, "pyrnn_cuda_kernel_table"));
  if (!entry) {
    lib.error = lib.path + " has no pyrnn_cuda_kernel_table";
    return lib;
  }
  const CudaTable* t = entry();
  if (!t || t->api_version != cuda::kApiVersion) {
    lib.error = lib.path + " is from another pyrnn build (API version mismatch); rebuild";
    return lib;
  }
  lib.table = t;
  return lib;
}

const Library& library() {
  static const Library lib = load_library();
  return lib;
}

const CudaTable& table() {
  const Library& lib = library();
  if (!lib.table) throw std::runtime_error("pyrnn CUDA: " + lib.error);
  return *lib.table;
}

// ----------------------------------------------------------------------------- device memory

// One device allocation, freed by its destructor on every path.
class DeviceMem {
 public:
  DeviceMem() = default;
  explicit DeviceMem(size_t bytes) : p_(table().malloc(bytes)), bytes_(bytes) {}
  ~DeviceMem() {
    if (p_) table().free(p_);
  }
  DeviceMem(DeviceMem&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(o.bytes_) {}
  DeviceMem& operator=(DeviceMem&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceMem(const DeviceMem&) = delete;
  DeviceMem& operator=(const DeviceMem&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }
  void upload(const void* host) { table().to_device(p_, host, bytes_); }
  void download(void* host) const { table().to_host(host, p_, bytes_); }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

template <typename T>
size_t bytes_of(const std::vector<index_t>& shape) {
  size_t n = sizeof(T);
  for (index_t s : shape) n *= size_t(s);
  return n;
}

// A device copy of `host` (nullptr = absent: an empty DeviceMem). Call without the GIL.
template <typename T>
DeviceMem upload(const T* host, const std::vector<index_t>& shape) {
  if (!host) return DeviceMem();
  DeviceMem m(bytes_of<T>(shape));
  m.upload(host);
  return m;
}

template <typename T>
T* dptr(const DeviceMem& m) {
  return m.bytes() ? m.as<T>() : nullptr;
}

// ----------------------------------------------------------------------------- handles

CellKind cell_kind(int cell) {
  if (cell < 0 || cell > 3)  // the cell variants (4..) have no CUDA kernels
    throw py::value_error("argument 'cell': unknown cell kind " + std::to_string(cell) +
                          " for CUDA (the cell variants run on the CPU only)");
  return static_cast<CellKind>(cell);
}

const char* cell_name(CellKind k) {
  switch (k) {
    case CellKind::LSTM: return "lstm";
    case CellKind::GRU: return "gru";
    case CellKind::RNN_TANH: return "rnn_tanh";
    case CellKind::RNN_RELU: return "rnn_relu";
    case CellKind::LSTM_COUPLED: return "lstm_coupled";  // CPU only: cell_kind refuses these
    case CellKind::LSTM_PEEPHOLE: return "lstm_peephole";
    case CellKind::GRU_RESET_BEFORE: return "gru_reset_before";
  }
  return "?";
}

bool is_f64(const py::object& a) {
  return py::isinstance<py::array>(a) &&
         py::reinterpret_borrow<py::array>(a).dtype().equal(py::dtype::of<double>());
}

bool is_f32(const py::object& a) {
  return py::isinstance<py::array>(a) &&
         py::reinterpret_borrow<py::array>(a).dtype().equal(py::dtype::of<float>());
}

// One layer/direction's parameters on the GPU (PyTorch layout). `version` counts uploads, so a
// backward can refuse weights that changed after its forward.
struct CudaWeights {
  CellKind kind;
  bool f64;
  index_t G, H, I;
  bool has_bias;
  DeviceMem w_ih, w_hh, b_ih, b_hh;  // [G*H, I], [G*H, H], [G*H], [G*H]
  std::uint64_t version = 0;

  template <typename T>
  void set(const py::object& wih, const py::object& whh, const py::object& bih,
           const py::object& bhh, bool first) {
    const T* p_ih = checked<T>(wih, "w_ih", {G * H, I});
    const T* p_hh = checked<T>(whh, "w_hh", {G * H, H});
    const T* p_bi = checked<T>(bih, "b_ih", {G * H}, true);
    const T* p_bh = checked<T>(bhh, "b_hh", {G * H}, true);
    if ((p_bi != nullptr) != has_bias || (p_bh != nullptr) != has_bias)
      throw py::value_error(has_bias ? "arguments 'b_ih' and 'b_hh': these weights have biases"
                                     : "arguments 'b_ih' and 'b_hh': these weights have none");
    py::gil_scoped_release release;
    if (first) {
      w_ih = upload(p_ih, {G * H, I});
      w_hh = upload(p_hh, {G * H, H});
      b_ih = upload(p_bi, {G * H});
      b_hh = upload(p_bh, {G * H});
    } else {  // same shapes: copy into the resident buffers
      if (w_ih.bytes()) w_ih.upload(p_ih);
      if (w_hh.bytes()) w_hh.upload(p_hh);
      if (b_ih.bytes()) b_ih.upload(p_bi);
      if (b_hh.bytes()) b_hh.upload(p_bh);
    }
  }

  void assign(const py::object& wih, const py::object& whh, const py::object& bih,
              const py::object& bhh, bool first) {
    if (f64)
      set<double>(wih, whh, bih, bhh, first);
    else
      set<float>(wih, whh, bih, bhh, first);
    ++version;
  }

  template <typename T>
  py::tuple to_numpy() const {
    auto wih = empty<T>({G * H, I}), whh = empty<T>({G * H, H});
    py::array_t<T> bih, bhh;
    if (has_bias) {
      bih = empty<T>({G * H});
      bhh = empty<T>({G * H});
    }
    T* out[4] = {ptr(wih), ptr(whh), has_bias ? ptr(bih) : nullptr,
                 has_bias ? ptr(bhh) : nullptr};
    {
      py::gil_scoped_release release;
      const DeviceMem* src[4] = {&w_ih, &w_hh, &b_ih, &b_hh};
      for (int i = 0; i < 4; ++i)
        if (out[i] && src[i]->bytes()) src[i]->download(out[i]);
    }
    auto opt = [&](const py::array& a) { return has_bias ? py::object(a) : py::none(); };
    return py::make_tuple(wih, whh, opt(bih), opt(bhh));
  }
};

std::shared_ptr<CudaWeights> make_weights(int cell, const py::object& wih, const py::object& whh,
                                          const py::object& bih, const py::object& bhh) {
  auto w = std::make_shared<CudaWeights>();
  w->kind = cell_kind(cell);
  w->G = gate_count(w->kind);
  if (!py::isinstance<py::array>(whh) || py::reinterpret_borrow<py::array>(whh).ndim() != 2)
    throw py::value_error("argument 'w_hh': expected a 2-dimensional array [G*H, H]");
  if (!py::isinstance<py::array>(wih) || py::reinterpret_borrow<py::array>(wih).ndim() != 2)
    throw py::value_error("argument 'w_ih': expected a 2-dimensional array [G*H, I]");
  if (!is_f32(whh) && !is_f64(whh))
    throw py::type_error("argument 'w_hh': expected dtype float32 or float64, got " +
                         std::string(py::str(py::reinterpret_borrow<py::array>(whh).dtype())));
  w->f64 = is_f64(whh);
  w->H = py::reinterpret_borrow<py::array>(whh).shape(1);
  w->I = py::reinterpret_borrow<py::array>(wih).shape(1);
  if (bih.is_none() != bhh.is_none())
    throw py::value_error("arguments 'b_ih' and 'b_hh': give both or neither");
  w->has_bias = !bih.is_none();
  w->assign(wih, whh, bih, bhh, true);
  return w;
}

// A training forward's saves, on the GPU, in the CPU kernels' layout and step order.
struct CudaSaves {
  CellKind kind;
  bool f64;
  Dims d;
  bool reverse;
  std::shared_ptr<CudaWeights> weights;
  std::uint64_t weights_version;
  DeviceMem x, lengths;         // [T, B, I], [B] int64 (empty when absent)
  DeviceMem gates, h_prev, aux;  // [T, B, G*H], [T, B, H], [T, B, H] (aux empty for RNN)
  bool released = false;

  void release() {
    x = DeviceMem();
    lengths = DeviceMem();
    gates = DeviceMem();
    h_prev = DeviceMem();
    aux = DeviceMem();
    weights.reset();
    released = true;
  }

  template <typename T>
  py::tuple to_numpy() const {
    if (released) throw py::value_error("CudaSaves: already released");
    const index_t G = gate_count(kind);
    auto g = empty<T>({d.T, d.B, G * d.H}), hp = empty<T>({d.T, d.B, d.H});
    py::array_t<T> ax;
    const bool has_aux = kind == CellKind::LSTM || kind == CellKind::GRU;
    if (has_aux) ax = empty<T>({d.T, d.B, d.H});
    T* pg = ptr(g);
    T* php = ptr(hp);
    T* pax = has_aux ? ptr(ax) : nullptr;
    {
      py::gil_scoped_release release;
      if (gates.bytes()) gates.download(pg);
      if (h_prev.bytes()) h_prev.download(php);
      if (pax && aux.bytes()) aux.download(pax);
    }
    return py::make_tuple(g, hp, has_aux ? py::object(ax) : py::object(py::none()));
  }
};

// ----------------------------------------------------------------------------- checks

void check_weights_match(const CudaWeights& w, CellKind kind, const py::array& x) {
  if (gate_count(w.kind) != gate_count(kind) ||
      (kind == CellKind::LSTM) != (w.kind == CellKind::LSTM))
    throw py::value_error(std::string("argument 'weights': made for a ") + cell_name(w.kind) +
                          " cell, not " + cell_name(kind));
  const bool x64 = x.dtype().equal(py::dtype::of<double>());
  if (!x64 && !x.dtype().equal(py::dtype::of<float>()))
    throw py::type_error("argument 'x': expected dtype float32 or float64, got " +
                         std::string(py::str(x.dtype())));
  if (x64 != w.f64)
    throw py::type_error(std::string("argument 'x': dtype ") + std::string(py::str(x.dtype())) +
                         " does not match the weights' dtype " + (w.f64 ? "float64" : "float32"));
}

// ----------------------------------------------------------------------------- forward

void run(CellKind k, const ForwardArgs<float>& a) { table().forward_f32(k, a); }
void run(CellKind k, const ForwardArgs<double>& a) { table().forward_f64(k, a); }
void run(CellKind k, const BackwardArgs<float>& a) { table().backward_f32(k, a); }
void run(CellKind k, const BackwardArgs<double>& a) { table().backward_f64(k, a); }

template <typename T>
py::tuple forward_t(CellKind kind, const py::array& x_arr, std::shared_ptr<CudaWeights> w,
                    const py::object& h0, const py::object& c0, const py::object& lengths,
                    bool reverse, bool training) {
  if (x_arr.ndim() != 3)
    throw py::value_error("argument 'x': expected 3 dimensions [T, B, I], got " +
                          std::to_string(x_arr.ndim()));
  const index_t G = gate_count(kind), T_ = x_arr.shape(0), B = x_arr.shape(1), H = w->H,
                I = w->I;
  const bool lstm = kind == CellKind::LSTM;
  const bool has_aux = lstm || kind == CellKind::GRU;
  const T* hx = checked<T>(x_arr, "x", {T_, B, I});
  const T* hh0 = checked<T>(h0, "h0", {B, H}, true);
  const T* hc0 = lstm ? checked<T>(c0, "c0", {B, H}, true) : nullptr;
  const index_t* hlen = checked_lengths(lengths, B, T_);

  auto y = empty<T>({T_, B, H});
  auto h_n = empty<T>({B, H});
  py::array_t<T> c_n;
  if (lstm) c_n = empty<T>({B, H});
  T* py_y = ptr(y);
  T* py_hn = ptr(h_n);
  T* py_cn = lstm ? ptr(c_n) : nullptr;

  auto saves = std::make_shared<CudaSaves>();
  {
    py::gil_scoped_release release;
    DeviceMem x = upload(hx, {T_, B, I}), dh0 = upload(hh0, {B, H}), dc0 = upload(hc0, {B, H});
    DeviceMem len = upload(hlen, {B});
    DeviceMem dy(bytes_of<T>({T_, B, H})), dhn(bytes_of<T>({B, H}));
    DeviceMem dcn(lstm ? bytes_of<T>({B, H}) : 0);
    DeviceMem gates, h_prev, aux;
    if (training) {
      gates = DeviceMem(bytes_of<T>({T_, B, G * H}));
      h_prev = DeviceMem(bytes_of<T>({T_, B, H}));
      if (has_aux) aux = DeviceMem(bytes_of<T>({T_, B, H}));
    }
    ForwardArgs<T> a{};
    a.d = Dims{T_, B, I, H};
    a.x = dptr<T>(x);
    a.w_ih = dptr<T>(w->w_ih);
    a.w_hh = dptr<T>(w->w_hh);
    a.b_ih = dptr<T>(w->b_ih);
    a.b_hh = dptr<T>(w->b_hh);
    a.h0 = dptr<T>(dh0);
    a.c0 = dptr<T>(dc0);
    a.lengths = dptr<index_t>(len);
    a.reverse = reverse;
    a.num_threads = 1;
    a.y = dptr<T>(dy);
    a.h_n = dptr<T>(dhn);
    a.c_n = dptr<T>(dcn);
    a.gates = dptr<T>(gates);
    a.h_prev = dptr<T>(h_prev);
    a.aux = dptr<T>(aux);
    run(kind, a);
    dy.download(py_y);
    dhn.download(py_hn);
    if (lstm) dcn.download(py_cn);
    if (training) {
      saves->x = std::move(x);
      saves->lengths = std::move(len);
      saves->gates = std::move(gates);
      saves->h_prev = std::move(h_prev);
      saves->aux = std::move(aux);
    }
  }
  py::object saves_obj = py::none();
  if (training) {
    saves->kind = kind;
    saves->f64 = std::is_same<T, double>::value;
    saves->d = Dims{T_, B, I, H};
    saves->reverse = reverse;
    saves->weights_version = w->version;
    saves->weights = std::move(w);
    saves_obj = py::cast(saves);
  }
  return py::make_tuple(y, h_n, lstm ? py::object(c_n) : py::object(py::none()), saves_obj);
}

// ----------------------------------------------------------------------------- backward

template <typename T>
py::tuple backward_t(CellKind kind, CudaSaves& s, const py::object& dy, const py::object& dh_n,
                     const py::object& dc_n) {
  const index_t G = gate_count(kind), T_ = s.d.T, B = s.d.B, I = s.d.I, H = s.d.H;
  const bool lstm = kind == CellKind::LSTM;
  const bool has_bias = s.weights->has_bias;
  const T* hdy = checked<T>(dy, "dy", {T_, B, H}, true);
  const T* hdh = checked<T>(dh_n, "dh_n", {B, H}, true);
  const T* hdc = lstm ? checked<T>(dc_n, "dc_n", {B, H}, true) : nullptr;

  auto dx = empty<T>({T_, B, I});
  auto dh0 = empty<T>({B, H});
  auto dw_ih = empty<T>({G * H, I});
  auto dw_hh = empty<T>({G * H, H});
  py::array_t<T> dc0, db_ih, db_hh;
  if (lstm) dc0 = empty<T>({B, H});
  if (has_bias) {
    db_ih = empty<T>({G * H});
    db_hh = empty<T>({G * H});
  }
  T* out[7] = {ptr(dx),    ptr(dh0),    lstm ? ptr(dc0) : nullptr,
               ptr(dw_ih), ptr(dw_hh), has_bias ? ptr(db_ih) : nullptr,
               has_bias ? ptr(db_hh) : nullptr};
  {
    py::gil_scoped_release release;
    DeviceMem ddy = upload(hdy, {T_, B, H}), ddh = upload(hdh, {B, H}), ddc = upload(hdc, {B, H});
    DeviceMem res[7] = {DeviceMem(bytes_of<T>({T_, B, I})), DeviceMem(bytes_of<T>({B, H})),
                        DeviceMem(lstm ? bytes_of<T>({B, H}) : 0),
                        DeviceMem(bytes_of<T>({G * H, I})), DeviceMem(bytes_of<T>({G * H, H})),
                        DeviceMem(has_bias ? bytes_of<T>({G * H}) : 0),
                        DeviceMem(has_bias ? bytes_of<T>({G * H}) : 0)};
    BackwardArgs<T> a{};
    a.d = s.d;
    a.x = dptr<T>(s.x);
    a.w_ih = dptr<T>(s.weights->w_ih);
    a.w_hh = dptr<T>(s.weights->w_hh);
    a.lengths = dptr<index_t>(s.lengths);
    a.reverse = s.reverse;
    a.num_threads = 1;
    a.gates = dptr<T>(s.gates);
    a.h_prev = dptr<T>(s.h_prev);
    a.aux = dptr<T>(s.aux);
    a.dy = dptr<T>(ddy);
    a.dh_n = dptr<T>(ddh);
    a.dc_n = dptr<T>(ddc);
    a.dx = dptr<T>(res[0]);
    a.dh0 = dptr<T>(res[1]);
    a.dc0 = dptr<T>(res[2]);
    a.dw_ih = dptr<T>(res[3]);
    a.dw_hh = dptr<T>(res[4]);
    a.db_ih = dptr<T>(res[5]);
    a.db_hh = dptr<T>(res[6]);
    run(kind, a);
    for (int i = 0; i < 7; ++i)
      if (out[i] && res[i].bytes()) res[i].download(out[i]);
  }
  auto opt = [](bool present, const py::array& arr) {
    return present ? py::object(arr) : py::object(py::none());
  };
  return py::make_tuple(dx, dh0, opt(lstm, dc0), dw_ih, dw_hh, opt(has_bias, db_ih),
                        opt(has_bias, db_hh));
}

// ----------------------------------------------------------------------------- device info

py::dict device_info() {
  py::dict d;
  d["built"] = true;
  const Library& lib = library();
  d["library"] = lib.path;
  if (!lib.table) {
    d["available"] = false;
    d["reason"] = lib.error;
    d["device_count"] = 0;
    return d;
  }
  cuda::DeviceInfo info;
  {
    py::gil_scoped_release release;
    lib.table->device_info(&info);
  }
  d["architectures"] = lib.table->architectures;
  d["runtime_version"] = info.runtime_version;
  d["driver_version"] = info.driver_version;
  d["device_count"] = info.device_count;
  const bool ok = info.device >= 0;
  d["available"] = ok;
  d["reason"] = ok ? py::object(py::none()) : py::object(py::str(info.error));
  if (info.name[0]) {
    d["device"] = info.device;
    d["name"] = std::string(info.name);
    d["compute_capability"] = py::make_tuple(info.cc_major, info.cc_minor);
    d["total_memory"] = py::int_(info.total_memory);
  }
  return d;
}

}  // namespace

void register_cuda(py::module_& m) {
  m.def("cuda_device_info", &device_info,
        "What the CUDA build sees: dict with built, available, reason (why not), device_count, "
        "name, compute_capability, total_memory, architectures, runtime/driver versions. "
        "Never raises.");

  py::class_<CudaWeights, std::shared_ptr<CudaWeights>>(
      m, "CudaWeights",
      "One layer/direction's parameters resident on the GPU (PyTorch layout). "
      "CudaWeights(cell, w_ih, w_hh, b_ih=None, b_hh=None); update(...) re-uploads in place.")
      .def(py::init(&make_weights), py::arg("cell"), py::arg("w_ih"), py::arg("w_hh"),
           py::arg("b_ih") = py::none(), py::arg("b_hh") = py::none())
      .def(
          "update",
          [](CudaWeights& w, const py::object& wih, const py::object& whh,
             const py::object& bih, const py::object& bhh) { w.assign(wih, whh, bih, bhh, false); },
          py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
          py::arg("b_hh") = py::none(),
          "Copy new values (same shapes and dtype) into the device buffers.")
      .def("numpy",
           [](const CudaWeights& w) { return w.f64 ? w.to_numpy<double>() : w.to_numpy<float>(); },
           "Host copies (w_ih, w_hh, b_ih | None, b_hh | None).")
      .def_property_readonly("cell", [](const CudaWeights& w) { return int(w.kind); })
      .def_property_readonly("input_size", [](const CudaWeights& w) { return w.I; })
      .def_property_readonly("hidden_size", [](const CudaWeights& w) { return w.H; })
      .def_property_readonly("has_bias", [](const CudaWeights& w) { return w.has_bias; })
      .def_property_readonly("dtype",
                             [](const CudaWeights& w) {
                               return w.f64 ? py::dtype::of<double>() : py::dtype::of<float>();
                             })
      .def_property_readonly("version", [](const CudaWeights& w) { return w.version; });

  py::class_<CudaSaves, std::shared_ptr<CudaSaves>>(
      m, "CudaSaves", "A training forward's x and saved activations, resident on the GPU.")
      .def("numpy",
           [](const CudaSaves& s) { return s.f64 ? s.to_numpy<double>() : s.to_numpy<float>(); },
           "Host copies (gates, h_prev, aux | None), the layout of the CPU kernels' saves.")
      .def("release", &CudaSaves::release, "Free the device memory now.")
      .def_property_readonly("released", [](const CudaSaves& s) { return s.released; })
      .def_property_readonly("cell", [](const CudaSaves& s) { return int(s.kind); });

  m.def(
      "cuda_forward",
      [](int cell, const py::array& x, std::shared_ptr<CudaWeights> weights,
         const py::object& h0, const py::object& c0, const py::object& lengths, bool reverse,
         bool training) {
        const CellKind k = cell_kind(cell);
        if (!weights) throw py::type_error("argument 'weights': expected a CudaWeights");
        check_weights_match(*weights, k, x);
        return weights->f64 ? forward_t<double>(k, x, weights, h0, c0, lengths, reverse, training)
                            : forward_t<float>(k, x, weights, h0, c0, lengths, reverse, training);
      },
      py::arg("cell"), py::arg("x"), py::arg("weights"), py::arg("h0"), py::arg("c0"),
      py::arg("lengths"), py::arg("reverse"), py::arg("training"),
      "Fused forward on the GPU. Returns (y, h_n, c_n | None, CudaSaves | None).");

  m.def(
      "cuda_backward",
      [](int cell, CudaSaves& saves, const py::object& dy, const py::object& dh_n,
         const py::object& dc_n) {
        const CellKind k = cell_kind(cell);
        if (saves.released)
          throw py::value_error("argument 'saves': already released (consumed by a backward?)");
        if (k != saves.kind)
          throw py::value_error(std::string("argument 'saves': made by a ") +
                                cell_name(saves.kind) + " forward, not " + cell_name(k));
        if (saves.weights->version != saves.weights_version)
          throw py::value_error(
              "argument 'saves': the CudaWeights were updated after this forward; run the "
              "forward again");
        return saves.f64 ? backward_t<double>(k, saves, dy, dh_n, dc_n)
                         : backward_t<float>(k, saves, dy, dh_n, dc_n);
      },
      py::arg("cell"), py::arg("saves"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"),
      "Fused backward through time on the GPU. Returns (dx, dh0, dc0 | None, dw_ih, dw_hh, "
      "db_ih | None, db_hh | None).");
}

}  // namespace bind
}  // namespace pyrnn
