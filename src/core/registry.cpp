#include "core/registry.h"

namespace qb {

const char *component_kind_name(component_kind kind) {
    switch (kind) {
    case component_kind::model_format: return "model format";
    case component_kind::quantizer: return "quantizer";
    case component_kind::backend: return "backend";
    case component_kind::evaluation: return "evaluation";
    }
    return "component";
}

const std::vector<component_info> &component_catalog::of(component_kind kind) const {
    switch (kind) {
    case component_kind::model_format: return model_formats;
    case component_kind::quantizer: return quantizers;
    case component_kind::backend: return backends;
    case component_kind::evaluation: return evaluations;
    }
    return evaluations;
}

const component_info *component_catalog::find(component_kind kind, std::string_view name) const {
    for (const auto &c : of(kind))
        if (c.name == name) return &c;
    return nullptr;
}

} // namespace qb
