// THE list of kernel back-ends: adding one = one entry here + one adapter file (+ its kernel in
// kernels/<name>/). CUDA-only entries go under QBENCH_HAVE_CUDA.
#include "backends/backend.h"

#include "config.h"

namespace qb {

const registry<backend_entry> &backends() {
    static const registry<backend_entry> r(
        component_kind::backend,
        {
            {{"torch_ref", "reference: dequantize each weight to the model dtype, then an ordinary matmul (CPU or GPU)", {}},
             make_torch_ref_backend},
        });
    return r;
}

} // namespace qb
