#include "core/run_record.h"

#include "core/clock.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

namespace qb {

namespace fs = std::filesystem;

void write_file_atomic(const fs::path &path, const std::string &text) {
    fs::path tmp = path;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) fail("cannot write {}", tmp.string());
        out << text;
        out.flush();
        if (!out) fail("write error on {}", tmp.string());
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) fail("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message());
}

fs::path experiment_results_dir(const fs::path &results_root, const std::string &experiment) { return results_root / experiment; }

run_record::run_record(const fs::path &results_root, const experiment &exp, const experiment_cell &cell,
                       const std::vector<std::string> &argv) {
    config_hash_ = cell.config_hash();
    const fs::path exp_dir = experiment_results_dir(results_root, exp.name);
    std::error_code ec;
    fs::create_directories(exp_dir, ec);
    if (ec) fail("cannot create results folder {}: {}", exp_dir.string(), ec.message());
    const std::string base_id = utc_now_compact() + "_" + config_hash_.substr(0, 8);
    run_id_ = base_id;
    // A forced re-run within the same second gets a suffix rather than overwriting a record.
    for (int i = 2; fs::exists(exp_dir / run_id_); ++i) run_id_ = base_id + "-" + std::to_string(i);
    dir_ = exp_dir / run_id_;
    fs::create_directories(dir_, ec);
    if (ec) fail("cannot create run folder {}: {}", dir_.string(), ec.message());

    json env = environment_json();
    manifest_ = {
        {"schema_version", manifest_schema_version},
        {"run_id", run_id_},
        {"experiment", exp.name},
        {"experiment_file", exp.file.string()},
        {"experiment_file_sha256", fs::exists(exp.file) ? sha256_file_hex(exp.file) : std::string()},
        {"description", exp.description},
        {"status", "running"},
        {"error", nullptr},
        {"config_hash", config_hash_},
        {"config", cell.to_json()},
        {"seeds", {{"global", cell.seed}}},
        {"datasets", json::object()},
        {"inputs", json::object()},
        {"argv", argv},
        {"started", utc_now_iso()},
        {"finished", nullptr},
        {"duration_s", nullptr},
        {"n_metrics", 0},
    };
    for (const char *key : {"git", "build", "versions", "host", "gpu"}) manifest_[key] = env.value(key, json());
    if (env.contains("gpu_error")) manifest_["gpu_error"] = env["gpu_error"];
    write_manifest();

    metrics_ = std::fopen((dir_ / "metrics.jsonl").c_str(), "w");
    log_ = std::fopen((dir_ / "log.txt").c_str(), "w");
    if (!metrics_ || !log_) fail("cannot open metrics.jsonl/log.txt in {}", dir_.string());
    log_attach_file(log_);
}

run_record::~run_record() {
    if (!finished_) {
        try {
            close("failed", "interrupted: the run ended before it finished (exception or signal)");
        } catch (...) {
        }
    }
}

void run_record::write_manifest() { write_file_atomic(dir_ / "manifest.json", manifest_.dump(2) + "\n"); }

void run_record::add_metric(json row) {
    row["run_id"] = run_id_;
    row["config_hash"] = config_hash_;
    const std::string line = row.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), metrics_);
    std::fflush(metrics_);
    ++n_metrics_;
}

void run_record::set_field(const std::string &key, json value) {
    manifest_[key] = std::move(value);
    write_manifest();
}

void run_record::add_dataset(const std::string &name, json info) {
    manifest_["datasets"][name] = std::move(info);
    write_manifest();
}

void run_record::add_input(const std::string &name, json info) {
    manifest_["inputs"][name] = std::move(info);
    write_manifest();
}

void run_record::close(const std::string &status, const std::string &error) {
    finished_ = true;
    log_attach_file(nullptr);
    if (metrics_) std::fclose(metrics_);
    if (log_) std::fclose(log_);
    metrics_ = log_ = nullptr;
    manifest_["status"] = status;
    manifest_["error"] = error.empty() ? json() : json(error);
    manifest_["finished"] = utc_now_iso();
    manifest_["n_metrics"] = n_metrics_;
    // Duration from the recorded stamps keeps the manifest self-consistent.
    std::tm tm{};
    const std::string started = manifest_["started"];
    if (strptime(started.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        auto t0 = std::chrono::system_clock::from_time_t(timegm(&tm));
        manifest_["duration_s"] = std::chrono::duration<double>(std::chrono::system_clock::now() - t0).count();
    }
    write_manifest();
}

void run_record::finish_ok() { close("ok", ""); }
void run_record::finish_failed(const std::string &error) { close("failed", error); }
void run_record::finish_skipped(const std::string &reason) { close("skipped", reason); }

std::vector<fs::path> list_run_dirs(const fs::path &experiment_dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    if (!fs::is_directory(experiment_dir, ec)) return out;
    for (const auto &entry : fs::directory_iterator(experiment_dir, ec))
        if (entry.is_directory() && fs::exists(entry.path() / "manifest.json")) out.push_back(entry.path());
    std::sort(out.begin(), out.end()); // names start with the UTC stamp
    return out;
}

namespace {
json read_json_file(const fs::path &path) {
    std::ifstream in(path);
    if (!in) fail("cannot read {}", path.string());
    try {
        return json::parse(in);
    } catch (const json::exception &e) {
        fail("{}: invalid JSON: {}", path.string(), e.what());
    }
}
} // namespace

std::optional<fs::path> find_completed_run(const fs::path &experiment_dir, const std::string &config_hash) {
    auto dirs = list_run_dirs(experiment_dir);
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
        // Cheap filter on the folder name before reading JSON.
        const std::string tag = fmt::format("_{}", config_hash.substr(0, 8));
        if (it->filename().string().find(tag) == std::string::npos) continue;
        json m;
        try {
            m = read_json_file(*it / "manifest.json");
        } catch (const error &) {
            continue; // a damaged record is not a completed one
        }
        if (m.value("config_hash", "") == config_hash && m.value("status", "") == "ok") return *it;
    }
    return std::nullopt;
}

recorded_run read_run(const fs::path &dir) {
    recorded_run run;
    run.dir = dir;
    run.manifest = read_json_file(dir / "manifest.json");
    std::ifstream in(dir / "metrics.jsonl");
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        try {
            run.metrics.push_back(json::parse(line));
        } catch (const json::exception &e) {
            fail("{}:{}: invalid JSON: {}", (dir / "metrics.jsonl").string(), line_no, e.what());
        }
    }
    return run;
}

} // namespace qb
