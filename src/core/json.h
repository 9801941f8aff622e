// JSON values for resolved configs, manifests and metric rows (nlohmann::json, keys sorted).
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace qb {

using json = nlohmann::json;

// Canonical text of a value: keys sorted (nlohmann's default object is ordered by key), no
// whitespace, shortest round-trip numbers, UTF-8 as is. The config hash is SHA-256 over this.
std::string canonical_json(const json &value);

// sha256(canonical_json(value)), 64 hex digits.
std::string json_hash(const json &value);

} // namespace qb
