// The merge loop shared by the three BPE tokenizers: repeatedly merge the adjacent pair with
// the highest priority, ties to the leftmost pair. SentencePiece's bpe_model.cc (priority =
// piece score), llama2.c's run.c encode (score; it rescans all pairs each step, this keeps a
// heap with lazy invalidation, same choices) and HF tokenizers' BPE word merge (priority = -rank)
// are all this rule; only the lookup of a pair differs.
#pragma once
#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace qb::detail {

struct bpe_symbol {
    uint32_t begin = 0, size = 0; // byte span in the text being merged (spans of neighbours are adjacent)
    int32_t id = -1;              // vocabulary id (-1: not known yet)
    int32_t prev = -1, next = -1; // neighbours among live symbols
    uint32_t version = 0;         // bumped whenever the symbol changes, so queued pairs can tell they are stale
    bool frozen = false;          // never merged (user-defined / special pieces)
    bool alive = true;            // false once merged into its left neighbour
};

struct bpe_candidate {
    float priority; // larger merges first
    int32_t id;     // id of the merged symbol
};

// symbols: in text order (prev/next are set here). lookup(const bpe_symbol &left, const
// bpe_symbol &right) -> std::optional<bpe_candidate>. On return the live symbols are the chain
// from index 0 (always alive) through next.
template <class Lookup>
void bpe_merge(std::vector<bpe_symbol> &symbols, Lookup &&lookup) {
    const int32_t n = int32_t(symbols.size());
    for (int32_t i = 0; i < n; ++i) {
        symbols[i].prev = i - 1;
        symbols[i].next = i + 1 < n ? i + 1 : -1;
    }
    struct entry {
        float priority;
        int32_t left, right, id;
        uint32_t left_version, right_version;
    };
    auto lower = [](const entry &a, const entry &b) {
        return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
    };
    std::priority_queue<entry, std::vector<entry>, decltype(lower)> agenda(lower);
    auto consider = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0 || symbols[l].frozen || symbols[r].frozen) return;
        if (const std::optional<bpe_candidate> c = lookup(symbols[l], symbols[r]))
            agenda.push({c->priority, l, r, c->id, symbols[l].version, symbols[r].version});
    };
    for (int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);
    while (!agenda.empty()) {
        const entry top = agenda.top();
        agenda.pop();
        bpe_symbol &left = symbols[top.left], &right = symbols[top.right];
        if (!left.alive || !right.alive || left.version != top.left_version || right.version != top.right_version)
            continue;
        left.size += right.size;
        left.id = top.id;
        left.next = right.next;
        ++left.version;
        if (right.next >= 0) symbols[right.next].prev = top.left;
        right.alive = false;
        ++right.version;
        consider(left.prev, top.left);
        consider(top.left, left.next);
    }
}

} // namespace qb::detail
