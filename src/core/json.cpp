#include "core/json.h"

#include "core/sha256.h"

namespace qb {

std::string canonical_json(const json &value) {
    // dump(-1): compact; error_handler strict so invalid UTF-8 fails loudly instead of hashing
    // something different from what the manifest shows.
    return value.dump(-1, ' ', false, json::error_handler_t::strict);
}

std::string json_hash(const json &value) { return sha256_hex(canonical_json(value)); }

} // namespace qb
