// Picks the instruction-set build of the kernels once, at import.
#pragma once

#include "pyrnn/common.h"

namespace pyrnn {
namespace bind {

// The table in use; chosen from the CPU's features and the PYRNN_ISA environment variable.
const KernelTable& kernels();

// Names of the builds compiled into this module, best first.
const char* available_isas();

}  // namespace bind
}  // namespace pyrnn
