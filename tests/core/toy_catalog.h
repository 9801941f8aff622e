// A small catalog for parser tests: the parser must work from schemas alone (no LibTorch).
#pragma once
#include "core/registry.h"

namespace qb::test {

inline component_catalog toy_catalog() {
    component_catalog c;
    c.model_formats = {{"synthetic", "toy", {
        {"name", option_type::string, "", "display name"},
        {"config", option_type::string, json(), "architecture"},
        {"seed", option_type::integer, 0, "weights seed", 0, 1000},
    }}};
    c.quantizers = {
        {"none", "nothing", {}},
        {"rtn", "round to nearest", {
            {"w_bits", option_type::integer, 8, "weight bits", 2, 8},
            {"group_size", option_type::integer, 0, "group", 0, 4096},
            {"symmetric", option_type::boolean, true, "symmetric"},
            {"skip", option_type::string_list, json::array(), "layers kept in full precision"},
        }},
    };
    c.backends = {{"torch_ref", "reference", {}}, {"cublaslt_w8a8", "int8", {{"epilogue", option_type::choice, "fused", "", -INFINITY, INFINITY, {"fused", "none"}}}}};
    c.evaluations = {
        {"kl_divergence", "kld", {{"sequences", option_type::integer, 4, "", 1, 100}, {"seq_len", option_type::integer, 128, "", 2, 4096}}},
        {"latency", "time", {{"repeats", option_type::integer, 10, "", 1, 1000}, {"scale", option_type::number, 1.0, "", 0.0, 2.0}}},
    };
    return c;
}

} // namespace qb::test
