# Optional CUDA kernels, included from CMakeLists.txt only with -DPYRNN_CUDA=ON
# (pip: -Ccmake.define.PYRNN_CUDA=ON). The default build never looks for nvcc.
#
# Builds libpyrnn_kernels_cuda (csrc/cuda/*.cu, cuBLAS, CUDA runtime linked statically) beside
# _core, and adds csrc/bindings/register_cuda.cpp to _core with PYRNN_HAVE_CUDA. _core loads the
# library with dlopen on first use, so a CUDA build still imports where the CUDA libraries are
# missing, and pyrnn.cuda.is_available() says why.
#
# Without a CUDA compiler or cuBLAS this warns and the build goes on CPU-only.
#   CMAKE_CUDA_ARCHITECTURES (or the CUDAARCHS environment variable) overrides the GPU list.
#   PYRNN_CUBLAS_ROOT (cache or environment variable) points at a cuBLAS outside the toolkit, e.g.
#   the nvidia-cublas wheel's nvidia/cu13 folder; an installed nvidia-cublas wheel is found by itself.

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(WARNING "pyrnn: PYRNN_CUDA=ON but no CUDA compiler was found, so the CUDA kernels are "
                  "NOT built; building the CPU kernels only. Put nvcc on PATH, or set CUDACXX or "
                  "CMAKE_CUDA_COMPILER to it.")
  return()
endif()

# Default GPU architectures: Turing to Hopper as native code, plus Hopper PTX that newer GPUs
# compile at load time; native Blackwell code too where the compiler knows it.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
  set(PYRNN_CUDA_DEFAULT_ARCHS 75-real 80-real 86-real 89-real 90)
  execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --list-gpu-code
                  OUTPUT_VARIABLE PYRNN_NVCC_GPU_CODES ERROR_QUIET)
  foreach(arch 100 120)
    if(PYRNN_NVCC_GPU_CODES MATCHES "sm_${arch}")
      list(APPEND PYRNN_CUDA_DEFAULT_ARCHS ${arch}-real)
    endif()
  endforeach()
  set(CMAKE_CUDA_ARCHITECTURES "${PYRNN_CUDA_DEFAULT_ARCHS}" CACHE STRING
      "GPU architectures of the pyrnn CUDA kernels")
endif()

enable_language(CUDA)
find_package(CUDAToolkit)
if(NOT CUDAToolkit_FOUND)
  message(WARNING "pyrnn: PYRNN_CUDA=ON and nvcc was found, but not the CUDA toolkit around it, "
                  "so the CUDA kernels are NOT built; building the CPU kernels only.")
  return()
endif()
message(STATUS "pyrnn: CUDA ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), "
               "architectures ${CMAKE_CUDA_ARCHITECTURES}")

# cuBLAS: the toolkit's, else PYRNN_CUBLAS_ROOT, else an installed nvidia-cublas wheel.
set(PYRNN_CUBLAS_TARGET "")
if(TARGET CUDA::cublas)
  set(PYRNN_CUBLAS_TARGET CUDA::cublas)
  get_target_property(PYRNN_CUBLAS_LIBRARY CUDA::cublas IMPORTED_LOCATION)
else()
  set(PYRNN_CUBLAS_ROOT "$ENV{PYRNN_CUBLAS_ROOT}" CACHE PATH
      "A cuBLAS outside the CUDA toolkit (folder with include/ and lib/)")
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
            "import importlib.util as u
dirs = []
for name in ('nvidia.cu13', 'nvidia.cublas', 'nvidia.cu12'):
    try:
        spec = u.find_spec(name)
    except Exception:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs += list(spec.submodule_search_locations)
print(';'.join(dirs))"
    OUTPUT_VARIABLE PYRNN_CUBLAS_WHEEL_DIRS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  find_path(PYRNN_CUBLAS_INCLUDE_DIR cublas_v2.h
            HINTS ${PYRNN_CUBLAS_ROOT} ${PYRNN_CUBLAS_WHEEL_DIRS} PATH_SUFFIXES include)
  find_library(PYRNN_CUBLAS_LIBRARY NAMES cublas libcublas.so.13 libcublas.so.12
               HINTS ${PYRNN_CUBLAS_ROOT} ${PYRNN_CUBLAS_WHEEL_DIRS} PATH_SUFFIXES lib lib64)
  if(PYRNN_CUBLAS_INCLUDE_DIR AND PYRNN_CUBLAS_LIBRARY)
    add_library(pyrnn_cublas SHARED IMPORTED)
    set_target_properties(pyrnn_cublas PROPERTIES IMPORTED_LOCATION "${PYRNN_CUBLAS_LIBRARY}"
                          INTERFACE_INCLUDE_DIRECTORIES "${PYRNN_CUBLAS_INCLUDE_DIR}")
    set(PYRNN_CUBLAS_TARGET pyrnn_cublas)
  endif()
endif()
if(NOT PYRNN_CUBLAS_TARGET)
  message(WARNING "pyrnn: PYRNN_CUDA=ON and nvcc was found, but cuBLAS was not (neither in the "
                  "CUDA toolkit at ${CUDAToolkit_LIBRARY_DIR}, nor PYRNN_CUBLAS_ROOT, nor an "
                  "installed nvidia-cublas wheel), so the CUDA kernels are NOT built; building "
                  "the CPU kernels only.")
  return()
endif()
message(STATUS "pyrnn: cuBLAS ${PYRNN_CUBLAS_LIBRARY}")
get_filename_component(PYRNN_CUBLAS_LIBDIR "${PYRNN_CUBLAS_LIBRARY}" DIRECTORY)

add_library(pyrnn_kernels_cuda SHARED
  csrc/cuda/kernel_table.cu csrc/cuda/blas.cu
  csrc/cuda/lstm.cu csrc/cuda/gru.cu csrc/cuda/rnn.cu)
target_include_directories(pyrnn_kernels_cuda PRIVATE csrc)
target_link_libraries(pyrnn_kernels_cuda PRIVATE ${PYRNN_CUBLAS_TARGET})
target_compile_options(pyrnn_kernels_cuda PRIVATE
                       $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
set_target_properties(pyrnn_kernels_cuda PROPERTIES
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_RUNTIME_LIBRARY Static          # no libcudart.so needed at run time
  CUDA_VISIBILITY_PRESET hidden        # only pyrnn_cuda_kernel_table is exported
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  INSTALL_RPATH "${PYRNN_CUBLAS_LIBDIR}")  # where libcublas was found
install(TARGETS pyrnn_kernels_cuda LIBRARY DESTINATION pyrnn)

target_sources(_core PRIVATE csrc/bindings/register_cuda.cpp)
target_compile_definitions(_core PRIVATE PYRNN_HAVE_CUDA)
target_link_libraries(_core PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(_core pyrnn_kernels_cuda)  # loaded at run time, not linked
