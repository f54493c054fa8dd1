// make_fixture OUT [--report]: writes a synthetic but complete fruitpipe output folder for the
// report's browser test, without the model or the dev data: run.json for a two-rank run of
// 26 shards (with the prefetch overlap and the PCA phase of the real pipeline), rejected.jsonl
// (with a hostile path), Results_PCA parts (written with the pipeline's own table code),
// 141 classes, and an evaluation.json with a confusion matrix. Large enough (26,000 rows) that
// the page must thin its scatter. --report also writes OUT/report.html.
// Prints {"rows": N, "shards": S, "classes": C} on stdout. Deterministic (fixed seed).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/dataset/results.h"
#include "fruitpipe/report/report.h"
#include "fruitpipe/storage/storage.h"

namespace {

using nlohmann::json;

constexpr int kRows = 26000;
constexpr int kShardSize = 1024;
constexpr int kBatch = 32;
constexpr int kWorkers = 2;
constexpr int kK = 16;
constexpr double kStart = 1750000000.0;
const char kSource[] = "/data/fruits-360/Test";

std::vector<std::string> Labels() {
  const char* fruits[] = {"Apple Braeburn", "Apple Golden", "Apple Red", "Apricot", "Avocado", "Banana", "Beetroot",
                          "Blueberry", "Cactus fruit", "Cantaloupe", "Carambula", "Cauliflower", "Cherry", "Chestnut",
                          "Clementine", "Cocos", "Corn", "Cucumber Ripe", "Dates", "Eggplant", "Fig", "Ginger Root",
                          "Granadilla", "Grape Blue", "Grape White", "Grapefruit Pink", "Guava", "Hazelnut",
                          "Huckleberry", "Kaki", "Kiwi", "Kohlrabi", "Kumquats", "Lemon", "Limes", "Lychee",
                          "Mandarine", "Mango", "Mangostan", "Maracuja", "Melon Piel de Sapo", "Mulberry", "Nectarine",
                          "Nut Pecan", "Onion Red", "Orange", "Papaya"};
  std::vector<std::string> labels;
  for (const char* f : fruits) {
    for (int v = 1; v <= 3; ++v) labels.push_back(std::string(f) + " " + std::to_string(v));
  }
  return labels;  // 141, like Fruits-360
}

json Iv(double a, double b) { return json::array({a, b}); }

}  // namespace

int main(int argc, char** argv) {
  using namespace fruitpipe;
  if (argc < 2 || argc > 3 || (argc == 3 && std::string(argv[2]) != "--report")) {
    std::fprintf(stderr, "usage: make_fixture OUT [--report]\n");
    return 2;
  }
  try {
    auto out = storage::OpenStorage(argv[1]);
    std::mt19937_64 rng(20240611);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::normal_distribution<double> normal(0.0, 1.0);
    const std::vector<std::string> labels = Labels();
    const int nc = static_cast<int>(labels.size());

    // Rows sorted by label as the pipeline's listing is; class sizes vary like the real set's.
    std::vector<double> weight(static_cast<std::size_t>(nc));
    double weights = 0;
    for (auto& w : weight) weights += (w = 0.7 + 0.6 * unit(rng));
    std::vector<int> per_class(static_cast<std::size_t>(nc));
    int assigned = 0;
    for (int c = 0; c < nc; ++c) {
      const auto i = static_cast<std::size_t>(c);
      per_class[i] = c == nc - 1 ? kRows - assigned : static_cast<int>(kRows * weight[i] / weights);
      assigned += per_class[i];
    }
    std::vector<double> cx(static_cast<std::size_t>(nc)), cy(static_cast<std::size_t>(nc));
    for (int c = 0; c < nc; ++c) {
      cx[static_cast<std::size_t>(c)] = 9 * normal(rng);
      cy[static_cast<std::size_t>(c)] = 6 * normal(rng);
    }
    dataset::PcaBatch all;
    all.dim = kK;
    std::vector<int> row_class;
    for (int c = 0; c < nc; ++c) {
      for (int i = 0; i < per_class[static_cast<std::size_t>(c)]; ++i) {
        dataset::ImageRow row;
        row.path = std::string(kSource) + "/" + labels[static_cast<std::size_t>(c)] + "/r_" + std::to_string(i) + "_100.jpg";
        row.label = labels[static_cast<std::size_t>(c)];
        row.image_sha256 = std::string(64, '0');
        row.width = row.height = 100;
        all.rows.push_back(row);
        row_class.push_back(c);
        all.vectors.push_back(cx[static_cast<std::size_t>(c)] + 1.6 * normal(rng));
        all.vectors.push_back(cy[static_cast<std::size_t>(c)] + 1.2 * normal(rng));
        for (int d = 2; d < kK; ++d) all.vectors.push_back(normal(rng) * 4.0 / d);
      }
    }

    // Timeline: each rank takes shards in turn; the next shard's read overlaps this shard's
    // decode/featurize batches, as in pipeline::RunPipeline.
    const int shards = (kRows + kShardSize - 1) / kShardSize;
    json timeline = json::array();
    std::map<std::string, double> totals;
    std::vector<double> clock(kWorkers, 0.42), read_end(kWorkers, 0.0);
    std::vector<double> next_read_start(kWorkers, 0.42);
    double featurize_end = 0;
    for (int s = 0; s < shards; ++s) {
      const int w = s % kWorkers;
      const int rows = std::min(kShardSize, kRows - s * kShardSize);
      const double read_a = next_read_start[static_cast<std::size_t>(w)];
      const double read_b = read_a + 0.35 + 0.3 * unit(rng);
      const double start = clock[static_cast<std::size_t>(w)];
      double t = std::max(start, read_b);
      next_read_start[static_cast<std::size_t>(w)] = t;
      json decode = json::array(), featurize = json::array();
      for (int b = 0; b < rows; b += kBatch) {
        const double d = 0.018 + 0.01 * unit(rng), f = 0.085 + 0.03 * unit(rng);
        decode.push_back(Iv(t, t + d));
        featurize.push_back(Iv(t + d, t + d + f));
        totals["decode"] += d;
        totals["featurize"] += f;
        t += d + f;
      }
      const double write_b = t + 0.04 + 0.03 * unit(rng);
      totals["read"] += read_b - read_a;
      totals["write"] += write_b - t;
      clock[static_cast<std::size_t>(w)] = write_b;
      featurize_end = std::max(featurize_end, write_b);
      const int rejected = s % 9 == 4 ? 1 : 0;
      timeline.push_back({{"shard", s},
                          {"rows", rows},
                          {"rejected", rejected},
                          {"worker", "rank " + std::to_string(w)},
                          {"this_run", true},
                          {"start", start},
                          {"end", write_b},
                          {"stages",
                           {{"read", json::array({Iv(read_a, read_b)})},
                            {"decode", decode},
                            {"featurize", featurize},
                            {"write", json::array({Iv(t, write_b)})}}}});
    }
    const double fit_seconds = 0.9;
    std::vector<double> pca_clock(kWorkers, featurize_end + fit_seconds);
    double pca_end = 0;
    for (int s = 0; s < shards; ++s) {
      const int w = s % kWorkers;
      const double a = pca_clock[static_cast<std::size_t>(w)], b = a + 0.06 + 0.03 * unit(rng);
      pca_clock[static_cast<std::size_t>(w)] = b;
      pca_end = std::max(pca_end, b);
      timeline[static_cast<std::size_t>(s)]["stages"]["pca"] = json::array({Iv(a, b)});
      totals["pca_transform"] += b - a;
    }
    totals["list"] = 0.42;
    totals["pca_fit"] = fit_seconds;
    const double seconds = pca_end + 0.25;

    std::vector<double> ratio;
    double left = 0.93;
    for (int i = 0; i < kK; ++i) {
      ratio.push_back(left * 0.21);
      left -= ratio.back();
    }
    json labels_json = json::object();
    for (int c = 0; c < nc; ++c) labels_json[labels[static_cast<std::size_t>(c)]] = per_class[static_cast<std::size_t>(c)];
    const json rejected = json::array(
        {{{"path", std::string(kSource) + "/Banana 1/</script><script>alert(1)</script>.jpg"}, {"reason", "decode: not an image (unknown format)"}},
         {{"path", std::string(kSource) + "/Kiwi 2/empty.jpg"}, {"reason", "decode: empty file (0 bytes)"}},
         {{"path", std::string(kSource) + "/Lemon 3/huge.jpg"}, {"reason", "decode: declares 50000x50000 pixels, more than --max-pixels 40000000"}}});
    const json run = {
        {"fruitpipe_version", "0.1.0"},
        {"command", "run"},
        {"run_id", "f1x7u2e0a9b3"},
        {"source", kSource},
        {"output", out->Uri("")},
        {"started_at", "2025-06-15T15:06:40Z"},
        {"finished_at", "2025-06-15T15:07:52Z"},
        {"start_time", kStart},
        {"seconds", seconds},
        {"images", kRows},
        {"images_processed", kRows},
        {"rejected", rejected.size()},
        {"listed", kRows + static_cast<int>(rejected.size())},
        {"images_per_second", kRows / seconds},
        {"shards_processed", shards},
        {"shards_total", shards},
        {"workers", {{"processes", kWorkers}, {"threads_per_process", 8}, {"cores", 16}, {"mode", "mpi"}}},
        {"model", {{"name", "mobilenet_v2_features"}, {"sha256", std::string(64, 'c')}, {"card", "/models/mobilenet_v2_features.json"},
                   {"backend", "onednn"}, {"precision", "fp32"}, {"input_size", 224}, {"dim", 1280}}},
        {"pca", {{"k", kK}, {"n", kRows}, {"dim", 1280}, {"total_variance", 412.5}, {"explained_variance_ratio", ratio},
                 {"fitted", true}, {"model_id", "0a1b2c3d4e5f"}, {"source", "fit"}}},
        {"stages", totals},
        {"shard_timeline", timeline},
        {"labels", labels_json},
        {"exit_code", 0}};

    for (int s = 0; s < shards; ++s) {
      dataset::PcaBatch part;
      part.dim = kK;
      const std::size_t a = static_cast<std::size_t>(s) * kShardSize;
      const std::size_t b = std::min<std::size_t>(a + kShardSize, kRows);
      part.rows.assign(all.rows.begin() + static_cast<std::ptrdiff_t>(a), all.rows.begin() + static_cast<std::ptrdiff_t>(b));
      part.vectors.assign(all.vectors.begin() + static_cast<std::ptrdiff_t>(a * kK), all.vectors.begin() + static_cast<std::ptrdiff_t>(b * kK));
      char key[64];
      std::snprintf(key, sizeof key, "Results_PCA/part-%05d-0a1b2c3d4e5f.snappy.parquet", s);
      out->Put(key, parquet::WriteParquet(dataset::ResultsPcaTable(part)));
    }

    // Evaluation: mostly right, with confusions between the variants of one fruit.
    json matrix = json::array();
    std::vector<std::vector<int>> m(static_cast<std::size_t>(nc), std::vector<int>(static_cast<std::size_t>(nc), 0));
    int correct = 0, total = 0;
    for (int c = 0; c < nc; ++c) {
      const int n = per_class[static_cast<std::size_t>(c)];
      const int wrong = c % 5 == 0 ? static_cast<int>(n * 0.12) : c % 3 == 0 ? 2 : 0;
      m[static_cast<std::size_t>(c)][static_cast<std::size_t>(c)] = n - wrong;
      if (wrong) m[static_cast<std::size_t>(c)][static_cast<std::size_t>(c % 3 == 2 ? c - 1 : c + 1)] += wrong;
      correct += n - wrong;
      total += n;
    }
    json per_class_json = json::object();
    for (int c = 0; c < nc; ++c) {
      int col = 0;
      for (int r = 0; r < nc; ++r) col += m[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)];
      const int tp = m[static_cast<std::size_t>(c)][static_cast<std::size_t>(c)];
      per_class_json[labels[static_cast<std::size_t>(c)]] = {
          {"precision", col ? static_cast<double>(tp) / col : 0.0},
          {"recall", static_cast<double>(tp) / per_class[static_cast<std::size_t>(c)]},
          {"support", per_class[static_cast<std::size_t>(c)]}};
      matrix.push_back(m[static_cast<std::size_t>(c)]);
    }
    // Calibration: slightly overconfident, most images in the top bin, the lowest bins empty.
    json bins = json::array();
    const int bin_count[10] = {0, 0, 3, 11, 24, 58, 131, 402, 1187, total - 1816};
    double ece = 0;
    for (int b = 0; b < 10; ++b) {
      const int n = bin_count[b];
      const double conf = b / 10.0 + 0.06, acc = std::max(0.0, conf - 0.04 - 0.01 * (b % 3));
      bins.push_back({{"lower", b / 10.0}, {"upper", (b + 1) / 10.0}, {"count", n},
                      {"mean_confidence", n ? json(conf) : json(nullptr)}, {"accuracy", n ? json(acc) : json(nullptr)}});
      ece += static_cast<double>(n) / total * (conf - acc);
    }
    const json evaluation = {{"top1_accuracy", static_cast<double>(correct) / total},
                             {"species_top1_accuracy", 0.9873},
                             {"calibration", {{"ece", ece}, {"bins", bins}}},
                             {"offtopic", {{"images", 500}, {"flagged", 471}, {"flagged_rate", 471 / 500.0}}},
                             {"top5_accuracy", 0.9981},
                             {"unknown_flagged_rate", 0.912},
                             {"known_false_unknown_rate", 0.014},
                             {"per_class", per_class_json},
                             {"confusion", {{"labels", labels}, {"matrix", matrix}}}};

    std::string jsonl;
    for (const auto& r : rejected) jsonl += r.dump() + "\n";
    out->Put("rejected.jsonl", jsonl);
    out->Put("evaluation.json", evaluation.dump(2));
    out->Put("run.json", run.dump(2));
    out->Put("_SUCCESS", "");
    if (argc == 3) report::WriteReport(*out);
    std::printf("%s\n", json{{"rows", kRows}, {"shards", shards}, {"classes", nc}}.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fixture: %s\n", e.what());
    return 1;
  }
  return 0;
}
