#include "tokenizer/byte_bpe.h"

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/load_file.h"
#include "tokenizer/unicode.h"

#include <algorithm>
#include <deque>
#include <fstream>

namespace qb {

namespace {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes
// for U+0100.. in byte order, so every byte has a visible character ("Ġ" = space).
struct byte_alphabet {
    std::array<char32_t, 256> char_of{};
    std::array<int16_t, 0x144> byte_of{}; // code point -> byte, -1 if not a stand-in
    std::array<std::string, 256> utf8_of;

    byte_alphabet() {
        byte_of.fill(-1);
        char32_t extra = 0x100;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char_of[b] = printable ? char32_t(b) : extra++;
            byte_of[char_of[b]] = int16_t(b);
            utf8_append(utf8_of[b], char_of[b]);
        }
    }
};

const byte_alphabet &alphabet() {
    static const byte_alphabet a;
    return a;
}

// The bytes a token stands for: its characters mapped back through the alphabet; a token with
// a character outside it (an added token such as "<|sép x|>") is its own UTF-8 text, as the
// HF ByteLevel decoder does.
std::string token_bytes(std::string_view token) {
    std::string out;
    for (size_t i = 0; i < token.size();) {
        const utf8_char c = utf8_decode(token.substr(i));
        if (c.code_point >= alphabet().byte_of.size() || alphabet().byte_of[c.code_point] < 0) return std::string(token);
        out += char(alphabet().byte_of[c.code_point]);
        i += c.length;
    }
    return out;
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

} // namespace

// ---------------------------------------------------------------------------------------------
// Pre-tokenizer names of GGUF files
// ---------------------------------------------------------------------------------------------
status byte_bpe_pretokenizer_for(std::string_view pre, std::vector<bpe_pretokenizer_step> &steps, bool &ignore_merges) {
    using step = bpe_pretokenizer_step;
    const step gpt2_byte_level{step::kind::byte_level, split_regex::gpt2, false, false, true};
    ignore_merges = false;
    if (pre == "gpt2" || pre == "default") {
        steps = {gpt2_byte_level};
    } else if (pre == "llama-bpe" || pre == "llama3") {
        steps = {{step::kind::split, split_regex::llama3}, {step::kind::byte_level, split_regex::gpt2, false, false, false}};
        ignore_merges = true;
    } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell" ||
               pre == "exaone" || pre == "minerva") {
        // llama.cpp: regex_exprs = { "\\p{N}", <GPT-2's> } = HF Digits(individual) + ByteLevel
        steps = {{step::kind::digits, split_regex::gpt2, true}, gpt2_byte_level};
    } else {
        return status::failure(status_code::unsupported_option,
                               fmt::format("tokenizer.ggml.pre '{}' is not implemented; implemented: gpt2, default, llama-bpe, "
                                           "llama3, smollm, starcoder, refact, command-r, codeshell, exaone, minerva", pre));
    }
    return status::success();
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json
// ---------------------------------------------------------------------------------------------
namespace {

struct json_failure {
    std::string reason;
};

[[noreturn]] void json_fail(const std::string &key, const std::string &what) { throw json_failure{key + ": " + what}; }

const json &member(const json &object, const char *name, const std::string &key) {
    if (!object.is_object()) json_fail(key, "expected an object");
    const auto it = object.find(name);
    if (it == object.end()) json_fail(key + "." + name, "missing");
    return *it;
}

template <class T>
T member_or(const json &object, const char *name, T fallback, const std::string &key) {
    const auto it = object.find(name);
    if (it == object.end() || it->is_null()) return fallback;
    try {
        return it->get<T>();
    } catch (const json::exception &) {
        json_fail(key + "." + name, "unexpected type " + std::string(it->type_name()));
    }
}

std::string type_of(const json &node, const std::string &key) {
    if (!node.is_object()) json_fail(key, "expected an object");
    return member_or<std::string>(node, "type", "", key);
}

void parse_pre_tokenizer(const json &node, const std::string &key, std::vector<bpe_pretokenizer_step> &steps) {
    using step = bpe_pretokenizer_step;
    const std::string type = type_of(node, key);
    if (type == "Sequence") {
        const json &list = member(node, "pretokenizers", key);
        for (size_t i = 0; i < list.size(); ++i) parse_pre_tokenizer(list[i], fmt::format("{}.pretokenizers[{}]", key, i), steps);
    } else if (type == "ByteLevel") {
        step s{step::kind::byte_level};
        s.add_prefix_space = member_or<bool>(node, "add_prefix_space", true, key);
        s.use_regex = member_or<bool>(node, "use_regex", true, key);
        steps.push_back(s);
    } else if (type == "Digits") {
        step s{step::kind::digits};
        s.individual_digits = member_or<bool>(node, "individual_digits", false, key);
        steps.push_back(s);
    } else if (type == "Split") {
        const json &pattern = member(node, "pattern", key);
        const std::string regex = member_or<std::string>(pattern, "Regex", "", key + ".pattern");
        step s{step::kind::split};
        if (regex == split_regex_gpt2_pattern) s.regex = split_regex::gpt2;
        else if (regex == split_regex_llama3_pattern) s.regex = split_regex::llama3;
        else json_fail(key + ".pattern", fmt::format("Split pattern {} is not implemented; implemented: GPT-2's and LLaMA-3's regex", pattern.dump()));
        if (const auto behavior = member_or<std::string>(node, "behavior", "Isolated", key); behavior != "Isolated")
            json_fail(key + ".behavior", "'" + behavior + "' is not implemented (only Isolated)");
        if (member_or<bool>(node, "invert", false, key)) json_fail(key + ".invert", "true is not implemented");
        steps.push_back(s);
    } else {
        json_fail(key, "pre-tokenizer type '" + type + "' is not implemented (Sequence, ByteLevel, Digits, Split)");
    }
}

// A TemplateProcessing "single" of the form [SpecialToken X, Sequence A, ...] puts X first.
void parse_post_processor(const json &node, const std::string &key, const std::unordered_map<std::string, int32_t> &ids, byte_bpe_vocab &out) {
    if (node.is_null()) return;
    const std::string type = type_of(node, key);
    if (type == "Sequence") {
        const json &list = member(node, "processors", key);
        for (size_t i = 0; i < list.size(); ++i) parse_post_processor(list[i], fmt::format("{}.processors[{}]", key, i), ids, out);
    } else if (type == "TemplateProcessing") {
        const json &single = member(node, "single", key);
        if (!single.is_array() || single.empty() || !single[0].contains("SpecialToken")) return;
        const std::string name = member_or<std::string>(single[0]["SpecialToken"], "id", "", key + ".single[0].SpecialToken");
        const auto it = ids.find(name);
        if (it == ids.end()) json_fail(key + ".single[0]", "special token '" + name + "' is not in the vocabulary");
        out.bos_id = it->second;
        out.add_bos = true;
    } else if (type != "ByteLevel") {
        json_fail(key, "post-processor type '" + type + "' is not implemented (ByteLevel, TemplateProcessing, Sequence)");
    }
}

} // namespace

status parse_tokenizer_json(std::string_view json_text, byte_bpe_vocab &out) {
    out = byte_bpe_vocab{};
    json j;
    try {
        j = json::parse(json_text);
    } catch (const json::parse_error &e) {
        return status::failure(status_code::invalid_argument, fmt::format("not valid JSON: {}", e.what()));
    }
    try {
        if (!j.is_object()) json_fail("(top level)", "expected an object");
        if (const auto it = j.find("normalizer"); it != j.end() && !it->is_null())
            json_fail("normalizer", "type '" + type_of(*it, "normalizer") + "' is not implemented (byte-level BPE tokenizers have none)");
        const json &model = member(j, "model", "(top level)");
        if (const std::string type = member_or<std::string>(model, "type", "BPE", "model"); type != "BPE")
            json_fail("model.type", "'" + type + "' is not implemented (only BPE)");
        if (!member_or<json>(model, "dropout", json(), "model").is_null()) json_fail("model.dropout", "BPE dropout is not implemented");
        for (const char *name : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (!member_or<std::string>(model, name, "", "model").empty()) json_fail(std::string("model.") + name, "not implemented");
        if (member_or<bool>(model, "byte_fallback", false, "model"))
            json_fail("model.byte_fallback", "true is not implemented (a SentencePiece-style BPE: load its tokenizer.model instead)");
        out.ignore_merges = member_or<bool>(model, "ignore_merges", false, "model");

        // id -> token; the added tokens may extend the model's vocabulary (LLaMA-3's 256 specials)
        std::unordered_map<std::string, int32_t> ids;
        const json &vocab = member(model, "vocab", "model");
        if (!vocab.is_object()) json_fail("model.vocab", "expected an object {token: id}");
        auto place = [&](const std::string &token, int64_t id, const std::string &key) {
            if (id < 0 || id >= INT32_MAX) json_fail(key, fmt::format("id {} out of range", id));
            if (size_t(id) >= out.tokens.size()) out.tokens.resize(size_t(id) + 1);
            out.tokens[size_t(id)] = token;
            ids[token] = int32_t(id);
        };
        for (const auto &[token, id] : vocab.items()) {
            if (!id.is_number_integer()) json_fail("model.vocab[\"" + token + "\"]", "expected an integer id");
            place(token, id.get<int64_t>(), "model.vocab[\"" + token + "\"]");
        }
        if (const auto it = j.find("added_tokens"); it != j.end() && !it->is_null()) {
            for (size_t i = 0; i < it->size(); ++i) {
                const json &t = (*it)[i];
                const std::string key = fmt::format("added_tokens[{}]", i);
                bpe_added_token a;
                a.content = member(t, "content", key).get<std::string>();
                a.id = member(t, "id", key).get<int32_t>();
                a.special = member_or<bool>(t, "special", false, key);
                a.lstrip = member_or<bool>(t, "lstrip", false, key);
                a.rstrip = member_or<bool>(t, "rstrip", false, key);
                a.normalized = member_or<bool>(t, "normalized", !a.special, key);
                if (member_or<bool>(t, "single_word", false, key)) json_fail(key + ".single_word", "true is not implemented");
                place(a.content, a.id, key);
                out.added.push_back(std::move(a));
            }
        }
        for (size_t id = 0; id < out.tokens.size(); ++id)
            if (out.tokens[id].empty())
                json_fail("model.vocab", fmt::format("no token has id {} (ids must be 0..{} without gaps)", id, out.tokens.size() - 1));

        const json &merges = member(model, "merges", "model");
        for (size_t i = 0; i < merges.size(); ++i) {
            const json &m = merges[i];
            if (m.is_string()) { // "a b" (tokenizers < 0.20)
                const std::string s = m.get<std::string>();
                const size_t space = s.find(' ');
                if (space == std::string::npos) json_fail(fmt::format("model.merges[{}]", i), "'" + s + "' is not of the form \"a b\"");
                out.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                out.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
            } else {
                json_fail(fmt::format("model.merges[{}]", i), "expected \"a b\" or [\"a\", \"b\"], got " + m.dump());
            }
        }
        if (const std::string unk = member_or<std::string>(model, "unk_token", "", "model"); !unk.empty()) {
            const auto it = ids.find(unk);
            if (it == ids.end()) json_fail("model.unk_token", "'" + unk + "' is not in the vocabulary");
            out.unk_id = it->second;
        }

        const json &pre = member(j, "pre_tokenizer", "(top level)");
        if (pre.is_null()) json_fail("pre_tokenizer", "missing; a byte-level BPE needs a ByteLevel pre-tokenizer");
        parse_pre_tokenizer(pre, "pre_tokenizer", out.pretokenizer);
        if (const auto it = j.find("decoder"); it == j.end() || it->is_null() || type_of(*it, "decoder") != "ByteLevel")
            json_fail("decoder", "expected a ByteLevel decoder");
        if (const auto it = j.find("post_processor"); it != j.end()) parse_post_processor(*it, "post_processor", ids, out);
    } catch (const json_failure &f) {
        return status::failure(status_code::invalid_argument, f.reason);
    } catch (const json::exception &e) {
        return status::failure(status_code::invalid_argument, e.what());
    }
    return status::success();
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------
byte_bpe_tokenizer::byte_bpe_tokenizer(byte_bpe_vocab vocab) : vocab_(std::move(vocab)) {
    const size_t n = vocab_.tokens.size();
    if (n == 0 || n > size_t(INT32_MAX)) fail("byte-level BPE vocabulary: {} tokens", n);
    if (vocab_.pretokenizer.empty() || vocab_.pretokenizer.back().type != bpe_pretokenizer_step::kind::byte_level)
        fail("byte-level BPE vocabulary: the pre-tokenizer must end with a ByteLevel step");
    for (const bpe_added_token &a : vocab_.added) {
        if (a.id < 0 || size_t(a.id) >= n) fail("byte-level BPE vocabulary: added token '{}' has id {} outside [0, {})", a.content, a.id, n);
        if (a.content.empty()) fail("byte-level BPE vocabulary: added token {} is empty", a.id);
        vocab_.tokens[a.id] = a.content; // decode reads the added token's content (HF added_tokens_r)
    }
    for (int32_t id = 0; id < int32_t(n); ++id)
        if (const auto [it, fresh] = token_ids_.emplace(vocab_.tokens[id], id); !fresh)
            fail("byte-level BPE vocabulary: token '{}' appears twice (ids {} and {})", vocab_.tokens[id], it->second, id);
    for (int b = 0; b < 256; ++b) {
        const auto it = token_ids_.find(alphabet().utf8_of[b]);
        byte_token_[b] = it == token_ids_.end() ? -1 : it->second;
    }
    merge_ranks_.reserve(vocab_.merges.size());
    for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
        const auto &[a, b] = vocab_.merges[rank];
        const auto ia = token_ids_.find(a), ib = token_ids_.find(b), im = token_ids_.find(a + b);
        if (ia == token_ids_.end() || ib == token_ids_.end() || im == token_ids_.end())
            fail("byte-level BPE vocabulary: merge {} ('{} {}'): '{}' is not a token", rank, a, b,
                 ia == token_ids_.end() ? a : ib == token_ids_.end() ? b : a + b);
        // a repeated pair takes its last rank, as HF's map of merges does
        merge_ranks_.insert_or_assign(pair_key(ia->second, ib->second), std::pair{int32_t(rank), im->second});
    }
    for (const bpe_added_token &a : vocab_.added) {
        auto &index = a.normalized ? added_normalized_ : added_raw_;
        index[uint8_t(a.content[0])].push_back(&a);
    }
    for (auto *index : {&added_raw_, &added_normalized_})
        for (auto &list : *index)
            std::stable_sort(list.begin(), list.end(), [](auto *x, auto *y) { return x->content.size() > y->content.size(); });
    if (vocab_.unk_id < -1 || vocab_.unk_id >= int32_t(n)) fail("byte-level BPE vocabulary: unk id {} outside [0, {})", vocab_.unk_id, n);
    set_special_tokens(vocab_.bos_id, vocab_.eos_id, vocab_.add_bos);
}

std::unique_ptr<byte_bpe_tokenizer> byte_bpe_tokenizer::load_json(const std::filesystem::path &file) {
    return detail::load_tokenizer_file<byte_bpe_tokenizer, byte_bpe_vocab>(
        file, "a byte-level BPE tokenizer.json", [&](std::span<const uint8_t> bytes, byte_bpe_vocab &vocab) {
            const status st = parse_tokenizer_json({reinterpret_cast<const char *>(bytes.data()), bytes.size()}, vocab);
            if (!st) return st;
            // tokenizer_config.json (transformers) names the eos token, and bos when no template adds it
            const std::filesystem::path config_file = file.parent_path() / "tokenizer_config.json";
            if (!std::filesystem::exists(config_file)) return st;
            try {
                const json config = json::parse(std::ifstream(config_file));
                auto token_id = [&](const char *name) -> int32_t {
                    const auto it = config.find(name);
                    if (it == config.end() || it->is_null()) return -1;
                    const std::string content = it->is_object() ? it->value("content", "") : it->get<std::string>();
                    for (size_t id = 0; id < vocab.tokens.size(); ++id)
                        if (vocab.tokens[id] == content) return int32_t(id);
                    fail("{}: {} '{}' is not in the vocabulary of {}", config_file.string(), name, content, file.string());
                };
                vocab.eos_id = token_id("eos_token");
                if (vocab.bos_id < 0) {
                    vocab.bos_id = token_id("bos_token");
                    vocab.add_bos = config.value("add_bos_token", false);
                }
            } catch (const json::exception &e) {
                fail("{}: {}", config_file.string(), e.what());
            }
            return st;
        });
}

std::vector<byte_bpe_tokenizer::segment> byte_bpe_tokenizer::split_added(std::string_view text) const {
    std::vector<segment> segments{{text, -1}};
    // Two passes as in HF's AddedVocabulary: tokens with normalized=false on the raw text, then
    // normalized ones on what is left (no normalizer here, so the text is the same).
    for (const auto *index : {&added_raw_, &added_normalized_}) {
        std::vector<segment> next;
        for (const segment &seg : segments) {
            if (seg.added_id >= 0) {
                next.push_back(seg);
                continue;
            }
            const std::string_view s = seg.text;
            size_t done = 0; // end of the last match
            for (size_t i = 0; i < s.size(); ++i) {
                const bpe_added_token *hit = nullptr;
                for (const bpe_added_token *a : (*index)[uint8_t(s[i])])
                    if (s.substr(i).starts_with(a->content)) {
                        hit = a;
                        break;
                    }
                if (!hit) continue;
                size_t begin = i, end = i + hit->content.size();
                // lstrip/rstrip: the whitespace next to the token belongs to it
                while (hit->lstrip && begin > done) {
                    size_t k = begin - 1;
                    while (k > done && (uint8_t(s[k]) & 0xC0) == 0x80) --k;
                    const utf8_char c = utf8_decode(s.substr(k));
                    if (c.code_point == utf8_invalid || !is_whitespace(c.code_point)) break;
                    begin = k;
                }
                while (hit->rstrip && end < s.size()) {
                    const utf8_char c = utf8_decode(s.substr(end));
                    if (c.code_point == utf8_invalid || !is_whitespace(c.code_point)) break;
                    end += c.length;
                }
                if (begin > done) next.push_back({s.substr(done, begin - done), -1});
                next.push_back({s.substr(begin, end - begin), hit->id});
                done = end;
                i = end - 1;
            }
            if (done < s.size()) next.push_back({s.substr(done), -1});
        }
        segments = std::move(next);
    }
    return segments;
}

void byte_bpe_tokenizer::pretokenize_segment(std::string_view text, std::deque<std::string> &storage,
                                             std::vector<std::string_view> &pieces) const {
    std::vector<std::string_view> current{text}, next;
    for (const bpe_pretokenizer_step &step : vocab_.pretokenizer) {
        next.clear();
        for (std::string_view piece : current) {
            switch (step.type) {
            case bpe_pretokenizer_step::kind::split: split_by_regex(piece, step.regex, next); break;
            case bpe_pretokenizer_step::kind::digits: split_digits(piece, step.individual_digits, next); break;
            case bpe_pretokenizer_step::kind::byte_level:
                if (step.add_prefix_space && !piece.starts_with(' ')) {
                    std::string &prefixed = storage.emplace_back(1, ' ');
                    piece = prefixed.append(piece);
                }
                if (step.use_regex) split_by_regex(piece, split_regex::gpt2, next);
                else next.push_back(piece);
                break;
            }
        }
        std::swap(current, next);
    }
    pieces.insert(pieces.end(), current.begin(), current.end());
}

void byte_bpe_tokenizer::encode_piece(std::string_view piece, std::vector<int32_t> &ids) const {
    if (vocab_.ignore_merges) {
        std::string mapped;
        for (char b : piece) mapped += alphabet().utf8_of[uint8_t(b)];
        if (const auto it = token_ids_.find(mapped); it != token_ids_.end()) {
            ids.push_back(it->second);
            return;
        }
    }
    std::vector<detail::bpe_symbol> symbols;
    symbols.reserve(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) {
        // HF BPE: a character missing from the vocabulary becomes unk_token, or is dropped without one
        const int32_t id = byte_token_[uint8_t(piece[i])] >= 0 ? byte_token_[uint8_t(piece[i])] : vocab_.unk_id;
        if (id < 0) continue;
        detail::bpe_symbol s;
        s.begin = uint32_t(i);
        s.size = 1;
        s.id = id;
        symbols.push_back(s);
    }
    if (symbols.empty()) return;
    detail::bpe_merge(symbols, [&](const detail::bpe_symbol &l, const detail::bpe_symbol &r) -> std::optional<detail::bpe_candidate> {
        const auto it = merge_ranks_.find(pair_key(l.id, r.id));
        if (it == merge_ranks_.end()) return std::nullopt;
        return detail::bpe_candidate{-float(it->second.first), it->second.second};
    });
    for (int32_t i = 0; i != -1; i = symbols[i].next) ids.push_back(symbols[i].id);
}

std::vector<byte_bpe_tokenizer::segment> byte_bpe_tokenizer::pieces_of(std::string_view text, std::deque<std::string> &storage) const {
    std::vector<segment> out;
    std::vector<std::string_view> pieces;
    for (const segment &seg : split_added(text)) {
        if (seg.added_id >= 0) {
            out.push_back(seg);
            continue;
        }
        pieces.clear();
        pretokenize_segment(seg.text, storage, pieces);
        for (std::string_view piece : pieces) out.push_back({piece, -1});
    }
    return out;
}

std::vector<int32_t> byte_bpe_tokenizer::encode(std::string_view text, bool add_bos) const {
    std::vector<int32_t> ids;
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    std::deque<std::string> storage;
    // each distinct piece is merged once per call; a repeat copies its ids (HF keeps a cache too)
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen; // piece -> [first, last) in ids
    for (const segment &piece : pieces_of(text, storage)) {
        if (piece.added_id >= 0) {
            ids.push_back(piece.added_id);
        } else if (const auto it = seen.find(piece.text); it != seen.end()) {
            for (size_t k = it->second.first; k < it->second.second; ++k) ids.push_back(ids[k]);
        } else {
            const size_t first = ids.size();
            encode_piece(piece.text, ids);
            seen.emplace(piece.text, std::pair{first, ids.size()});
        }
    }
    return ids;
}

std::vector<std::string> byte_bpe_tokenizer::pretokenize(std::string_view text) const {
    std::deque<std::string> storage;
    std::vector<std::string> out;
    for (const segment &piece : pieces_of(text, storage)) out.emplace_back(piece.text);
    return out;
}

std::string byte_bpe_tokenizer::decode(std::span<const int32_t> ids) const {
    std::string bytes;
    for (const int32_t id : ids) {
        check_id(id);
        bytes += token_bytes(vocab_.tokens[id]);
    }
    return utf8_make_valid(bytes, utf8_repair::per_maximal_subpart);
}

std::string byte_bpe_tokenizer::token_text(int32_t id) const {
    check_id(id);
    return vocab_.tokens[id];
}

} // namespace qb
