// Picks the instruction-set build of the kernels once, at import.
#pragma once

#include <string>

#include "pyrnn/common.h"

namespace pyrnn {
namespace bind {

// The table in use; chosen from the CPU's features and the PYRNN_ISA environment variable.
const KernelTable& kernels();

// Names of the builds compiled into this module, best first.
const char* available_isas();

// The builds this CPU (and OS) can run, best first.
std::string supported_isas();

}  // namespace bind
}  // namespace pyrnn
