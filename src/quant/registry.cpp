// THE list of quantizers: adding one = one entry here + one file.
#include "quant/quantizer.h"

namespace qb {

const registry<quantizer_entry> &quantizers() {
    static const registry<quantizer_entry> r(
        component_kind::quantizer,
        {
            {{"none", "no quantization: the model in its own dtype (the baseline row)", {}},
             make_none_quantizer},
            {{"rtn",
              "round-to-nearest weights (half to even), per channel or per group; activations unquantized (WxA16)",
              {
                  {"w_bits", option_type::integer, 8, "weight bits", 2, 8},
                  {"group_size", option_type::integer, 0, "weights per scale along K (0 = one per output channel)", 0, 65536},
                  {"symmetric", option_type::boolean, true, "symmetric (absmax) or asymmetric (min/max with zero point)"},
              }},
             make_rtn_quantizer},
        });
    return r;
}

} // namespace qb
