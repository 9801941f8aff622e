#include "tokenizer/sentencepiece.h"

#include "core/error.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/load_file.h"
#include "tokenizer/unicode.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>

namespace qb {

namespace {

constexpr std::string_view space_symbol = "\xE2\x96\x81"; // U+2581, what ' ' becomes

// ---------------------------------------------------------------------------------------------
// Protobuf wire format, the subset ModelProto uses (proto2: varint, fixed32, length-delimited)
// ---------------------------------------------------------------------------------------------
static_assert(std::endian::native == std::endian::little, "fixed32 floats are read in place");

enum wire_type : uint32_t { wire_varint = 0, wire_fixed64 = 1, wire_bytes = 2, wire_fixed32 = 5 };

const char *wire_type_name(uint32_t w) {
    switch (w) {
    case wire_varint: return "varint";
    case wire_fixed64: return "fixed64";
    case wire_bytes: return "length-delimited";
    case 3: return "start-group";
    case 4: return "end-group";
    case wire_fixed32: return "fixed32";
    }
    return "invalid";
}

struct proto_failure {
    std::string reason;
};

// Reads one message; `path` names it in errors ("ModelProto.pieces[7]"), offsets are from the
// start of the file.
class proto_message {
public:
    proto_message(std::span<const uint8_t> bytes, size_t file_offset, std::string path)
        : bytes_(bytes), base_(file_offset), path_(std::move(path)) {}

    bool next() {
        if (pos_ >= bytes_.size()) return false;
        field_start_ = pos_;
        const uint64_t tag = varint("tag");
        field_ = uint32_t(tag >> 3);
        wire_ = uint32_t(tag & 7);
        if (field_ == 0) fail_here("field number 0 in tag");
        return true;
    }
    uint32_t field() const { return field_; }

    uint64_t read_varint(const char *name) {
        expect(wire_varint, name);
        return varint(name);
    }
    bool read_bool(const char *name) { return read_varint(name) != 0; }
    float read_float(const char *name) {
        expect(wire_fixed32, name);
        if (bytes_.size() - pos_ < 4) fail_here(std::string(name) + ": truncated fixed32");
        float v;
        std::memcpy(&v, bytes_.data() + pos_, 4);
        pos_ += 4;
        return v;
    }
    std::string read_string(const char *name) {
        const auto b = read_bytes(name);
        return {reinterpret_cast<const char *>(b.data()), b.size()};
    }
    // A nested message: its bytes and where they start in the file.
    proto_message read_message(const char *name, std::string path) {
        const auto b = read_bytes(name);
        return {b, base_ + size_t(b.data() - bytes_.data()), std::move(path)};
    }
    void skip() {
        switch (wire_) {
        case wire_varint: varint("unknown field"); return;
        case wire_fixed64: advance(8, "unknown fixed64 field"); return;
        case wire_fixed32: advance(4, "unknown fixed32 field"); return;
        case wire_bytes: read_bytes("unknown field"); return;
        }
        fail_here(fmt::format("field {}: unsupported wire type {} ({})", field_, wire_, wire_type_name(wire_)));
    }

    // "<path>: <what> at byte <offset of the current field>"
    [[noreturn]] void fail_here(const std::string &what) const {
        throw proto_failure{fmt::format("{}: {} at byte {}", path_, what, base_ + field_start_)};
    }

private:
    void expect(uint32_t wire, const char *name) const {
        if (wire_ != wire)
            fail_here(fmt::format("{} (field {}): expected wire type {} ({}), got {} ({})", name, field_, wire,
                                  wire_type_name(wire), wire_, wire_type_name(wire_)));
    }
    uint64_t varint(const std::string &name) {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= bytes_.size()) fail_here(name + ": truncated varint");
            const uint8_t b = bytes_[pos_++];
            v |= uint64_t(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        fail_here(name + ": varint longer than 10 bytes");
    }
    void advance(size_t n, const char *name) {
        if (bytes_.size() - pos_ < n) fail_here(std::string(name) + ": truncated");
        pos_ += n;
    }
    std::span<const uint8_t> read_bytes(const char *name) {
        expect(wire_bytes, name);
        const uint64_t len = varint(std::string(name) + " length");
        if (len > bytes_.size() - pos_)
            fail_here(fmt::format("{} (field {}): length {} runs past the end of the message ({} bytes left)", name, field_,
                                  len, bytes_.size() - pos_));
        const auto b = bytes_.subspan(pos_, len);
        pos_ += len;
        return b;
    }

    std::span<const uint8_t> bytes_;
    size_t base_;
    std::string path_;
    size_t pos_ = 0, field_start_ = 0;
    uint32_t field_ = 0, wire_ = 0;
};

// TrainerSpec.ModelType
constexpr uint64_t model_type_unigram = 1, model_type_bpe = 2;
const char *model_type_name(uint64_t t) {
    switch (t) {
    case 1: return "UNIGRAM";
    case 2: return "BPE";
    case 3: return "WORD";
    case 4: return "CHAR";
    }
    return "unknown";
}

// "<0x0A>" -> 10; exactly sentencepiece's ByteToPiece spelling (upper-case hex), else -1.
int parse_byte_piece(std::string_view piece) {
    if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
    int v = 0;
    for (char c : piece.substr(3, 2)) {
        if (c >= '0' && c <= '9') v = v * 16 + (c - '0');
        else if (c >= 'A' && c <= 'F') v = v * 16 + (c - 'A' + 10);
        else return -1;
    }
    return v;
}

// Length of the UTF-8 sequence a lead byte announces (sentencepiece's OneCharLen: no validation;
// the normalizer has already replaced malformed bytes).
size_t one_char_len(char lead) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[(uint8_t(lead)) >> 4]; }

// NormalizerSpec, with its proto2 defaults.
struct normalizer_spec {
    std::string name, precompiled_charsmap;
    bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

normalizer_spec read_normalizer_spec(proto_message spec) {
    normalizer_spec n;
    while (spec.next()) {
        switch (spec.field()) {
        case 1: n.name = spec.read_string("name"); break;
        case 2: n.precompiled_charsmap = spec.read_string("precompiled_charsmap"); break;
        case 3: n.add_dummy_prefix = spec.read_bool("add_dummy_prefix"); break;
        case 4: n.remove_extra_whitespaces = spec.read_bool("remove_extra_whitespaces"); break;
        case 5: n.escape_whitespaces = spec.read_bool("escape_whitespaces"); break;
        default: spec.skip();
        }
    }
    return n;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// ModelProto
// ---------------------------------------------------------------------------------------------
status parse_sentencepiece_model(std::span<const uint8_t> bytes, spm_vocab &out) {
    out = spm_vocab{};
    // proto2 defaults of the fields read below (sentencepiece_model.proto)
    out.byte_fallback = false;
    uint64_t model_type = model_type_unigram;
    bool suffix_whitespace = false;
    std::string bos_piece = "<s>", eos_piece = "</s>";
    normalizer_spec normalizer, denormalizer;
    try {
        proto_message model(bytes, 0, "ModelProto");
        while (model.next()) {
            switch (model.field()) {
            case 1: { // repeated SentencePiece pieces
                const size_t index = out.pieces.size();
                auto piece = model.read_message("pieces", fmt::format("ModelProto.pieces[{}]", index));
                std::string text;
                float score = 0;
                uint64_t type = uint64_t(spm_piece_type::normal);
                while (piece.next()) {
                    switch (piece.field()) {
                    case 1: text = piece.read_string("piece"); break;
                    case 2: score = piece.read_float("score"); break;
                    case 3:
                        type = piece.read_varint("type");
                        if (type < 1 || type > 6) piece.fail_here(fmt::format("type (field 3): unknown piece type {} (NORMAL=1 .. BYTE=6)", type));
                        break;
                    default: piece.skip();
                    }
                }
                out.pieces.push_back(std::move(text));
                out.scores.push_back(score);
                out.types.push_back(spm_piece_type(type));
                break;
            }
            case 2: { // TrainerSpec
                auto spec = model.read_message("trainer_spec", "ModelProto.trainer_spec");
                while (spec.next()) {
                    switch (spec.field()) {
                    case 3: model_type = spec.read_varint("model_type"); break;
                    case 24: suffix_whitespace = spec.read_bool("treat_whitespace_as_suffix"); break;
                    case 35: out.byte_fallback = spec.read_bool("byte_fallback"); break;
                    case 44: out.unk_surface = spec.read_string("unk_surface"); break;
                    case 46: bos_piece = spec.read_string("bos_piece"); break;
                    case 47: eos_piece = spec.read_string("eos_piece"); break;
                    default: spec.skip();
                    }
                }
                break;
            }
            case 3: normalizer = read_normalizer_spec(model.read_message("normalizer_spec", "ModelProto.normalizer_spec")); break;
            case 5: // applied to decoded text; only rules (a charsmap) would change anything
                denormalizer = read_normalizer_spec(model.read_message("denormalizer_spec", "ModelProto.denormalizer_spec"));
                break;
            default: model.skip(); // self_test_data, extensions
            }
        }
    } catch (const proto_failure &f) {
        return status::failure(status_code::invalid_argument, f.reason);
    }

    if (out.pieces.empty()) return status::failure(status_code::invalid_argument, "ModelProto has no pieces (field 1)");
    if (model_type != model_type_bpe)
        return status::failure(status_code::unsupported_option,
                               fmt::format("trainer_spec.model_type is {} ({}); only BPE (2) is implemented",
                                           model_type_name(model_type), model_type));
    if (suffix_whitespace)
        return status::failure(status_code::unsupported_option, "trainer_spec.treat_whitespace_as_suffix is set; not implemented");
    if (!normalizer.precompiled_charsmap.empty())
        return status::failure(status_code::unsupported_option,
                               fmt::format("normalizer_spec '{}' has a precompiled_charsmap ({} bytes) of normalization rules; only the "
                                           "identity normalizer is implemented", normalizer.name, normalizer.precompiled_charsmap.size()));
    out.add_dummy_prefix = normalizer.add_dummy_prefix;
    out.remove_extra_whitespaces = normalizer.remove_extra_whitespaces;
    out.escape_whitespaces = normalizer.escape_whitespaces;
    if (!denormalizer.precompiled_charsmap.empty())
        return status::failure(status_code::unsupported_option, "denormalizer_spec has normalization rules; not implemented");

    // SentencePieceProcessor::bos_id(): the id of bos_piece if that piece is a CONTROL piece
    for (int32_t i = 0; i < int32_t(out.pieces.size()); ++i) {
        if (out.types[i] != spm_piece_type::control) continue;
        if (out.pieces[i] == bos_piece) out.bos_id = i;
        if (out.pieces[i] == eos_piece) out.eos_id = i;
    }
    return status::success();
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------
sentencepiece_tokenizer::sentencepiece_tokenizer(spm_vocab vocab) : vocab_(std::move(vocab)) {
    const size_t n = vocab_.pieces.size();
    if (vocab_.scores.size() != n || vocab_.types.size() != n)
        fail("sentencepiece vocabulary: {} pieces, {} scores and {} types (must be equal)", n, vocab_.scores.size(), vocab_.types.size());
    if (n == 0 || n > size_t(INT32_MAX)) fail("sentencepiece vocabulary: {} pieces", n);
    byte_ids_.fill(-1);
    for (int32_t id = 0; id < int32_t(n); ++id) {
        const std::string &piece = vocab_.pieces[id];
        const spm_piece_type type = vocab_.types[id];
        if (piece.empty()) fail("sentencepiece vocabulary: piece {} is empty", id);
        if (piece.find('\0') != std::string::npos) fail("sentencepiece vocabulary: piece {} contains a NUL byte", id);
        const bool mergeable = type == spm_piece_type::normal || type == spm_piece_type::user_defined || type == spm_piece_type::unused;
        auto &index = mergeable ? mergeable_ : reserved_;
        if (const auto [it, fresh] = index.emplace(piece, id); !fresh)
            fail("sentencepiece vocabulary: piece '{}' is defined twice (ids {} and {})", piece, it->second, id);
        switch (type) {
        case spm_piece_type::user_defined: user_defined_[uint8_t(piece[0])].push_back(piece); break;
        case spm_piece_type::unknown:
            if (unk_id_ >= 0) fail("sentencepiece vocabulary: two UNKNOWN pieces (ids {} and {})", unk_id_, id);
            unk_id_ = id;
            break;
        case spm_piece_type::byte: {
            if (!vocab_.byte_fallback) fail("sentencepiece vocabulary: byte piece '{}' (id {}) although byte_fallback is off", piece, id);
            const int b = parse_byte_piece(piece);
            if (b < 0) fail("sentencepiece vocabulary: byte piece '{}' (id {}) is not of the form <0xXX>", piece, id);
            byte_ids_[b] = id;
            break;
        }
        case spm_piece_type::normal:
        case spm_piece_type::control:
        case spm_piece_type::unused: break;
        default: fail("sentencepiece vocabulary: piece {} has unknown type {}", id, int(type));
        }
    }
    if (unk_id_ < 0) fail("sentencepiece vocabulary: no UNKNOWN piece (<unk>) among {} pieces", n);
    if (vocab_.byte_fallback)
        for (int b = 0; b < 256; ++b)
            if (byte_ids_[b] < 0) fail("sentencepiece vocabulary: byte_fallback is on but byte piece <0x{:02X}> is missing", b);
    for (auto &list : user_defined_)
        std::stable_sort(list.begin(), list.end(), [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
    // Encoding may go word by word when no piece can span a word start, i.e. no mergeable piece
    // has a "▁" after another character; UNUSED pieces are excluded because their resegmentation
    // depends on the order of all merges in the text.
    split_at_spaces_ = vocab_.escape_whitespaces;
    for (int32_t id = 0; id < int32_t(n) && split_at_spaces_; ++id) {
        const std::string_view piece = vocab_.pieces[id];
        if (vocab_.types[id] == spm_piece_type::unused) split_at_spaces_ = false;
        if (vocab_.types[id] != spm_piece_type::normal && vocab_.types[id] != spm_piece_type::user_defined) continue;
        for (size_t pos = piece.find(space_symbol, 1); pos != std::string_view::npos; pos = piece.find(space_symbol, pos + 1))
            if (pos < 3 || piece.substr(pos - 3, 3) != space_symbol) split_at_spaces_ = false;
    }
    set_special_tokens(vocab_.bos_id, vocab_.eos_id, vocab_.add_bos);
}

std::unique_ptr<sentencepiece_tokenizer> sentencepiece_tokenizer::load(const std::filesystem::path &model_file) {
    return detail::load_tokenizer_file<sentencepiece_tokenizer, spm_vocab>(
        model_file, "a SentencePiece model", [](std::span<const uint8_t> bytes, spm_vocab &v) { return parse_sentencepiece_model(bytes, v); });
}

size_t sentencepiece_tokenizer::match_user_defined(std::string_view text) const {
    for (std::string_view piece : user_defined_[uint8_t(text[0])])
        if (text.starts_with(piece)) return piece.size();
    return 0;
}

int32_t sentencepiece_tokenizer::piece_to_id(std::string_view piece) const {
    if (auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
    if (auto it = mergeable_.find(piece); it != mergeable_.end()) return it->second;
    return unk_id_;
}

std::string sentencepiece_tokenizer::normalize(std::string_view input) const {
    std::string out;
    if (input.empty()) return out;
    // normalizer.cc NormalizePrefix without a charsmap: a user-defined piece as is, else one
    // valid UTF-8 character as is, else U+FFFD for one malformed byte.
    auto prefix = [&](std::string_view text) -> std::pair<std::string_view, size_t> {
        if (const size_t n = match_user_defined(text)) return {text.substr(0, n), n};
        const utf8_char c = utf8_decode(text);
        if (c.code_point == utf8_invalid) return {utf8_replacement, 1};
        return {text.substr(0, c.length), c.length};
    };
    const bool squeeze = vocab_.remove_extra_whitespaces;
    const std::string_view space = vocab_.escape_whitespaces ? space_symbol : std::string_view(" ");
    while (squeeze && !input.empty()) {
        const auto [piece, consumed] = prefix(input);
        if (piece != " ") break;
        input.remove_prefix(consumed);
    }
    if (input.empty()) return out;
    out.reserve(input.size() * 3 / 2 + 3);
    if (vocab_.add_dummy_prefix) out += space;
    bool prev_space = squeeze;
    while (!input.empty()) {
        auto [piece, consumed] = prefix(input);
        while (prev_space && piece.starts_with(' ')) piece.remove_prefix(1);
        if (!piece.empty()) {
            for (char ch : piece) {
                if (ch == ' ') out += space;
                else out += ch;
            }
            prev_space = piece.ends_with(' ');
        }
        input.remove_prefix(consumed);
        if (!squeeze) prev_space = false;
    }
    if (squeeze)
        while (out.ends_with(space)) out.resize(out.size() - space.size());
    return out;
}

// Appends the pieces BPE leaves of `text` (views into it).
void sentencepiece_tokenizer::merge_pieces(std::string_view text, std::vector<std::string_view> &pieces,
                                           unused_merge_map &unused_merges) const {
    std::vector<detail::bpe_symbol> symbols;
    symbols.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
        detail::bpe_symbol s;
        s.begin = uint32_t(pos);
        size_t len = match_user_defined(text.substr(pos));
        s.frozen = len > 0;
        if (!s.frozen) len = std::min(one_char_len(text[pos]), text.size() - pos);
        s.size = uint32_t(len);
        symbols.push_back(s);
        pos += len;
    }
    detail::bpe_merge(symbols, [&](const detail::bpe_symbol &l, const detail::bpe_symbol &r) -> std::optional<detail::bpe_candidate> {
        const std::string_view merged = text.substr(l.begin, l.size + r.size);
        const auto it = mergeable_.find(merged);
        if (it == mergeable_.end()) return std::nullopt;
        if (vocab_.types[it->second] == spm_piece_type::unused)
            unused_merges[merged] = {text.substr(l.begin, l.size), text.substr(r.begin, r.size)};
        return detail::bpe_candidate{vocab_.scores[it->second], it->second};
    });
    for (int32_t i = 0; i != -1; i = symbols[i].next) pieces.push_back(text.substr(symbols[i].begin, symbols[i].size));
}

std::vector<int32_t> sentencepiece_tokenizer::encode(std::string_view text, bool add_bos) const {
    std::vector<int32_t> ids;
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    const std::string norm = normalize(text);
    if (norm.empty()) return ids;
    const std::string_view view = norm;

    // An UNUSED piece may be formed on the way but is split back into the two symbols it was
    // made of (bpe_model.cc's resegmentation); the last pair queued for a piece is the one kept.
    unused_merge_map unused_merges;
    std::vector<std::string_view> pieces;
    if (!split_at_spaces_) {
        merge_pieces(view, pieces, unused_merges);
    } else {
        // Words (a "▁" after anything but "▁" starts one) merge independently, so each distinct
        // word is merged once per call; the pieces of a repeat are copied at its offset.
        std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen; // word -> [first, last) in pieces
        size_t word_start = 0;
        auto flush = [&](size_t end) {
            const std::string_view word = view.substr(word_start, end - word_start);
            if (const auto it = seen.find(word); it != seen.end()) {
                for (size_t k = it->second.first; k < it->second.second; ++k) {
                    const std::string_view p = pieces[k];
                    pieces.push_back(view.substr(word_start + size_t(p.data() - pieces[it->second.first].data()), p.size()));
                }
            } else {
                const size_t first = pieces.size();
                merge_pieces(word, pieces, unused_merges);
                seen.emplace(word, std::pair{first, pieces.size()});
            }
            word_start = end;
        };
        for (size_t pos = view.find(space_symbol, 1); pos != std::string_view::npos; pos = view.find(space_symbol, pos + 1))
            if ((pos < 3 || view.substr(pos - 3, 3) != space_symbol) && pos > word_start) flush(pos);
        flush(view.size());
    }

    bool prev_unknown = false;
    std::function<void(std::string_view)> emit = [&](std::string_view piece) {
        const int32_t id = piece_to_id(piece);
        if (vocab_.types[id] == spm_piece_type::unused) {
            if (const auto it = unused_merges.find(piece); it != unused_merges.end()) {
                emit(it->second.first);
                emit(it->second.second);
                return;
            }
        }
        const bool unknown = id == unk_id_;
        if (unknown && vocab_.byte_fallback) {
            for (char b : piece) ids.push_back(byte_ids_[uint8_t(b)]);
        } else if (!(unknown && prev_unknown)) { // a run of unknown pieces is one <unk>
            ids.push_back(id);
        }
        prev_unknown = unknown;
    };
    for (const std::string_view piece : pieces) emit(piece);
    return ids;
}

std::string sentencepiece_tokenizer::decode(std::span<const int32_t> ids) const {
    std::string text, bytes;
    auto flush_bytes = [&] {
        text += utf8_make_valid(bytes, utf8_repair::per_byte);
        bytes.clear();
    };
    // Only the first visible piece loses its leading "▁" (the dummy prefix).
    bool at_start = true, start_space_seen = false;
    const bool strip_start = vocab_.add_dummy_prefix || vocab_.remove_extra_whitespaces;
    for (const int32_t raw : ids) {
        check_id(raw);
        const std::string &piece = vocab_.pieces[raw];
        const int32_t id = piece_to_id(piece); // sentencepiece decodes the piece text, not the id
        const spm_piece_type type = vocab_.types[id];
        if (type == spm_piece_type::byte) {
            bytes += char(parse_byte_piece(piece));
            continue;
        }
        flush_bytes();
        if (start_space_seen || !text.empty()) at_start = false;
        start_space_seen = false;
        if (type == spm_piece_type::control) continue;
        if (type == spm_piece_type::unknown) {
            text += vocab_.unk_surface;
            continue;
        }
        std::string_view p = piece;
        if (at_start && strip_start && p.starts_with(space_symbol)) {
            p.remove_prefix(space_symbol.size());
            start_space_seen = !vocab_.remove_extra_whitespaces;
        }
        for (size_t pos = 0; pos < p.size();) {
            if (p.substr(pos).starts_with(space_symbol)) {
                text += ' ';
                pos += space_symbol.size();
            } else {
                text += p[pos++];
            }
        }
    }
    flush_bytes();
    return text;
}

std::string sentencepiece_tokenizer::token_text(int32_t id) const {
    check_id(id);
    return vocab_.pieces[id];
}

} // namespace qb
