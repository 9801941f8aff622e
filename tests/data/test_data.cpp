// The data layer: SHA256SUMS checks, corpora by format, zero-shot task definitions on the real
// evaluation sets (found through the data directory; skipped with a message when absent).
#include "config.h"
#include "core/config_tree.h"
#include "core/error.h"
#include "core/paths.h"
#include "core/sha256.h"
#include "data/corpus.h"
#include "data/data_files.h"
#include "data/zeroshot_tasks.h"
#include "test_util.h"

#include <doctest/doctest.h>

#if QBENCH_HAVE_ZLIB
#include <zlib.h>
#endif

using namespace qb;
namespace fs = std::filesystem;

namespace {
// The team's data directory, as qbench resolves it by default ($QBENCH_DATA_DIR or ../shared).
data_dir_choice shared_data() {
    auto d = resolve_data_dir("", "", "x.yaml");
    d.path /= "datasets";
    return d;
}
bool have_shared_data() { return fs::exists(shared_data().path / "SHA256SUMS"); }
} // namespace

TEST_SUITE("data") {

TEST_CASE("wikitext rows follow the Hugging Face split exactly") {
    const std::string raw = " \n = Title = \n \n Some text .\n";
    auto rows = wikitext_hf_rows(raw);
    REQUIRE(rows.size() == 4);
    CHECK(rows[0] == "");
    CHECK(rows[1] == " = Title = \n");
    CHECK(rows[2] == "");
    CHECK(rows[3] == " Some text .\n");
    CHECK(join_rows(rows) == "\n\n = Title = \n\n\n\n\n Some text .\n");
    auto docs = wikitext_articles(" = A = \n x\n = = Sub = = \n y\n = B = \n z\n");
    REQUIRE(docs.size() == 2);
    CHECK(docs[0] == " = A = \n x\n = = Sub = = \n y\n");
    CHECK(docs[1] == " = B = \n z\n");
}

TEST_CASE("SHA256SUMS: match, not listed, mismatch") {
    test::scratch_dir dir;
    dir.write("sub/a.txt", "hello");
    dir.write("sub/b.txt", "other");
    dir.write("SHA256SUMS", sha256_hex("hello") + " *sub/a.txt\n" + sha256_hex("nope") + "  sub/b.txt\n");
    dir.write("sub/c.txt", "unlisted");
    data_dir_choice d{dir.path(), "test"};
    auto a = data_file_verified(d, "sub/a.txt");
    CHECK(a.sha256 == sha256_hex("hello"));
    CHECK(a.verified.find("SHA256SUMS match") == 0);
    CHECK(a.bytes == 5);
    CHECK(data_file_verified(d, "sub/c.txt").verified.find("not listed in") == 0);
    CHECK_THROWS_WITH_AS(data_file_verified(d, "sub/b.txt"), doctest::Contains("does not match"), error);
    try {
        data_file_verified(d, "sub/missing.txt");
        FAIL("a missing file must be an error");
    } catch (const error &e) {
        const std::string msg = e.what();
        CHECK(msg.find("data file not found: ") == 0);
        CHECK(msg.find("(from test)") != std::string::npos);
        CHECK(msg.find("QBENCH_DATA_DIR") != std::string::npos);
    }
}

TEST_CASE("corpora: jsonl fields and gzip shards, with file:line errors") {
    test::scratch_dir dir;
    auto p = dir.write("c.jsonl", "{\"text\": \"one\"}\n{\"text\": \"two\", \"x\": 1}\n");
    CHECK(read_jsonl_field(p, "text") == std::vector<std::string>{"one", "two"});
    auto bad = dir.write("bad.jsonl", "{\"text\": \"one\"}\n{\"body\": 2}\n");
    CHECK_THROWS_WITH_AS(read_jsonl_field(bad, "text"), doctest::Contains("bad.jsonl:2: no string field 'text'"), error);
#if QBENCH_HAVE_ZLIB
    // A C4-like shard written here (the real one is not in the data directory).
    auto gz = dir.path() / "c4-validation.00000-of-00008.json.gz";
    gzFile f = gzopen(gz.c_str(), "wb");
    REQUIRE(f);
    std::string body;
    for (int i = 0; i < 1000; ++i) body += "{\"text\": \"document " + std::to_string(i) + "\", \"url\": \"u\"}\n";
    gzwrite(f, body.data(), static_cast<unsigned>(body.size()));
    gzclose(f);
    auto docs = read_jsonl_gz_field(gz, "text");
    REQUIRE(docs.size() == 1000);
    CHECK(docs[999] == "document 999");
#endif
}

TEST_CASE("the real WikiText-2 test split: rows and size") {
    if (!have_shared_data()) {
        MESSAGE("data directory not found; skipped");
        return;
    }
    auto info = data_file_verified(shared_data(), "wikitext2/wiki.test.raw");
    CHECK(info.verified.find("SHA256SUMS match") == 0);
    CHECK(info.bytes == 1290590);
    auto rows = wikitext_hf_rows(read_text_file(info.path));
    CHECK(rows.size() == 4358); // the HF test split has 4358 rows
    CHECK(rows[0] == "");
    CHECK(rows[1] == " = Robert Boulter = \n");
}

TEST_CASE("the six zero-shot tasks load with lm-eval's prompts and item counts") {
    if (!have_shared_data()) {
        MESSAGE("data directory not found; skipped");
        return;
    }
    struct expect { const char *task; size_t items; size_t choices; };
    for (auto e : {expect{"piqa", 1838, 2}, expect{"arc_easy", 2376, 0}, expect{"arc_challenge", 1172, 0}, expect{"boolq", 3270, 2},
                   expect{"hellaswag", 10042, 4}, expect{"winogrande", 1267, 2}}) {
        auto t = zeroshot_task_load(zeroshot_task_file(e.task), shared_data());
        CHECK_MESSAGE(t.items.size() == e.items, e.task);
        CHECK(t.task_hash.size() == 64);
        for (const auto &f : t.files) CHECK_MESSAGE(f.verified.find("SHA256SUMS match") == 0, f.relative);
        for (const auto &item : t.items) {
            if (e.choices) REQUIRE(item.requests.size() == e.choices);
            REQUIRE(item.gold >= 0);
        }
    }
    auto piqa = zeroshot_task_load(zeroshot_task_file("piqa"), shared_data());
    const auto &p0 = piqa.items[0];
    CHECK(p0.requests[0].context == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
    CHECK(p0.requests[0].continuation.rfind(" Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips", 0) == 0);
    CHECK(p0.gold == 0);
    CHECK(utf8_length(p0.choices[0]) == p0.choices[0].size());

    auto arc = zeroshot_task_load(zeroshot_task_file("arc_easy"), shared_data());
    CHECK(arc.items[0].requests[0].context ==
          "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:");
    CHECK(arc.items[0].requests[0].continuation == " Sunlight is the source of energy for nearly all ecosystems.");
    CHECK(arc.items[0].doc_id == "Mercury_417466");

    auto boolq = zeroshot_task_load(zeroshot_task_file("boolq"), shared_data());
    CHECK(boolq.items[0].requests[0].context.rfind("Ethanol fuel -- All biomass", 0) == 0);
    CHECK(boolq.items[0].requests[0].context.ends_with("\nQuestion: does ethanol take more energy make that produces?\nAnswer:"));
    CHECK(boolq.items[0].requests[1].continuation == " yes");

    auto hs = zeroshot_task_load(zeroshot_task_file("hellaswag"), shared_data());
    CHECK(hs.items[0].requests[0].context == "Roof shingle removal: A man is sitting on a roof. he");
    CHECK(hs.items[0].requests[3].continuation == " starts pulling up roofing on a roof.");
    CHECK(hs.items[0].gold == 3);

    auto wg = zeroshot_task_load(zeroshot_task_file("winogrande"), shared_data());
    CHECK(wg.partial);
    CHECK(wg.items[0].requests[0].context == "Sarah was a much better surgeon than Maria so Sarah");
    CHECK(wg.items[0].requests[1].context == "Sarah was a much better surgeon than Maria so Maria");
    CHECK(wg.items[0].requests[0].continuation == " always got the easier cases.");
    CHECK(wg.items[0].gold == 1);
}

TEST_CASE("task definitions are validated like experiments") {
    test::scratch_dir dir;
    auto p = dir.write("t.yaml", "task: x\nfiles: {docs: a.jsonl}\nformat: jsonl\ndoc_to_txt: \"{q}\"\n");
    CHECK_THROWS_WITH_AS(zeroshot_task_load(p, {dir.path(), "test"}), doctest::Contains("t.yaml:4:1: doc_to_txt: unknown key. Did you mean: doc_to_text?"),
                         config_error);
    dir.write("a.jsonl", "{\"q\": \"hi\", \"label\": 5}\n");
    auto q = dir.write("q.yaml", "task: x\nfiles: {docs: a.jsonl}\nformat: jsonl\ndoc_to_text: \"{q}\"\ndoc_to_choice: [a, b]\n"
                                 "doc_to_target: label\nmetric_list: [acc]\n");
    CHECK_THROWS_WITH_AS(zeroshot_task_load(q, {dir.path(), "test"}), doctest::Contains("x item 0: gold index 5 outside the 2 choices"), error);
}

} // TEST_SUITE
