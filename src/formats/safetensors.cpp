#include "formats/safetensors.h"

#include "core/error.h"
#include "core/text.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>

namespace qb {

namespace fs = std::filesystem;

namespace {

// The dtypes of the safetensors spec, so that a refused one is named as such rather than as garbage.
constexpr std::string_view known_dtypes[] = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F64", "C64",
                                             "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"};

bool dtype_from_name(std::string_view name, tensor_dtype *dtype) {
    if (name == "F32") *dtype = tensor_dtype::f32;
    else if (name == "F16") *dtype = tensor_dtype::f16;
    else if (name == "BF16") *dtype = tensor_dtype::bf16;
    else return false;
    return true;
}

// A JSON value for messages, shortened.
std::string shown(const json &v) {
    std::string s = v.dump();
    return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

uint64_t read_u64_le(const uint8_t *p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

std::vector<int64_t> parse_shape(const fs::path &file, const std::string &name, const json &shape) {
    if (!shape.is_array()) fail("{}: tensor '{}': \"shape\" must be an array of integers, found {}", file.string(), name, shown(shape));
    std::vector<int64_t> dims;
    for (const auto &d : shape) {
        if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 62))
            fail("{}: tensor '{}': \"shape\" must hold non-negative integers, found {}", file.string(), name, shown(shape));
        dims.push_back(d.get<int64_t>());
    }
    return dims;
}

json read_json_file(const fs::path &path, std::string_view what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open {} {}", what, path.string());
    try {
        return json::parse(in);
    } catch (const json::exception &e) {
        fail("{} {} is not valid JSON: {}", what, path.string(), e.what());
    }
}

} // namespace

safetensors_file::safetensors_file(const fs::path &path) : file_(path), tensors_(path.string()) {
    const std::string where = path.string();
    const uint64_t size = file_.size();
    if (size < 8) fail("{}: file is {} bytes, too small for a safetensors file (8-byte header length first)", where, size);
    header_bytes_ = read_u64_le(file_.data());
    if (header_bytes_ > safetensors_max_header_bytes)
        fail("{}: header length {} exceeds the safetensors limit of {} bytes (corrupt, or not a safetensors file)", where,
             header_bytes_, safetensors_max_header_bytes);
    if (header_bytes_ > size - 8)
        fail("{}: header length {} runs past the end of the file ({} bytes after the length field; truncated?)", where,
             header_bytes_, size - 8);

    const auto *header_begin = reinterpret_cast<const char *>(file_.data() + 8);
    json header;
    try {
        header = json::parse(header_begin, header_begin + header_bytes_);
    } catch (const json::exception &e) {
        fail("{}: the {}-byte header is not valid JSON: {}", where, header_bytes_, e.what());
    }
    if (!header.is_object()) fail("{}: the header must be a JSON object, found {}", where, shown(header));

    const uint64_t data_start = 8 + header_bytes_;
    const uint64_t data_size = size - data_start;
    struct extent {
        uint64_t begin, end;
        std::string name;
    };
    std::vector<extent> extents;
    for (const auto &[name, entry] : header.items()) {
        if (name == "__metadata__") {
            const bool strings = entry.is_object() && std::all_of(entry.begin(), entry.end(), [](const json &v) { return v.is_string(); });
            if (!strings) fail("{}: \"__metadata__\" must be an object of strings, found {}", where, shown(entry));
            metadata_ = entry;
            continue;
        }
        if (!entry.is_object()) fail("{}: tensor '{}': expected an object with dtype, shape, data_offsets, found {}", where, name, shown(entry));
        for (const char *key : {"dtype", "shape", "data_offsets"})
            if (!entry.contains(key)) fail("{}: tensor '{}' has no \"{}\"", where, name, key);
        const auto &dtype_j = entry["dtype"];
        if (!dtype_j.is_string()) fail("{}: tensor '{}': \"dtype\" must be a string, found {}", where, name, shown(dtype_j));
        const std::string dtype_name = dtype_j.get<std::string>();
        tensor_view t;
        t.name = name;
        if (!dtype_from_name(dtype_name, &t.dtype)) {
            const bool known = std::find(std::begin(known_dtypes), std::end(known_dtypes), dtype_name) != std::end(known_dtypes);
            fail("{}: tensor '{}' has {} dtype {}; qbench reads F32, F16 and BF16", where, name,
                 known ? "the unsupported" : "the unknown", dtype_name);
        }
        t.shape = parse_shape(path, name, entry["shape"]);
        const auto &off = entry["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            fail("{}: tensor '{}': \"data_offsets\" must be [begin, end] (non-negative integers), found {}", where, name, shown(off));
        const auto begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        if (begin > end) fail("{}: tensor '{}': data_offsets [{}, {}) end before they begin", where, name, begin, end);
        if (end > data_size)
            fail("{}: tensor '{}': data_offsets [{}, {}) run past the end of the data section ({} bytes; file truncated?)", where, name,
                 begin, end, data_size);
        size_t expected = 0;
        if (auto st = tensor_storage_bytes(t.dtype, t.shape, &expected); !st) fail("{}: tensor '{}': {}", where, name, st.reason);
        if (end - begin != expected)
            fail("{}: tensor '{}' {} {}: data_offsets [{}, {}) hold {} bytes, the shape needs {}", where, name, dtype_name,
                 tensor_shape_text(t.shape), begin, end, end - begin, expected);
        t.data = file_.data() + data_start + begin;
        t.bytes = expected;
        extents.push_back({begin, end, name});
        tensors_.add(std::move(t)); // JSON object keys are unique, so never a duplicate
    }

    // The tensors must tile [0, data_size): sort by offset and walk.
    std::sort(extents.begin(), extents.end(), [](const extent &a, const extent &b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
    uint64_t covered = 0;
    const extent *prev = nullptr;
    for (const auto &e : extents) {
        if (e.begin < covered)
            fail("{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap in the data section", where, prev->name, prev->begin, prev->end,
                 e.name, e.begin, e.end);
        if (e.begin > covered)
            fail("{}: bytes [{}, {}) of the data section belong to no tensor (before '{}'); the format allows no holes", where, covered,
                 e.begin, e.name);
        covered = e.end;
        prev = &e;
    }
    if (covered != data_size)
        fail("{}: {} bytes after the last tensor's data (data section is {} bytes, tensors cover {})", where, data_size - covered,
             data_size, covered);
}

safetensors_checkpoint::safetensors_checkpoint(const fs::path &path) : tensors_(path.string()) {
    fs::path index_path, single_path;
    if (fs::is_directory(path)) {
        if (fs::exists(path / "model.safetensors.index.json")) index_path = path / "model.safetensors.index.json";
        else if (fs::exists(path / "model.safetensors")) single_path = path / "model.safetensors";
        else fail("no safetensors checkpoint in {}: expected model.safetensors or model.safetensors.index.json", path.string());
    } else if (path.extension() == ".json") {
        index_path = path;
    } else {
        single_path = path;
    }

    if (!single_path.empty()) {
        shards_.emplace_back(single_path);
        for (const auto &t : shards_.back().tensors().all()) tensors_.add(t);
        return;
    }

    const json index = read_json_file(index_path, "safetensors index");
    const std::string where = index_path.string();
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        fail("{}: expected an object with \"weight_map\": {{tensor: shard file}}", where);
    if (index.contains("metadata")) index_metadata_ = index["metadata"];

    // Shards in order of first mention; each is opened once.
    std::vector<std::string> shard_names;
    std::map<std::string, std::vector<std::string>> tensors_of_shard;
    for (const auto &[tensor, shard] : index["weight_map"].items()) {
        if (!shard.is_string()) fail("{}: weight_map['{}'] must be a shard file name, found {}", where, tensor, shown(shard));
        const auto name = shard.get<std::string>();
        auto [it, inserted] = tensors_of_shard.try_emplace(name);
        if (inserted) shard_names.push_back(name);
        it->second.push_back(tensor);
    }
    if (shard_names.empty()) fail("{}: weight_map is empty", where);

    const fs::path dir = index_path.parent_path();
    std::map<std::string, std::string> shard_of; // tensor -> shard that holds it
    for (const auto &name : shard_names) {
        const auto &listed = tensors_of_shard[name];
        const fs::path shard_path = dir / name;
        if (!fs::exists(shard_path))
            fail("{}: shard {} (listed for {} tensors, e.g. '{}') not found in {}", where, name, listed.size(), listed.front(), dir.string());
        shards_.emplace_back(shard_path);
        const auto &shard = shards_.back();
        for (const auto &tensor : listed)
            if (!shard.tensors().find(tensor))
                fail("{}: weight_map puts tensor '{}' in {}, which does not contain it ({} tensors there)", where, tensor, name,
                     shard.tensors().size());
        for (const auto &t : shard.tensors().all()) {
            if (!tensors_.add(t)) fail("tensor '{}' is in two shards of {}: {} and {}", t.name, where, shard_of[t.name], name);
            shard_of[t.name] = name;
        }
    }
}

json hf_config_read(const fs::path &path) {
    const fs::path file = fs::is_directory(path) ? path / "config.json" : path;
    if (!fs::exists(file)) fail("Hugging Face config not found: {}", file.string());
    json config = read_json_file(file, "Hugging Face config");
    if (!config.is_object()) fail("{}: expected a JSON object, found {}", file.string(), shown(config));

    auto check = [&](const json &obj, const std::string &prefix, std::initializer_list<const char *> keys, auto is_ok, const char *what) {
        for (const char *key : keys)
            if (obj.contains(key) && !obj[key].is_null() && !is_ok(obj[key]))
                fail("{}: '{}{}' should be {}, found {}", file.string(), prefix, key, what, shown(obj[key]));
    };
    const auto is_int = [](const json &v) { return v.is_number_integer(); };
    const auto is_num = [](const json &v) { return v.is_number(); };
    const auto is_bool = [](const json &v) { return v.is_boolean(); };
    check(config, "",
          {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
           "max_position_embeddings", "head_dim"},
          is_int, "an integer");
    check(config, "", {"rms_norm_eps", "rope_theta"}, is_num, "a number");
    check(config, "", {"tie_word_embeddings", "attention_bias"}, is_bool, "a boolean");
    if (config.contains("rope_scaling") && !config["rope_scaling"].is_null()) {
        const auto &rs = config["rope_scaling"];
        if (!rs.is_object()) fail("{}: 'rope_scaling' should be null or an object, found {}", file.string(), shown(rs));
        check(rs, "rope_scaling.", {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}, is_num,
              "a number");
        check(rs, "rope_scaling.", {"rope_type", "type"}, [](const json &v) { return v.is_string(); }, "a string");
    }
    return config;
}

} // namespace qb
