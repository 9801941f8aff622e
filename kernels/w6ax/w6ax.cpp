#include "w6ax/w6ax.h"
#include "w6ax/w6ax_crossover.h"
#include "w6_imma/w6_imma.h"

namespace qb::w6 {

namespace {
int btc_max_m(int a_bits) {
    for (const auto &row : w6ax_crossover)
        if (row.a_bits == a_bits) return row.btc_max_m;
    return 0;
}
} // namespace

w6ax_choice w6ax_choose(int m, int, int, int a_bits) {
    return m <= btc_max_m(a_bits) ? w6ax_choice::w6ax_choice_btc : w6ax_choice::w6ax_choice_imma;
}

const char *w6ax_choice_name(w6ax_choice c) { return c == w6ax_choice::w6ax_choice_btc ? "flexq_btc" : "w6_imma"; }

bool w6ax_may_use_btc(int, int, int a_bits) { return btc_max_m(a_bits) > 0; }

bool w6ax_fuse_act(int m, int n, int k, int a_bits) {
    if (!w6_imma_fused_supports(m, a_bits).ok()) return false;
    for (const auto &row : w6ax_fuse)
        if (m <= row.max_m) return (long long)n * k <= row.max_nk;
    return false;
}

} // namespace qb::w6
