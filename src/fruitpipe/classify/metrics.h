// Evaluation of identifier predictions against true labels (docs/formats/classifier.md,
// "Evaluation"). An image whose true label is not in the identifier's class list is an
// unknown-class image; all accuracy figures are over known-class images.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/classify/identifier.h"

namespace fruitpipe::classify {

// predictions[i] was made for an image labelled truth[i]; `taxonomy` gives the true label's
// species. Keys: top1_accuracy, top1_accuracy_accepted, top5_accuracy, species_top1_accuracy,
// unknown_flagged_rate, known_false_unknown_rate, calibration {ece, bins[10] {lower, upper,
// count, mean_confidence, accuracy}} (top-1 confidence against correctness, known images),
// per_class {label: {precision, recall, support}}, confusion {labels, matrix[true][pred]},
// n_known, n_known_accepted, n_unknown, unknown_labels {label: {support, flagged}}.
// A rate over zero images is null.
nlohmann::json Evaluate(const std::vector<std::string>& classes, const std::vector<std::string>& truth,
                        const std::vector<Prediction>& predictions, const Taxonomy& taxonomy);

}  // namespace fruitpipe::classify
