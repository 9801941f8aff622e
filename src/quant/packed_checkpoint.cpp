// Packed quantized checkpoints (packed_checkpoint.h, docs/packed-format.md).
#include "quant/packed_checkpoint.h"

#include "config.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "model/checkpoints.h"
#include "tokenizer/tokenizer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <fstream>
#include <numeric>

namespace qb {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "the packed format is little-endian; this host is not");

namespace {

constexpr char magic[8] = {'Q', 'B', 'Q', 'P', 'A', 'C', 'K', '\0'};
constexpr int64_t alignment = 64;
constexpr int64_t fixed_header_bytes = 24;

int64_t align_up(int64_t v) { return (v + alignment - 1) / alignment * alignment; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Values per chunk and bytes per chunk: lcm(bits, 8) bits hold 8 / gcd values in bits / gcd bytes
// (6 bits: 4 values in 3 bytes; 4 bits: 2 in 1; 3, 5, 7 bits: 8 values in 3, 5, 7 bytes).
struct chunking {
    int values, bytes;
};
chunking chunking_of(int bits) {
    if (bits < 1 || bits > 8) fail("pack_codes: bits must be in [1, 8] (bits={})", bits);
    const int g = std::gcd(bits, 8);
    return {8 / g, bits / g};
}

// Raw tensors are stored in the model's float dtypes (names of llama.h) or int8.
at::ScalarType dtype_of_name(const std::string &name) { return name == "int8" ? at::kChar : dtype_from_name(name); }
std::string name_of_dtype(at::ScalarType t) {
    if (t == at::kChar) return "int8";
    const std::string n = dtype_name(t);
    if (n == "other") fail("packed checkpoint: cannot store dtype {}", c10::toString(t));
    return n;
}


// The raw (unquantized) tensors of a model by stable name, in file order.
std::vector<std::pair<std::string, at::Tensor>> raw_tensors(const llama_model &m) {
    std::vector<std::pair<std::string, at::Tensor>> out = {{"tok_embeddings", m.tok_embeddings}, {"final_norm", m.final_norm}};
    if (!m.config.tied_embeddings) out.push_back({"lm_head", m.lm_head});
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const std::string p = fmt::format("layers.{}.", i);
        out.push_back({p + "attn_norm", m.layers[i].attn_norm});
        out.push_back({p + "ffn_norm", m.layers[i].ffn_norm});
    }
    for (const auto *l : m.linears()) {
        if (!l->qweight) out.push_back({l->name + ".weight", l->weight});
        if (l->bias.defined()) out.push_back({l->name + ".bias", l->bias});
    }
    return out;
}

int64_t raw_bytes(const at::Tensor &t) { return t.numel() * int64_t(c10::elementSize(t.scalar_type())); }

at::Tensor stored_scales(const quantized_weight &w, int bytes_per_scale) {
    return w.scales.to(bytes_per_scale == 2 ? at::kHalf : at::kFloat).contiguous();
}

class writer {
public:
    explicit writer(const fs::path &file) : file_(file), out_(file, std::ios::binary | std::ios::trunc) {
        if (!out_) fail("cannot write {}", file.string());
    }
    void bytes(const void *p, int64_t n) {
        out_.write(static_cast<const char *>(p), std::streamsize(n));
        pos_ += n;
        if (!out_) fail("writing {} failed at byte {} (disk full?)", file_.string(), pos_);
    }
    void pad_to(int64_t target) {
        static const char zeros[alignment] = {};
        while (pos_ < target) bytes(zeros, std::min<int64_t>(alignment, target - pos_));
    }
    // A tensor's bytes (moved to the CPU, contiguous) at `at`; checks the expected size.
    void blob(int64_t at, const at::Tensor &t, int64_t expect, const std::string &what) {
        pad_to(at);
        auto c = t.to(at::kCPU).contiguous();
        if (raw_bytes(c) != expect) fail("packed checkpoint: {} has {} bytes, the header says {}", what, raw_bytes(c), expect);
        bytes(c.data_ptr(), expect);
    }
    int64_t pos() const { return pos_; }
    void close() {
        out_.close();
        if (!out_) fail("closing {} failed", file_.string());
    }

private:
    fs::path file_;
    std::ofstream out_;
    int64_t pos_ = 0;
};

} // namespace

packed_linear_size packed_linear_bytes(int64_t n, int64_t k, int bits, int64_t group_size, bool symmetric, int bytes_per_scale) {
    const int64_t groups = n * (group_size > 0 ? k / group_size : 1);
    packed_linear_size s;
    s.code_bytes = ceil_div(n * k * bits, 8);
    s.scale_bytes = groups * bytes_per_scale;
    s.zero_point_bytes = symmetric ? 0 : ceil_div(groups * bits, 8);
    return s;
}

int stored_scale_bytes(const quantized_weight &w) {
    auto s = w.scales.to(at::kFloat);
    return at::equal(s.to(at::kHalf).to(at::kFloat), s) ? 2 : 4;
}

at::Tensor pack_codes(const at::Tensor &codes, int bits) {
    const auto [values, chunk_bytes] = chunking_of(bits);
    const int64_t count = codes.numel(), chunks = ceil_div(count, values);
    auto opts = codes.options().dtype(at::kLong);
    auto u = codes.reshape({-1}).to(at::kLong) + (int64_t(1) << (bits - 1)); // unsigned b-bit fields
    if (chunks * values > count) u = at::cat({u, at::zeros({chunks * values - count}, opts)});
    auto shifts = at::arange(values, opts) * bits;
    // The fields of a chunk occupy disjoint bits, so their sum is their bitwise or.
    auto word = at::bitwise_left_shift(u.view({chunks, values}), shifts).sum(1); // [chunks] int64
    auto byte_shifts = at::arange(chunk_bytes, opts) * 8;
    auto bytes = at::bitwise_right_shift(word.unsqueeze(1), byte_shifts).bitwise_and(255).to(at::kByte).reshape({-1});
    return bytes.narrow(0, 0, ceil_div(count * bits, 8)).contiguous();
}

at::Tensor unpack_codes(const at::Tensor &bytes, int bits, int64_t count) {
    const auto [values, chunk_bytes] = chunking_of(bits);
    const int64_t need = ceil_div(count * bits, 8);
    if (bytes.numel() != need) fail("unpack_codes: {} bytes for {} codes of {} bits (expected {})", bytes.numel(), count, bits, need);
    const int64_t chunks = ceil_div(count, values);
    auto opts = bytes.options().dtype(at::kLong);
    auto b = bytes.reshape({-1}).to(at::kLong);
    if (chunks * chunk_bytes > need) b = at::cat({b, at::zeros({chunks * chunk_bytes - need}, opts)});
    auto word = at::bitwise_left_shift(b.view({chunks, chunk_bytes}), at::arange(chunk_bytes, opts) * 8).sum(1);
    auto u = at::bitwise_right_shift(word.unsqueeze(1), at::arange(values, opts) * bits).bitwise_and((int64_t(1) << bits) - 1);
    return (u.reshape({-1}).narrow(0, 0, count) - (int64_t(1) << (bits - 1))).to(at::kChar);
}

json packed_write_summary::to_json() const {
    return {{"file_bytes", file_bytes},
            {"linear_bytes", linear_bytes},
            {"linear_weights", linear_weights},
            {"other_bytes", other_bytes},
            {"bits_per_linear_weight", bits_per_linear_weight()}};
}

packed_write_summary write_packed_checkpoint(const fs::path &file, const llama_model &model, const json &metadata) {
    c10::InferenceMode guard;
    packed_write_summary summary;
    // 1. The tensor table with offsets, from shapes alone (nothing is packed yet).
    int64_t offset = 0;
    auto place = [&](int64_t bytes) {
        const int64_t at = offset;
        offset = align_up(offset + bytes);
        return json{{"offset", at}, {"bytes", bytes}};
    };
    json tensors = json::array(), linears = json::array();
    const auto raw = raw_tensors(model);
    for (const auto &[name, t] : raw) {
        json e = place(raw_bytes(t));
        e["name"] = name;
        e["dtype"] = name_of_dtype(t.scalar_type());
        e["shape"] = t.sizes().vec();
        tensors.push_back(e);
        summary.other_bytes += raw_bytes(t);
    }
    std::vector<int> scale_bytes;
    for (const auto *l : model.linears()) {
        json e = {{"name", l->name}, {"n", l->out_features()}, {"k", l->in_features()}};
        if (l->act_quant.enabled()) e["activations"] = {{"bits", l->act_quant.bits}, {"group_size", l->act_quant.group_size}};
        if (l->qweight) {
            const auto &q = *l->qweight;
            const bool sym = !q.zero_points.defined();
            const int sb = stored_scale_bytes(q);
            scale_bytes.push_back(sb);
            const auto sz = packed_linear_bytes(l->out_features(), l->in_features(), q.bits, q.group_size, sym, sb);
            e["bits"] = q.bits;
            e["group_size"] = q.group_size;
            e["symmetric"] = sym;
            e["scale_dtype"] = sb == 2 ? "fp16" : "fp32";
            e["codes"] = place(sz.code_bytes);
            e["scales"] = place(sz.scale_bytes);
            if (!sym) e["zero_points"] = place(sz.zero_point_bytes);
            summary.linear_bytes += sz.total();
            summary.linear_weights += l->weight.numel();
        }
        linears.push_back(e);
    }
    const auto git = git_state_of(source_dir());
    json header = {{"format", "qbench-packed"},
                   {"version", packed_format_version},
                   {"metadata", metadata},
                   {"qbench", {{"version", QBENCH_VERSION}, {"commit", git.commit}, {"dirty", git.dirty}, {"build", git.build_describe}}},
                   {"config", model.config.to_json()},
                   {"dtype", dtype_name(model.dtype())},
                   {"tensors", tensors},
                   {"linears", linears},
                   {"data_bytes", offset}};
    const std::string text = header.dump();

    // 2. Fixed header, JSON header, then the blobs in table order.
    writer w(file);
    w.bytes(magic, 8);
    const uint32_t version = packed_format_version, reserved = 0;
    const uint64_t header_len = text.size();
    w.bytes(&version, 4);
    w.bytes(&reserved, 4);
    w.bytes(&header_len, 8);
    w.bytes(text.data(), int64_t(text.size()));
    const int64_t data_start = align_up(w.pos());
    for (size_t i = 0; i < raw.size(); ++i)
        w.blob(data_start + tensors[i]["offset"].get<int64_t>(), raw[i].second, tensors[i]["bytes"], raw[i].first);
    size_t qi = 0;
    auto ls = model.linears();
    for (size_t i = 0; i < ls.size(); ++i) {
        if (!ls[i]->qweight) continue;
        const auto &q = *ls[i]->qweight;
        const auto &e = linears[i];
        w.blob(data_start + e["codes"]["offset"].get<int64_t>(), pack_codes(q.q, q.bits), e["codes"]["bytes"], ls[i]->name + " codes");
        w.blob(data_start + e["scales"]["offset"].get<int64_t>(), stored_scales(q, scale_bytes[qi++]), e["scales"]["bytes"],
               ls[i]->name + " scales");
        if (e.contains("zero_points"))
            w.blob(data_start + e["zero_points"]["offset"].get<int64_t>(), pack_codes(q.zero_points.to(at::kChar), q.bits),
                   e["zero_points"]["bytes"], ls[i]->name + " zero points");
    }
    w.pad_to(data_start + offset);
    w.close();
    summary.file_bytes = data_start + offset;
    return summary;
}

namespace {

struct opened_file {
    json header;
    int64_t data_start = 0;
    std::ifstream in;
};

opened_file open_packed(const fs::path &file) {
    opened_file f;
    f.in.open(file, std::ios::binary);
    if (!f.in) fail("cannot open packed checkpoint {}", file.string());
    char m[8];
    uint32_t version = 0, reserved = 0;
    uint64_t header_len = 0;
    f.in.read(m, 8);
    f.in.read(reinterpret_cast<char *>(&version), 4);
    f.in.read(reinterpret_cast<char *>(&reserved), 4);
    f.in.read(reinterpret_cast<char *>(&header_len), 8);
    if (!f.in || std::memcmp(m, magic, 8) != 0) fail("{} is not a qbench packed checkpoint (no QBQPACK magic)", file.string());
    if (version != packed_format_version)
        fail("{}: packed format version {} (this qbench reads version {})", file.string(), version, packed_format_version);
    const auto size = int64_t(fs::file_size(file));
    if (int64_t(header_len) > size - fixed_header_bytes) fail("{}: header length {} exceeds the file ({} bytes)", file.string(), header_len, size);
    std::string text(header_len, '\0');
    f.in.read(text.data(), std::streamsize(header_len));
    try {
        f.header = json::parse(text);
    } catch (const std::exception &e) {
        fail("{}: header is not valid JSON: {}", file.string(), e.what());
    }
    f.data_start = align_up(fixed_header_bytes + int64_t(header_len));
    const int64_t data_bytes = f.header.at("data_bytes");
    if (f.data_start + data_bytes != size)
        fail("{}: truncated or padded: header says {} bytes of data from offset {}, file has {} bytes", file.string(), data_bytes,
             f.data_start, size);
    return f;
}

at::Tensor read_blob(opened_file &f, const json &where, const fs::path &file, const std::string &what) {
    const int64_t off = where.at("offset"), n = where.at("bytes");
    auto t = at::empty({n}, at::TensorOptions().dtype(at::kByte));
    f.in.seekg(std::streamoff(f.data_start + off));
    f.in.read(reinterpret_cast<char *>(t.data_ptr<uint8_t>()), std::streamsize(n));
    if (!f.in) fail("{}: reading {} ({} bytes at {}) failed", file.string(), what, n, f.data_start + off);
    return t;
}

} // namespace

json read_packed_header(const fs::path &file) { return open_packed(file).header; }

loaded_model read_packed_checkpoint(const fs::path &file, at::Device device, at::ScalarType dtype) {
    c10::InferenceMode guard;
    opened_file f = open_packed(file);
    const json &h = f.header;
    llama_model m;
    m.config = llama_config_from_json(h.at("config"));
    m.config.validate();
    std::map<std::string, at::Tensor> raw;
    for (const auto &e : h.at("tensors")) {
        const std::string name = e.at("name");
        auto bytes = read_blob(f, e, file, name);
        auto t = bytes.view(dtype_of_name(e.at("dtype"))).view(e.at("shape").get<std::vector<int64_t>>());
        raw[name] = t.to(device, dtype);
    }
    auto take = [&](const std::string &name) {
        auto it = raw.find(name);
        if (it == raw.end()) fail("{}: tensor {} is missing", file.string(), name);
        return it->second;
    };
    m.tok_embeddings = take("tok_embeddings");
    m.final_norm = take("final_norm");
    m.lm_head = m.config.tied_embeddings ? m.tok_embeddings : take("lm_head");
    const auto &lin = h.at("linears");
    const char *modules[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                             "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    if (int64_t(lin.size()) != 7 * m.config.n_layers)
        fail("{}: {} linears in the table, the architecture has {}", file.string(), lin.size(), 7 * m.config.n_layers);
    m.layers.resize(size_t(m.config.n_layers));
    for (int64_t i = 0; i < m.config.n_layers; ++i) {
        auto &dl = m.layers[size_t(i)];
        const std::string p = fmt::format("layers.{}.", i);
        dl.attn_norm = take(p + "attn_norm");
        dl.ffn_norm = take(p + "ffn_norm");
        linear_layer *slots[] = {&dl.q_proj, &dl.k_proj, &dl.v_proj, &dl.o_proj, &dl.gate_proj, &dl.up_proj, &dl.down_proj};
        for (int j = 0; j < 7; ++j) {
            const json &e = lin[size_t(i * 7 + j)];
            linear_layer &l = *slots[j];
            l.name = p + modules[j];
            if (e.at("name") != l.name) fail("{}: linear {} is {} (expected {})", file.string(), i * 7 + j, e.at("name").dump(), l.name);
            const int64_t n = e.at("n"), k = e.at("k");
            if (e.contains("activations")) {
                l.act_quant.bits = e["activations"].at("bits");
                l.act_quant.group_size = e["activations"].at("group_size");
            }
            if (raw.count(l.name + ".bias")) l.bias = take(l.name + ".bias");
            if (!e.contains("codes")) {
                l.weight = take(l.name + ".weight");
                continue;
            }
            quantized_weight q;
            q.bits = e.at("bits");
            q.group_size = e.at("group_size");
            const int64_t groups = q.group_size > 0 ? k / q.group_size : 1;
            q.q = unpack_codes(read_blob(f, e.at("codes"), file, l.name + " codes").to(device), q.bits, n * k).view({n, k});
            const auto sdt = e.at("scale_dtype") == "fp16" ? at::kHalf : at::kFloat;
            q.scales = read_blob(f, e.at("scales"), file, l.name + " scales").view(sdt).view({n, groups}).to(device, at::kFloat);
            if (e.contains("zero_points"))
                q.zero_points = unpack_codes(read_blob(f, e.at("zero_points"), file, l.name + " zero points").to(device), q.bits, n * groups)
                                    .view({n, groups})
                                    .to(at::kFloat);
            l.weight = q.dequantize().to(dtype);
            l.qweight = std::move(q);
        }
    }
    m.prepare_rope();

    loaded_model out{std::move(m), json::object(), nullptr, ""};
    const std::string sha = sha256_file_hex(file);
    out.inputs["packed_checkpoint"] = {{"path", fs::absolute(file).string()}, {"sha256", sha}, {"bytes", int64_t(fs::file_size(file))},
                                       {"format_version", h.at("version")}, {"metadata", h.at("metadata")}, {"qbench", h.at("qbench")}};
    out.identity = json_hash(json{{"format", "packed"}, {"sha256", sha}});
    return out;
}

loaded_model load_packed_model(const json &options, const model_load_context &ctx) {
    const fs::path file = resolve_model_path(options.at("path"), ctx.data_dir);
    loaded_model out = read_packed_checkpoint(file, ctx.device, ctx.dtype);
    const json &meta = out.inputs["packed_checkpoint"]["metadata"];
    log_info("model: packed {} ({}, {} bytes) on {} in {}", file.string(), meta.value("method", std::string("?")),
             out.inputs["packed_checkpoint"]["bytes"].get<int64_t>(), ctx.device.str(), dtype_name(ctx.dtype));
    const std::string tok = options.value("tokenizer", std::string());
    if (!tok.empty()) {
        const fs::path tok_file = resolve_model_path(tok, ctx.data_dir);
        out.tok = load_tokenizer(tok_file);
        out.inputs["tokenizer"] = {{"path", tok_file.string()}, {"sha256", sha256_file_hex(tok_file)}};
        out.identity = json_hash(json{{"model", out.identity}, {"tokenizer", out.inputs["tokenizer"]["sha256"]}});
    }
    return out;
}

} // namespace qb
