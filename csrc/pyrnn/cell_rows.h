// What a cell's pointwise update sees for one batch row and one thread's block of n units.
// "Block layout" [G][n]: gate g of unit k at g*n + k (the packed per-thread layout).
// "Standard layout" [G][H]: gate g of unit k at g*H + k, pointers already offset to the block.
#pragma once

#include <algorithm>
#include <type_traits>

#include "common.h"

namespace pyrnn {

// Cells that can activate many rows' gates in one pass (Cell::activate_rows).
template <class C, class = void>
struct activates_rows : std::false_type {};
template <class C>
struct activates_rows<C, std::void_t<decltype(&C::activate_rows)>> : std::true_type {};

// Several rows of every unit at once (Cell::activate_rows, Cell::activate_late_rows).
template <typename T>
struct ForwardRows {
  T* a;            // [rows, G*H] the rows' recurrent projections, activated in place
  const T* px;     // [rows, G*H] input projections + input-side bias
  index_t rows;
  index_t H;
  const T* c;      // [rows, H] cell state (entering the step, or c' for activate_late_rows)
  const T* peep;   // [3][H] peephole weights (peephole LSTM only)
  T* scratch;      // [rows, H]
};

template <typename T>
struct ForwardRow {
  index_t n;      // units in this block
  index_t H;      // gate stride of the standard layout
  const T* px;    // [G][n] block: input projection + input-side bias
  T* ph;          // [G][n] block: recurrent projection h W_hh^T (no bias); scratch, overwritten
  const T* bh;    // [G][n] block: recurrent-side bias (GRU only), or nullptr
  const T* h;     // [n] state entering the step
  T* c;           // [n] LSTM cell state, updated in place
  T* h_out;       // [n] state leaving the step
  T* y;           // [n] output at this row's time index
  T* gates;       // [G][H] standard: saved post-activation gates, or nullptr (inference)
  T* aux;         // [n] saved auxiliary value (see ForwardArgs::aux), or nullptr
  const T* peep;  // [3][H] standard: peephole weights w_ci, w_cf, w_co (peephole LSTM only)
  T* rh;          // [n] two-phase cells (reset-before GRU): r*h, written by forward_a
};

template <typename T>
struct BackwardRow {
  index_t n;
  index_t H;
  const T* gates;  // [G][H] standard: saved post-activation gates
  const T* h;      // [n] saved state entering the step
  const T* aux;    // [n] saved auxiliary value
  T* dh;           // [n] in: dL/dh leaving the step; out: direct (non-GEMM) part of dL/dh entering it
  T* dc;           // [n] in/out: LSTM dL/dc (leaving -> entering)
  T* dgh;          // [G][H] standard: dL/d(recurrent pre-activation)
  T* dgx;          // [G][H] standard: dL/d(input pre-activation); same as dgh except for GRU
  T* tmp;          // [n] scratch
  const T* peep;   // [3][H] standard: peephole weights (peephole LSTM only), else nullptr
  T* dpeep;        // [3][H] standard: peephole gradients, accumulated (+=) over steps and rows
  const T* drh;    // [n] two-phase cells: dL/d(r*h) for backward_b (after the second GEMM)
};

// Save a row's activations a [G][n] (block layout) as its standard-layout gates. With one
// thread the driver points ph at the saved gates themselves; then there is nothing to copy.
template <typename T>
inline void save_gates(const T* a /*[G][n]*/, int G, const ForwardRow<T>& r) {
  if (!r.gates || r.gates == a) return;
  for (int q = 0; q < G; ++q) std::copy_n(a + q * r.n, r.n, r.gates + q * r.H);
}

}  // namespace pyrnn
