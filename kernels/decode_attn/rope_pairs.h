// Which elements RoPE rotates together (shared by the kernel and its CUDA-free reference).
#pragma once

namespace qb::attn {

enum class rope_pairs {
    half_split,  // (x[i], x[i + D/2]): Hugging Face LLaMA
    interleaved, // (x[2i], x[2i + 1]): Meta's code, llama2.c
};

} // namespace qb::attn
