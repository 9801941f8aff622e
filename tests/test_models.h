// Small LLaMA architectures for tests, written once.
#pragma once
#include "model/llama_config.h"

namespace qb::test {

inline llama_config llama_config_of(int64_t dim, int64_t hidden_dim, int64_t n_layers, int64_t n_heads, int64_t n_kv_heads,
                                    int64_t vocab_size, int64_t max_seq_len = 64) {
    llama_config c;
    c.name = "test";
    c.dim = dim;
    c.hidden_dim = hidden_dim;
    c.n_layers = n_layers;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.vocab_size = vocab_size;
    c.max_seq_len = max_seq_len;
    return c;
}

} // namespace qb::test
