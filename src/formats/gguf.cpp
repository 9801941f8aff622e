#include "formats/gguf.h"

#include "core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>

namespace qb {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t gguf_magic = 0x46554747; // "GGUF" read as a little-endian u32
constexpr uint32_t ggml_max_dims = 4;
constexpr int max_array_nesting = 8;          // deeper means a corrupt file, not a real model
constexpr uint64_t max_string_bytes = 1u << 30; // a single key or value string

// ggml_type ids (ggml.h) with their names, and the dtype qbench reads them as (if any).
struct ggml_type_entry {
    uint32_t id;
    const char *name;
    std::optional<tensor_dtype> dtype;
};
constexpr ggml_type_entry ggml_types[] = {
    {0, "F32", tensor_dtype::f32},    {1, "F16", tensor_dtype::f16},    {2, "Q4_0", tensor_dtype::q4_0},
    {3, "Q4_1", tensor_dtype::q4_1},  {6, "Q5_0", tensor_dtype::q5_0},  {7, "Q5_1", tensor_dtype::q5_1},
    {8, "Q8_0", tensor_dtype::q8_0},  {9, "Q8_1", {}},                  {10, "Q2_K", tensor_dtype::q2_k},
    {11, "Q3_K", tensor_dtype::q3_k}, {12, "Q4_K", tensor_dtype::q4_k}, {13, "Q5_K", tensor_dtype::q5_k},
    {14, "Q6_K", tensor_dtype::q6_k}, {15, "Q8_K", {}},                 {16, "IQ2_XXS", {}},
    {17, "IQ2_XS", {}},               {18, "IQ3_XXS", {}},              {19, "IQ1_S", {}},
    {20, "IQ4_NL", {}},               {21, "IQ3_S", {}},                {22, "IQ2_S", {}},
    {23, "IQ4_XS", {}},               {24, "I8", {}},                   {25, "I16", {}},
    {26, "I32", {}},                  {27, "I64", {}},                  {28, "F64", {}},
    {29, "IQ1_M", {}},                {30, "BF16", tensor_dtype::bf16}, {34, "TQ1_0", {}},
    {35, "TQ2_0", {}},                {39, "MXFP4", {}},                {40, "NVFP4", {}},
};

const ggml_type_entry *ggml_type_of(uint32_t id) {
    for (const auto &e : ggml_types)
        if (e.id == id) return &e;
    return nullptr;
}

size_t fixed_size(gguf_type t) {
    switch (t) {
    case gguf_type::u8:
    case gguf_type::i8:
    case gguf_type::boolean: return 1;
    case gguf_type::u16:
    case gguf_type::i16: return 2;
    case gguf_type::u32:
    case gguf_type::i32:
    case gguf_type::f32: return 4;
    case gguf_type::u64:
    case gguf_type::i64:
    case gguf_type::f64: return 8;
    case gguf_type::string:
    case gguf_type::array: return 0;
    }
    return 0;
}

bool is_unsigned(gguf_type t) {
    return t == gguf_type::u8 || t == gguf_type::u16 || t == gguf_type::u32 || t == gguf_type::u64;
}
bool is_signed(gguf_type t) {
    return t == gguf_type::i8 || t == gguf_type::i16 || t == gguf_type::i32 || t == gguf_type::i64;
}
bool is_float(gguf_type t) { return t == gguf_type::f32 || t == gguf_type::f64; }

template <class T>
T load(const uint8_t *p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// Decodes one fixed-size scalar at p into the value's widened members.
void decode_scalar(gguf_type t, const uint8_t *p, gguf_value &v) {
    switch (t) {
    case gguf_type::u8: v.u = load<uint8_t>(p); break;
    case gguf_type::i8: v.i = load<int8_t>(p); break;
    case gguf_type::u16: v.u = load<uint16_t>(p); break;
    case gguf_type::i16: v.i = load<int16_t>(p); break;
    case gguf_type::u32: v.u = load<uint32_t>(p); break;
    case gguf_type::i32: v.i = load<int32_t>(p); break;
    case gguf_type::f32: v.f = load<float>(p); break;
    case gguf_type::boolean: v.u = load<uint8_t>(p); break;
    case gguf_type::u64: v.u = load<uint64_t>(p); break;
    case gguf_type::i64: v.i = load<int64_t>(p); break;
    case gguf_type::f64: v.f = load<double>(p); break;
    case gguf_type::string:
    case gguf_type::array: break;
    }
}

// A bounds-checked cursor over the header; every failure names the file, the offset and what
// was being read.
class cursor {
public:
    cursor(const mapped_file &file) : file_(file), pos_(0) {}
    uint64_t pos() const { return pos_; }
    uint64_t left() const { return file_.size() - pos_; }
    std::string context; // "metadata key 'general.name'", "tensor info 3 ('blk.0.attn_q.weight')"

    const uint8_t *take(uint64_t n, std::string_view what) {
        if (n > left())
            fail("{}: truncated: {} needs {} bytes at offset {}, the file ends {} bytes later (reading {})", file_.path().string(), what, n,
                 pos_, left(), context);
        const uint8_t *p = file_.data() + pos_;
        pos_ += n;
        return p;
    }
    uint32_t u32(std::string_view what) { return load<uint32_t>(take(4, what)); }
    uint64_t u64(std::string_view what) { return load<uint64_t>(take(8, what)); }
    std::string string(std::string_view what) {
        const uint64_t n = u64(what);
        if (n > max_string_bytes || n > left())
            fail("{}: {} has length {} at offset {}, but only {} bytes remain (reading {})", file_.path().string(), what, n, pos_ - 8, left(),
                 context);
        const auto *p = reinterpret_cast<const char *>(take(n, what));
        return std::string(p, n);
    }
    [[noreturn]] void bad(std::string_view message) const {
        fail("{}: {} (reading {}, offset {})", file_.path().string(), message, context, pos_);
    }

private:
    const mapped_file &file_;
    uint64_t pos_;
};

gguf_type read_type(cursor &c, std::string_view what) {
    const uint32_t t = c.u32(what);
    if (t > static_cast<uint32_t>(gguf_type::f64)) c.bad(fmt::format("unknown value type {} (valid: 0..12)", t));
    return static_cast<gguf_type>(t);
}

gguf_value read_value(cursor &c, gguf_type type, int depth) {
    gguf_value v;
    v.type = type;
    if (type == gguf_type::string) {
        v.str = c.string("string value");
        return v;
    }
    if (type != gguf_type::array) {
        decode_scalar(type, c.take(fixed_size(type), "value"), v);
        if (type == gguf_type::boolean && v.u > 1) c.bad(fmt::format("bool value {} (expected 0 or 1)", v.u));
        return v;
    }
    if (depth >= max_array_nesting) c.bad(fmt::format("arrays nested deeper than {}", max_array_nesting));
    v.array_type = read_type(c, "array element type");
    v.array_size = c.u64("array length");
    if (const size_t elem = fixed_size(v.array_type); elem > 0) {
        if (v.array_size > c.left() / elem)
            c.bad(fmt::format("array of {} {} needs {} bytes, only {} remain", v.array_size, gguf_type_name(v.array_type),
                              static_cast<double>(v.array_size) * static_cast<double>(elem), c.left()));
        v.array_data = c.take(v.array_size * elem, "array elements");
        if (v.array_type == gguf_type::boolean)
            for (uint64_t k = 0; k < v.array_size; ++k)
                if (v.array_data[k] > 1) c.bad(fmt::format("bool array element {} is {} (expected 0 or 1)", k, v.array_data[k]));
        return v;
    }
    // Strings and arrays take at least 8 bytes each (their length), which bounds a bogus count.
    if (v.array_size > c.left() / 8)
        c.bad(fmt::format("array of {} {} cannot fit in the {} bytes that remain", v.array_size, gguf_type_name(v.array_type), c.left()));
    if (v.array_type == gguf_type::string) {
        v.strings.reserve(v.array_size);
        for (uint64_t k = 0; k < v.array_size; ++k) v.strings.push_back(c.string("string array element"));
    } else {
        v.arrays.reserve(v.array_size);
        for (uint64_t k = 0; k < v.array_size; ++k) v.arrays.push_back(read_value(c, gguf_type::array, depth + 1));
    }
    return v;
}

std::string supported_ggml_types() {
    std::string out;
    for (const auto &e : ggml_types)
        if (e.dtype) out += (out.empty() ? "" : ", ") + std::string(e.name);
    return out;
}

// Integer value of a scalar of any integer type, or nullopt.
std::optional<__int128> integer_of(const gguf_value &v) {
    if (is_unsigned(v.type)) return static_cast<__int128>(v.u);
    if (is_signed(v.type)) return static_cast<__int128>(v.i);
    return std::nullopt;
}

} // namespace

const char *gguf_type_name(gguf_type type) {
    switch (type) {
    case gguf_type::u8: return "uint8";
    case gguf_type::i8: return "int8";
    case gguf_type::u16: return "uint16";
    case gguf_type::i16: return "int16";
    case gguf_type::u32: return "uint32";
    case gguf_type::i32: return "int32";
    case gguf_type::f32: return "float32";
    case gguf_type::boolean: return "bool";
    case gguf_type::string: return "string";
    case gguf_type::array: return "array";
    case gguf_type::u64: return "uint64";
    case gguf_type::i64: return "int64";
    case gguf_type::f64: return "float64";
    }
    return "unknown";
}

std::string gguf_value::type_text() const {
    if (type != gguf_type::array) return gguf_type_name(type);
    return fmt::format("array of {}", gguf_type_name(array_type));
}

gguf_file::gguf_file(const fs::path &path) : file_(path), tensors_(path.string()) {
    const std::string where = path.string();
    cursor c(file_);
    c.context = "the header";
    if (file_.size() < 4) fail("{}: file is {} bytes, too small for a GGUF file", where, file_.size());
    const uint32_t magic = c.u32("magic");
    if (magic != gguf_magic) {
        const uint8_t *m = file_.data();
        fail("{}: bad magic {:02x} {:02x} {:02x} {:02x} (expected \"GGUF\" = 47 47 55 46): not a GGUF file", where, m[0], m[1], m[2], m[3]);
    }
    version_ = c.u32("version");
    if (version_ == 1) fail("{}: GGUF version 1 (32-bit counts) is not supported; re-convert the model with a current llama.cpp", where);
    if (version_ != 2 && version_ != 3) {
        // A byte-swapped small number is a big-endian file.
        if ((version_ & 0xFFFF) == 0 && (version_ >> 24) <= 3)
            fail("{}: version field {:#010x} looks like a big-endian GGUF, which qbench does not read", where, version_);
        fail("{}: GGUF version {} is not supported (expected 2 or 3)", where, version_);
    }
    const uint64_t n_tensors = c.u64("tensor count");
    const uint64_t n_kv = c.u64("metadata count");
    // Smallest encodings: a kv is 8 (key length) + 4 (type) + 1 bytes, a tensor info 8 + 4 + 4 + 8.
    if (n_kv > c.left() / 13) fail("{}: header claims {} metadata entries, more than the {}-byte file can hold", where, n_kv, file_.size());
    if (n_tensors > c.left() / 24) fail("{}: header claims {} tensors, more than the {}-byte file can hold", where, n_tensors, file_.size());

    metadata_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) {
        c.context = fmt::format("metadata entry {} of {}", k, n_kv);
        std::string key = c.string("key");
        c.context = fmt::format("metadata key '{}'", key);
        if (find(key)) c.bad("duplicate key");
        const gguf_type type = read_type(c, "value type");
        gguf_value v = read_value(c, type, 0);
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    if (const auto *a = find("general.alignment")) {
        if (a->type != gguf_type::u32)
            fail("{}: general.alignment must be a uint32, found {}", where, a->type_text());
        if (a->u == 0 || (a->u & (a->u - 1)) != 0) fail("{}: general.alignment = {} is not a power of two", where, a->u);
        alignment_ = a->u;
    }

    struct info {
        tensor_view view;
        uint64_t offset;
    };
    std::vector<info> infos;
    infos.reserve(n_tensors);
    for (uint64_t k = 0; k < n_tensors; ++k) {
        c.context = fmt::format("tensor info {} of {}", k, n_tensors);
        info ti;
        ti.view.name = c.string("tensor name");
        c.context = fmt::format("tensor info {} ('{}')", k, ti.view.name);
        const uint32_t n_dims = c.u32("n_dims");
        if (n_dims > ggml_max_dims) c.bad(fmt::format("n_dims = {} (ggml tensors have at most {})", n_dims, ggml_max_dims));
        std::vector<int64_t> ne(n_dims);
        for (auto &d : ne) {
            const uint64_t v = c.u64("dimension");
            if (v > (uint64_t{1} << 62)) c.bad(fmt::format("dimension {} is out of range", v));
            d = static_cast<int64_t>(v);
        }
        ti.view.shape.assign(ne.rbegin(), ne.rend()); // ggml ne[0] is the innermost (row) length
        const uint32_t type_id = c.u32("ggml type");
        const auto *type = ggml_type_of(type_id);
        if (!type || !type->dtype)
            fail("{}: tensor '{}' has ggml type {} ({}), which qbench cannot read (it reads {})", where, ti.view.name,
                 type ? type->name : "unknown", type_id, supported_ggml_types());
        ti.view.dtype = *type->dtype;
        ti.offset = c.u64("data offset");
        if (auto st = tensor_storage_bytes(ti.view.dtype, ti.view.shape, &ti.view.bytes); !st)
            fail("{}: tensor '{}': {}", where, ti.view.name, st.reason);
        infos.push_back(std::move(ti));
    }

    data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
    if (data_offset_ > file_.size())
        fail("{}: the data section would start at {} (header end {} aligned to {}), past the end of the {}-byte file", where, data_offset_,
             c.pos(), alignment_, file_.size());
    const uint64_t data_size = file_.size() - data_offset_;

    for (const auto &ti : infos) {
        const auto &t = ti.view;
        if (ti.offset % alignment_ != 0)
            fail("{}: tensor '{}' has data offset {}, not a multiple of the alignment {}", where, t.name, ti.offset, alignment_);
        if (ti.offset > data_size || t.bytes > data_size - ti.offset)
            fail("{}: tensor '{}' {} {} needs bytes [{}, {}) of the data section, which has {} bytes (file truncated?)", where, t.name,
                 tensor_dtype_name(t.dtype), tensor_shape_text(t.shape), ti.offset, ti.offset + t.bytes, data_size);
    }
    std::vector<const info *> by_offset;
    for (const auto &ti : infos) by_offset.push_back(&ti);
    std::sort(by_offset.begin(), by_offset.end(), [](const info *a, const info *b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
        const info &a = *by_offset[k - 1], &b = *by_offset[k];
        if (b.offset < a.offset + a.view.bytes)
            fail("{}: tensors '{}' [{}, {}) and '{}' [{}, {}) overlap in the data section", where, a.view.name, a.offset,
                 a.offset + a.view.bytes, b.view.name, b.offset, b.offset + b.view.bytes);
    }
    for (auto &ti : infos) {
        ti.view.data = file_.data() + data_offset_ + ti.offset;
        const std::string name = ti.view.name;
        if (!tensors_.add(std::move(ti.view))) fail("{}: duplicate tensor name '{}'", where, name);
    }
}

const gguf_value *gguf_file::find(std::string_view key) const {
    for (const auto &[k, v] : metadata_)
        if (k == key) return &v;
    return nullptr;
}

void gguf_file::wrong_type(std::string_view key, std::string_view wanted, const gguf_value &v) const {
    fail("{}: metadata key '{}' should be {}, found {}", path().string(), key, wanted, v.type_text());
}

const gguf_value &gguf_file::require(std::string_view key, std::string_view wanted) const {
    if (const auto *v = find(key)) return *v;
    fail("{}: metadata key '{}' ({}) not found ({} keys)", path().string(), key, wanted, metadata_.size());
}

std::string gguf_file::get_string(std::string_view key) const {
    const auto &v = require(key, "string");
    if (v.type != gguf_type::string) wrong_type(key, "a string", v);
    return v.str;
}

uint64_t gguf_file::get_u64(std::string_view key) const {
    const auto &v = require(key, "unsigned integer");
    const auto n = integer_of(v);
    if (!n) wrong_type(key, "an integer", v);
    if (*n < 0) fail("{}: metadata key '{}' = {} should be non-negative", path().string(), key, static_cast<int64_t>(*n));
    return static_cast<uint64_t>(*n);
}

uint32_t gguf_file::get_u32(std::string_view key) const {
    const uint64_t n = get_u64(key);
    if (n > std::numeric_limits<uint32_t>::max())
        fail("{}: metadata key '{}' = {} does not fit in a uint32", path().string(), key, n);
    return static_cast<uint32_t>(n);
}

int64_t gguf_file::get_i64(std::string_view key) const {
    const auto &v = require(key, "integer");
    const auto n = integer_of(v);
    if (!n) wrong_type(key, "an integer", v);
    if (*n > std::numeric_limits<int64_t>::max()) fail("{}: metadata key '{}' = {} does not fit in an int64", path().string(), key, v.u);
    return static_cast<int64_t>(*n);
}

double gguf_file::get_f64(std::string_view key) const {
    const auto &v = require(key, "float");
    if (!is_float(v.type)) wrong_type(key, "a float32 or float64", v);
    return v.f;
}

float gguf_file::get_f32(std::string_view key) const { return static_cast<float>(get_f64(key)); }

bool gguf_file::get_bool(std::string_view key) const {
    const auto &v = require(key, "bool");
    if (v.type != gguf_type::boolean) wrong_type(key, "a bool", v);
    return v.u != 0;
}

std::vector<std::string> gguf_file::get_string_array(std::string_view key) const {
    const auto &v = require(key, "array of string");
    if (v.type != gguf_type::array || v.array_type != gguf_type::string) wrong_type(key, "an array of string", v);
    return v.strings;
}

std::vector<float> gguf_file::get_f32_array(std::string_view key) const {
    const auto &v = require(key, "array of float32");
    if (v.type != gguf_type::array || !is_float(v.array_type)) wrong_type(key, "an array of float32 or float64", v);
    std::vector<float> out(v.array_size);
    const size_t elem = fixed_size(v.array_type);
    for (uint64_t k = 0; k < v.array_size; ++k) {
        gguf_value e;
        decode_scalar(v.array_type, v.array_data + k * elem, e);
        out[k] = static_cast<float>(e.f);
    }
    return out;
}

std::vector<int64_t> gguf_file::get_i64_array(std::string_view key) const {
    const auto &v = require(key, "array of integers");
    if (v.type != gguf_type::array || !(is_signed(v.array_type) || is_unsigned(v.array_type))) wrong_type(key, "an array of integers", v);
    std::vector<int64_t> out(v.array_size);
    const size_t elem = fixed_size(v.array_type);
    for (uint64_t k = 0; k < v.array_size; ++k) {
        gguf_value e;
        e.type = v.array_type;
        decode_scalar(v.array_type, v.array_data + k * elem, e);
        const __int128 n = *integer_of(e);
        if (n > std::numeric_limits<int64_t>::max())
            fail("{}: metadata key '{}': element {} = {} does not fit in an int64", path().string(), key, k, e.u);
        out[k] = static_cast<int64_t>(n);
    }
    return out;
}

std::vector<int32_t> gguf_file::get_i32_array(std::string_view key) const {
    const auto wide = get_i64_array(key);
    std::vector<int32_t> out(wide.size());
    for (size_t k = 0; k < wide.size(); ++k) {
        if (wide[k] < std::numeric_limits<int32_t>::min() || wide[k] > std::numeric_limits<int32_t>::max())
            fail("{}: metadata key '{}': element {} = {} does not fit in an int32", path().string(), key, k, wide[k]);
        out[k] = static_cast<int32_t>(wide[k]);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Q/K row order
// ---------------------------------------------------------------------------------------------
namespace {
// interleaved_to_halves: row (h, 2i + j) of the GGUF order goes to row (h, j * half + i).
status reorder_qk_rows(std::span<float> w, int64_t n_rows, int64_t n_cols, int64_t n_head, bool interleaved_to_halves) {
    if (n_rows < 0 || n_cols < 0 || n_head <= 0 || n_rows % n_head != 0 || (n_rows / n_head) % 2 != 0)
        return status::failure(status_code::unsupported_shape,
                               fmt::format("q/k rows: {} rows do not split into {} heads of an even head_dim", n_rows, n_head));
    if (static_cast<int64_t>(w.size()) != n_rows * n_cols)
        return status::failure(status_code::invalid_argument,
                               fmt::format("q/k rows: buffer has {} values, expected {} x {} = {}", w.size(), n_rows, n_cols, n_rows * n_cols));
    const int64_t head_dim = n_rows / n_head, half = head_dim / 2;
    const auto row_bytes = static_cast<size_t>(n_cols) * sizeof(float);
    std::vector<float> head(static_cast<size_t>(head_dim * n_cols));
    for (int64_t h = 0; h < n_head; ++h) {
        float *base = w.data() + h * head_dim * n_cols;
        std::memcpy(head.data(), base, static_cast<size_t>(head_dim) * row_bytes);
        for (int64_t i = 0; i < half; ++i)
            for (int64_t j = 0; j < 2; ++j) {
                const int64_t interleaved = 2 * i + j, halves = j * half + i;
                const int64_t dst = interleaved_to_halves ? halves : interleaved;
                const int64_t src = interleaved_to_halves ? interleaved : halves;
                std::memcpy(base + dst * n_cols, head.data() + src * n_cols, row_bytes);
            }
    }
    return status::success();
}
} // namespace

status gguf_unpermute_qk_rows(std::span<float> w, int64_t n_rows, int64_t n_cols, int64_t n_head) {
    return reorder_qk_rows(w, n_rows, n_cols, n_head, true);
}

status gguf_permute_qk_rows(std::span<float> w, int64_t n_rows, int64_t n_cols, int64_t n_head) {
    return reorder_qk_rows(w, n_rows, n_cols, n_head, false);
}

} // namespace qb
