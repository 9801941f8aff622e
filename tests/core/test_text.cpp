// Small helpers behind error messages and progress output.
#include "core/progress.h"
#include "core/text.h"

#include <doctest/doctest.h>

using namespace qb;

TEST_SUITE("text") {

TEST_CASE("edit distance and suggestions") {
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("rtn", "rnt") == 1); // one transposition
    CHECK(edit_distance("cdua", "cuda") == 1);
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(closest_names("rnt", {"rtn", "none", "group_int6"}) == std::vector<std::string>{"rtn"});
    CHECK(closest_names("w8a8", {"cublaslt_w8a8", "torch_ref"}) == std::vector<std::string>{"cublaslt_w8a8"});
    CHECK(closest_names("zzzzzz", {"rtn", "none"}).empty());
    CHECK(closest_names("cdua", {"cpu", "cuda"}) == std::vector<std::string>{"cuda"}); // best only
    CHECK(closest_names("rtm", {"rtn", "rtx"}) == std::vector<std::string>{"rtn", "rtx"}); // ties kept
    CHECK(suggestion_hint("rnt", {"rtn", "none"}) == " Did you mean: rtn? Available: none, rtn");
    CHECK(suggestion_hint("zzzzzz", {"rtn"}) == " Available: rtn");
}

TEST_CASE("number formatting for tables") {
    CHECK(format_number(3.0) == "3");
    CHECK(format_number(5.4712) == "5.471");
    CHECK(format_number(0.012345) == "0.01235");
    CHECK(format_number(1.5e-5) == "1.500e-05");
    CHECK(format_number(12345.678) == "12345.68");
}

TEST_CASE("progress rendering: percent, bar, counts, rate, ETA") {
    CHECK(progress::render("ppl", 45, 100, 5.0, "win", 10) == "ppl   45% [####......]  45/100 win  5.0 win/s  ETA 0:11");
    CHECK(progress::render("x", 0, 10, 0.0, "it", 4) == "x    0% [....]  0/10 it  0.0 it/s  ETA --:--");
    CHECK(progress::format_duration(3723) == "1:02:03");
    CHECK(progress::format_duration(65) == "1:05");
}

} // TEST_SUITE
