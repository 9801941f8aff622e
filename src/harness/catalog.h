// The registries as seen by code that must not include LibTorch (the CLI, the config parser).
#pragma once
#include "core/registry.h"

#include <string>

namespace qb {

// Option schemas of every registered component.
component_catalog registered_catalog();

// `qbench list`: every registry with each entry's summary and options (name, type, default,
// range, help). `kind` empty = all kinds.
std::string describe_registries(const component_catalog &catalog, const std::string &kind);

} // namespace qb
