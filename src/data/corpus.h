// Text corpora for perplexity, by format (not by hard-coded path):
//   wikitext_raw  a wiki.*.raw file of WikiText-2/103; the GPTQ protocol uses its Hugging Face rows
//   text          any plain-text file, as is
//   jsonl         one JSON object per line, a named string field per document
//   c4_json_gz    the C4 validation shard (gzip JSON lines with "text"), documents in file order
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace qb {

// The rows of the Hugging Face `wikitext-2-raw-v1` split, recovered from the raw file exactly:
// split on "\n" keeping line ends; a line that is just " " becomes "", any other line is that
// line plus "\n" (the datasets README states this rule).
std::vector<std::string> wikitext_hf_rows(std::string_view raw);

// "\n\n".join(rows): the text the GPTQ / OmniQuant / FlexQ perplexity code tokenizes.
std::string join_rows(const std::vector<std::string> &rows, std::string_view separator = "\n\n");

// WikiText articles: split at top-level headings (" = Title = " lines), for lm-eval's
// document-level word perplexity. Each document keeps its heading.
std::vector<std::string> wikitext_articles(std::string_view raw);

std::string read_text_file(const std::filesystem::path &path);
// Documents of a JSON-lines file: the string `field` of each object; names file:line on errors.
std::vector<std::string> read_jsonl_field(const std::filesystem::path &path, const std::string &field);
// Same, through gzip (zlib), for the C4 shards.
std::vector<std::string> read_jsonl_gz_field(const std::filesystem::path &path, const std::string &field);

} // namespace qb
