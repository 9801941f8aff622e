#include "core/experiment.h"

#include "core/text.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace qb {

json component_config::to_json() const {
    json j = options;
    j["name"] = name;
    return j;
}

json experiment_cell::to_json() const {
    json evals = json::array();
    for (const auto &e : evaluations) evals.push_back(e.to_json());
    json m = model.options;
    m["format"] = model.name;
    return json{{"model", m},           {"device", device},          {"dtype", dtype},
                {"seed", seed},         {"quantizer", quantizer.to_json()}, {"backend", backend.to_json()},
                {"evaluations", evals}};
}

std::string experiment_cell::config_hash() const { return json_hash(to_json()); }

std::string experiment_cell::model_key() const {
    json m = model.options;
    m["format"] = model.name;
    return canonical_json(json{{"model", m}, {"device", device}, {"dtype", dtype}});
}

const std::vector<option_spec> &experiment_top_level_options() {
    static const std::vector<option_spec> specs = {
        {"device", option_type::choice, "cpu", "where the model runs", -INFINITY, INFINITY, {"cpu", "cuda"}},
        {"dtype", option_type::choice, "fp32", "element type of the unquantized model", -INFINITY, INFINITY,
         {"fp32", "fp16", "bf16"}},
        {"seed", option_type::integer, 0, "seed for every random choice of the run (data sampling, synthetic inputs)", 0,
         9007199254740991.0},
    };
    return specs;
}

namespace {

const std::vector<std::string> top_level_keys = {"name",      "description", "data_dir", "model",    "device",
                                                 "dtype",     "seed",        "quantizer", "backend", "evaluations",
                                                 "table"};

std::string child_path(const std::string &path, const std::string &key) { return path.empty() ? key : path + "." + key; }

std::string scalar_string(const config_node &node, const std::string &path) {
    if (!node.is_scalar()) throw config_error(node.mark, path, fmt::format("expected a string, got a {}", node.kind_name()));
    return node.scalar;
}

// One component entry: `rtn`, or `{name: rtn, w_bits: [8, 4]}`; returns its sweep alternatives.
std::vector<component_config> parse_component(const config_node &node, const std::string &path, component_kind kind,
                                              const component_catalog &catalog, const std::string &key_field) {
    std::string name;
    const config_node *options = nullptr;
    source_mark name_mark = node.mark;
    if (node.is_scalar()) {
        name = node.scalar;
    } else if (node.is_mapping()) {
        const config_node *n = node.find(key_field);
        if (!n) {
            std::vector<std::string> names;
            for (const auto &c : catalog.of(kind)) names.push_back(c.name);
            throw config_error(node.mark, child_path(path, key_field),
                               fmt::format("missing required key (the {}; one of: {})", component_kind_name(kind), join(names, ", ")));
        }
        name = scalar_string(*n, child_path(path, key_field));
        name_mark = n->mark;
        options = &node;
    } else {
        throw config_error(node.mark, path,
                           fmt::format("expected a {} name or a mapping with '{}', got a {}", component_kind_name(kind), key_field,
                                       node.kind_name()));
    }
    const component_info *info = catalog.find(kind, name);
    if (!info) {
        std::vector<std::string> names;
        for (const auto &c : catalog.of(kind)) names.push_back(c.name);
        throw config_error(name_mark, options ? child_path(path, key_field) : path,
                           fmt::format("unknown {} '{}'.{}", component_kind_name(kind), name, suggestion_hint(name, names)));
    }
    std::vector<std::string> reserved{key_field};
    std::vector<component_config> out;
    for (auto &opts : option_expand(options, info->options, path, node.mark, reserved)) out.push_back({name, std::move(opts)});
    return out;
}

// A component slot that sweeps: a single entry or a list of entries (alternatives).
std::vector<component_config> parse_component_axis(const config_node *node, const std::string &path, component_kind kind,
                                                   const component_catalog &catalog, const std::string &key_field,
                                                   const std::string &default_name, const source_mark &root_mark) {
    std::vector<component_config> out;
    if (!node) {
        config_node fallback;
        fallback.kind = config_node::kind_t::scalar;
        fallback.scalar = default_name;
        fallback.mark = root_mark;
        return parse_component(fallback, path, kind, catalog, key_field);
    }
    if (node->is_sequence()) {
        if (node->items.empty()) throw config_error(node->mark, path, "an empty list gives the sweep no values");
        for (size_t i = 0; i < node->items.size(); ++i) {
            auto alts = parse_component(node->items[i], fmt::format("{}[{}]", path, i), kind, catalog, key_field);
            for (auto &a : alts) {
                for (const auto &seen : out)
                    if (seen.name == a.name && seen.options == a.options)
                        throw config_error(node->items[i].mark, fmt::format("{}[{}]", path, i),
                                           fmt::format("duplicate sweep entry {}", a.to_json().dump()));
                out.push_back(std::move(a));
            }
        }
        return out;
    }
    return parse_component(*node, path, kind, catalog, key_field);
}

std::vector<std::string> parse_string_list(const config_node &node, const std::string &path) {
    std::vector<std::string> out;
    if (node.is_scalar()) return {node.scalar};
    if (!node.is_sequence()) throw config_error(node.mark, path, fmt::format("expected a string or a list of strings, got a {}", node.kind_name()));
    for (size_t i = 0; i < node.items.size(); ++i) out.push_back(scalar_string(node.items[i], fmt::format("{}[{}]", path, i)));
    return out;
}

table_config parse_table(const config_node &node, const std::string &path) {
    if (!node.is_mapping()) throw config_error(node.mark, path, fmt::format("expected a mapping, got a {}", node.kind_name()));
    const std::vector<std::string> keys = {"reference", "reference_value", "reference_melt", "join", "metric", "columns"};
    table_config t;
    for (size_t i = 0; i < node.entries.size(); ++i) {
        const auto &[key, value] = node.entries[i];
        const std::string p = child_path(path, key);
        if (key == "reference") t.reference = scalar_string(value, p);
        else if (key == "reference_value") t.reference_value = scalar_string(value, p);
        else if (key == "reference_melt") t.reference_melt = scalar_string(value, p);
        else if (key == "metric") t.metric = scalar_string(value, p);
        else if (key == "join") t.join = parse_string_list(value, p);
        else if (key == "columns") t.columns = parse_string_list(value, p);
        else throw config_error(node.key_marks[i], p, "unknown key." + suggestion_hint(key, keys));
    }
    if (!t.reference.empty() && t.metric.empty())
        throw config_error(node.mark, child_path(path, "metric"), "a reference table needs the metric it is compared with");
    return t;
}

} // namespace

experiment experiment_parse(const config_node &root, const std::filesystem::path &file, const component_catalog &catalog) {
    if (!root.is_mapping()) throw config_error(root.mark, "", fmt::format("expected a mapping at the top level, got a {}", root.kind_name()));
    for (size_t i = 0; i < root.entries.size(); ++i) {
        const auto &key = root.entries[i].first;
        if (std::find(top_level_keys.begin(), top_level_keys.end(), key) == top_level_keys.end())
            throw config_error(root.key_marks[i], key, "unknown key." + suggestion_hint(key, top_level_keys));
    }

    experiment exp;
    exp.file = file;
    exp.name = file.stem().string();
    if (const auto *n = root.find("name")) {
        exp.name = scalar_string(*n, "name");
        bool ok = !exp.name.empty() && std::all_of(exp.name.begin(), exp.name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
        });
        if (!ok) throw config_error(n->mark, "name", fmt::format("expected a name of letters, digits, '_', '-', '.' (it names the results folder), got \"{}\"", exp.name));
    }
    if (const auto *n = root.find("description")) exp.description = scalar_string(*n, "description");
    if (const auto *n = root.find("data_dir")) exp.data_dir = scalar_string(*n, "data_dir");
    if (const auto *n = root.find("table")) exp.table = parse_table(*n, "table");

    // Top-level scalars with sweep support.
    std::map<std::string, std::vector<json>> top;
    for (const auto &spec : experiment_top_level_options()) {
        const config_node *n = root.find(spec.name);
        top[spec.name] = n ? option_parse_sweep(*n, spec, spec.name) : std::vector<json>{spec.default_value};
    }

    const config_node *model_node = root.find("model");
    if (!model_node) throw config_error(root.mark, "model", "missing required key (which model to run; see `qbench list`)");
    auto models = parse_component_axis(model_node, "model", component_kind::model_format, catalog, "format", "", root.mark);
    // Tables and logs name a model by `name`; when the file leaves it out, the architecture
    // config or the weight file's stem names it.
    for (auto &m : models)
        if (m.options.contains("name") && m.options["name"] == "") {
            if (m.options.contains("config") && m.options["config"].is_string()) m.options["name"] = m.options["config"];
            else if (m.options.contains("path") && m.options["path"].is_string())
                m.options["name"] = std::filesystem::path(m.options["path"].get<std::string>()).stem().string();
        }
    auto quantizers = parse_component_axis(root.find("quantizer"), "quantizer", component_kind::quantizer, catalog, "name", "none", root.mark);
    auto backends = parse_component_axis(root.find("backend"), "backend", component_kind::backend, catalog, "name", "torch_ref", root.mark);

    const config_node *evals_node = root.find("evaluations");
    if (!evals_node) throw config_error(root.mark, "evaluations", "missing required key (a list of evaluations; see `qbench list`)");
    std::vector<std::vector<component_config>> eval_axes;
    if (evals_node->is_sequence()) {
        if (evals_node->items.empty()) throw config_error(evals_node->mark, "evaluations", "the list is empty: name at least one evaluation");
        for (size_t i = 0; i < evals_node->items.size(); ++i)
            eval_axes.push_back(parse_component(evals_node->items[i], fmt::format("evaluations[{}]", i), component_kind::evaluation, catalog, "name"));
    } else {
        eval_axes.push_back(parse_component(*evals_node, "evaluations", component_kind::evaluation, catalog, "name"));
    }
    // Each evaluation entry contributes one of its alternatives to a cell.
    std::vector<std::vector<component_config>> eval_sets{{}};
    for (const auto &axis : eval_axes) {
        std::vector<std::vector<component_config>> next;
        for (const auto &partial : eval_sets)
            for (const auto &alt : axis) {
                auto s = partial;
                s.push_back(alt);
                next.push_back(std::move(s));
            }
        eval_sets = std::move(next);
    }

    // Model-major order: everything that needs a reload (model, device, dtype) varies slowest.
    for (const auto &model : models)
        for (const auto &device : top["device"])
            for (const auto &dtype : top["dtype"])
                for (const auto &seed : top["seed"])
                    for (const auto &q : quantizers)
                        for (const auto &b : backends)
                            for (const auto &evals : eval_sets) {
                                experiment_cell cell;
                                cell.model = model;
                                cell.device = device.get<std::string>();
                                cell.dtype = dtype.get<std::string>();
                                cell.seed = seed.get<uint64_t>();
                                cell.quantizer = q;
                                cell.backend = b;
                                cell.evaluations = evals;
                                exp.cells.push_back(std::move(cell));
                            }
    return exp;
}

experiment experiment_load(const std::filesystem::path &file, const component_catalog &catalog) {
    return experiment_parse(config_load_file(file), file, catalog);
}

component_config model_block_load(const std::filesystem::path &file, const component_catalog &catalog) {
    const config_node root = config_load_file(file);
    const config_node *node = root.is_mapping() ? root.find("model") : nullptr;
    if (!node) throw config_error(root.mark, "model", "missing required key (the model block: format and its options)");
    auto models = parse_component_axis(node, "model", component_kind::model_format, catalog, "format", "", root.mark);
    if (models.size() != 1) throw config_error(node->mark, "model", fmt::format("names {} models; one is needed here", models.size()));
    return models.front();
}

} // namespace qb
