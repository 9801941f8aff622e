#include "harness/catalog.h"

#include "backends/backend.h"
#include "core/experiment.h"
#include "core/text.h"
#include "eval/evaluation.h"
#include "model/formats.h"
#include "quant/quantizer.h"

#include <fmt/format.h>

namespace qb {

namespace {
template <class R>
std::vector<component_info> infos(const R &r) {
    std::vector<component_info> out;
    for (const auto &e : r.entries()) out.push_back(e.info);
    return out;
}

std::string default_text(const option_spec &s) {
    if (s.required()) return "(required)";
    if (s.default_value.is_string()) return fmt::format("\"{}\"", s.default_value.get<std::string>());
    return s.default_value.dump();
}

void describe_options(std::string &out, const std::vector<option_spec> &options) {
    size_t w_name = 4, w_type = 4, w_def = 7, w_range = 5;
    for (const auto &o : options) {
        w_name = std::max(w_name, o.name.size());
        w_type = std::max(w_type, std::string(option_type_name(o.type)).size());
        w_def = std::max(w_def, default_text(o).size());
        w_range = std::max(w_range, o.range_text().size());
    }
    for (const auto &o : options)
        out += fmt::format("      {:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", o.name, w_name, option_type_name(o.type), w_type,
                           default_text(o), w_def, o.range_text(), w_range, o.help);
}
} // namespace

component_catalog registered_catalog() {
    component_catalog c;
    c.model_formats = infos(model_formats());
    c.quantizers = infos(quantizers());
    c.backends = infos(backends());
    c.evaluations = infos(evaluations());
    return c;
}

std::string describe_registries(const component_catalog &catalog, const std::string &kind) {
    const std::vector<std::pair<std::string, component_kind>> kinds = {
        {"models", component_kind::model_format},
        {"quantizers", component_kind::quantizer},
        {"backends", component_kind::backend},
        {"evaluations", component_kind::evaluation},
    };
    std::vector<std::string> names;
    for (const auto &k : kinds) names.push_back(k.first);
    if (!kind.empty() && std::find(names.begin(), names.end(), kind) == names.end())
        fail("unknown registry '{}'.{}", kind, suggestion_hint(kind, names));
    std::string out;
    if (kind.empty()) {
        out += "experiment (top level; a list sweeps)\n";
        describe_options(out, experiment_top_level_options());
        out += "\n";
    }
    for (const auto &[title, k] : kinds) {
        if (!kind.empty() && kind != title) continue;
        const char *key = k == component_kind::model_format ? "model: {format: <name>, ...}" :
                          k == component_kind::quantizer    ? "quantizer: {name: <name>, ...}" :
                          k == component_kind::backend      ? "backend: {name: <name>, ...}" :
                                                              "evaluations: [{name: <name>, ...}]";
        out += fmt::format("{} ({})\n", title, key);
        for (const auto &info : catalog.of(k)) {
            out += fmt::format("  {:<16} {}\n", info.name, info.summary);
            if (info.options.empty()) out += "      (no options)\n";
            else describe_options(out, info.options);
        }
        out += "\n";
    }
    return out;
}

} // namespace qb
