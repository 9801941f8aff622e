// Zero-shot multiple-choice tasks defined in YAML (datasets/tasks/<task>.yaml, lm-eval v0.4 shape)
// and read from the data directory: each item becomes one (context, continuation) request per
// choice, ready for log-likelihood scoring.
#pragma once
#include "core/json.h"
#include "core/paths.h"
#include "data/data_files.h"

#include <filesystem>
#include <string>
#include <vector>

namespace qb {

struct zeroshot_request {
    std::string context;      // scored as given, not counted
    std::string continuation; // its log-likelihood is the score: target_delimiter + choice
};

struct zeroshot_item {
    int64_t index = 0;                       // position in the task's file(s)
    std::string doc_id;                      // the file's id field when it has one, else the index
    std::vector<zeroshot_request> requests;  // one per choice
    std::vector<std::string> choices;        // without the delimiter: acc_norm divides by their length
    int gold = -1;
    std::string doc_hash, prompt_hash, target_hash; // sha256 of the doc, of the contexts, of the continuations
};

struct zeroshot_task {
    std::string name;
    std::filesystem::path definition_file;
    std::string definition_sha256;
    std::string version;                 // metadata.version
    std::string template_name;           // metadata.template
    bool partial = false;                // WinoGrande-style partial scoring (contexts differ per choice)
    std::vector<std::string> metrics;    // acc, acc_norm
    std::vector<data_file_info> files;
    std::vector<zeroshot_item> items;
    std::string task_hash;               // sha256 over every item's three hashes, in order
};

// The YAML of a task name in <source>/datasets/tasks/, or a path to one's own file.
std::filesystem::path zeroshot_task_file(const std::string &name_or_path);
std::vector<std::string> zeroshot_task_names(); // the task files shipped

// Parses the definition (strict keys, file:line:col errors) and reads the items.
zeroshot_task zeroshot_task_load(const std::filesystem::path &definition, const data_dir_choice &data);

// Python-compatible character count (code points of UTF-8), as lm-eval's len(choice).
size_t utf8_length(std::string_view text);

} // namespace qb
