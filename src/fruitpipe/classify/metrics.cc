#include "fruitpipe/classify/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "fruitpipe/common/error.h"

namespace fruitpipe::classify {
namespace {

nlohmann::json Rate(std::int64_t num, std::int64_t den) {
  if (den == 0) return nullptr;
  return static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace

nlohmann::json Evaluate(const std::vector<std::string>& classes, const std::vector<std::string>& truth,
                        const std::vector<Prediction>& predictions, const Taxonomy& taxonomy) {
  if (truth.size() != predictions.size()) {
    throw InvalidArgumentError("evaluate: " + std::to_string(truth.size()) + " labels but " +
                               std::to_string(predictions.size()) + " predictions");
  }
  std::map<std::string, int> index;
  for (const std::string& c : classes) index.emplace(c, static_cast<int>(index.size()));
  if (index.size() != classes.size()) throw InvalidArgumentError("evaluate: duplicate class labels");
  const int n_classes = static_cast<int>(classes.size());

  std::vector<std::vector<std::int64_t>> confusion(n_classes, std::vector<std::int64_t>(n_classes, 0));
  std::int64_t n_known = 0, n_unknown = 0, top1 = 0, top5 = 0, accepted = 0, accepted_correct = 0;
  std::int64_t known_flagged = 0, unknown_flagged = 0, species_correct = 0;
  constexpr int kBins = 10;
  std::vector<std::int64_t> bin_count(kBins, 0), bin_correct(kBins, 0);
  std::vector<double> bin_confidence(kBins, 0.0);
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> unknown_labels;  // support, flagged
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const Prediction& p = predictions[i];
    const auto predicted = index.find(p.label);
    if (predicted == index.end()) {
      throw InvalidArgumentError("evaluate: prediction " + std::to_string(i) + " has label '" + p.label +
                                 "' outside the class list");
    }
    const auto actual = index.find(truth[i]);
    if (actual == index.end()) {
      ++n_unknown;
      unknown_flagged += p.unknown;
      auto& [support, flagged] = unknown_labels[truth[i]];
      ++support;
      flagged += p.unknown;
      continue;
    }
    ++n_known;
    const bool correct = predicted->second == actual->second;
    ++confusion[actual->second][predicted->second];
    top1 += correct;
    species_correct += p.species == taxonomy.SpeciesOf(truth[i]);
    const int bin = std::clamp(static_cast<int>(p.confidence * kBins), 0, kBins - 1);
    ++bin_count[bin];
    bin_correct[bin] += correct;
    bin_confidence[bin] += p.confidence;
    top5 += std::any_of(p.top.begin(), p.top.begin() + std::min<std::size_t>(5, p.top.size()),
                        [&](const ScoredLabel& s) { return s.label == truth[i]; });
    known_flagged += p.unknown;
    if (!p.unknown) {
      ++accepted;
      accepted_correct += correct;
    }
  }

  nlohmann::json per_class = nlohmann::json::object();
  for (int c = 0; c < n_classes; ++c) {
    std::int64_t support = 0, predicted = 0;
    for (int o = 0; o < n_classes; ++o) {
      support += confusion[c][o];
      predicted += confusion[o][c];
    }
    const std::int64_t tp = confusion[c][c];
    // Like scikit-learn's zero_division=0: a class never predicted has precision 0.
    per_class[classes[c]] = {
        {"precision", predicted == 0 ? 0.0 : static_cast<double>(tp) / static_cast<double>(predicted)},
        {"recall", support == 0 ? 0.0 : static_cast<double>(tp) / static_cast<double>(support)},
        {"support", support},
    };
  }
  nlohmann::json unknown = nlohmann::json::object();
  for (const auto& [label, counts] : unknown_labels) {
    unknown[label] = {{"support", counts.first}, {"flagged", counts.second}};
  }
  // Expected calibration error: the count-weighted gap between confidence and accuracy.
  nlohmann::json bins = nlohmann::json::array();
  double ece = 0.0;
  for (int b = 0; b < kBins; ++b) {
    nlohmann::json bin = {{"lower", static_cast<double>(b) / kBins}, {"upper", static_cast<double>(b + 1) / kBins},
                          {"count", bin_count[b]}, {"mean_confidence", nullptr}, {"accuracy", Rate(bin_correct[b], bin_count[b])}};
    if (bin_count[b] > 0) {
      const double mean = bin_confidence[b] / static_cast<double>(bin_count[b]);
      bin["mean_confidence"] = mean;
      ece += static_cast<double>(bin_count[b]) / static_cast<double>(n_known) *
             std::abs(mean - static_cast<double>(bin_correct[b]) / static_cast<double>(bin_count[b]));
    }
    bins.push_back(bin);
  }
  return {
      {"top1_accuracy", Rate(top1, n_known)},
      {"species_top1_accuracy", Rate(species_correct, n_known)},
      {"calibration", {{"ece", n_known == 0 ? nlohmann::json(nullptr) : nlohmann::json(ece)}, {"bins", bins}}},
      {"top1_accuracy_accepted", Rate(accepted_correct, accepted)},
      {"top5_accuracy", Rate(top5, n_known)},
      {"unknown_flagged_rate", Rate(unknown_flagged, n_unknown)},
      {"known_false_unknown_rate", Rate(known_flagged, n_known)},
      {"per_class", per_class},
      {"confusion", {{"labels", classes}, {"matrix", confusion}}},
      {"n_known", n_known},
      {"n_known_accepted", accepted},
      {"n_unknown", n_unknown},
      {"unknown_labels", unknown},
  };
}

}  // namespace fruitpipe::classify
