// One explicit registry per kind of component (model formats, quantizers, back-ends,
// evaluations). Each registry is a list written out in one function (src/*/registry.cpp), not
// self-registration: no static-initialization order, nothing dropped by the linker.
#pragma once
#include "core/config_tree.h"
#include "core/error.h"
#include "core/options.h"
#include "core/text.h"

#include <string>
#include <vector>

namespace qb {

enum class component_kind { model_format, quantizer, backend, evaluation };
const char *component_kind_name(component_kind kind); // "model format", "quantizer", ...

// What every registered component says about itself; `qbench list` prints this.
struct component_info {
    std::string name;                 // registry key, also the YAML value: quantizer: {name: rtn}
    std::string summary;              // one line
    std::vector<option_spec> options; // validated before the component is created
};

template <class Entry>
class registry {
public:
    registry(component_kind kind, std::vector<Entry> entries) : kind_(kind), entries_(std::move(entries)) {
        for (size_t i = 0; i < entries_.size(); ++i)
            for (size_t j = 0; j < i; ++j)
                if (entries_[i].info.name == entries_[j].info.name)
                    fail("{} '{}' is registered twice", component_kind_name(kind_), entries_[i].info.name);
    }

    component_kind kind() const { return kind_; }
    const std::vector<Entry> &entries() const { return entries_; }

    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto &e : entries_) out.push_back(e.info.name);
        return out;
    }

    const Entry *find(std::string_view name) const {
        for (const auto &e : entries_)
            if (e.info.name == name) return &e;
        return nullptr;
    }

    // "unknown quantizer 'rnt'. Did you mean: rtn? Available: none, rtn"
    std::string unknown_message(std::string_view name) const {
        return fmt::format("unknown {} '{}'.{}", component_kind_name(kind_), name, suggestion_hint(name, names()));
    }

    const Entry &get(std::string_view name) const {
        if (const Entry *e = find(name)) return *e;
        throw error(unknown_message(name));
    }

private:
    component_kind kind_;
    std::vector<Entry> entries_;
};

// The option schemas of all registered components, by kind: what the experiment parser needs,
// without the factories (so the parser stays torch-free and testable with a toy catalog).
struct component_catalog {
    std::vector<component_info> model_formats, quantizers, backends, evaluations;
    const std::vector<component_info> &of(component_kind kind) const;
    const component_info *find(component_kind kind, std::string_view name) const;
};

} // namespace qb
