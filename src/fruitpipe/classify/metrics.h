// Evaluation of identifier predictions against true labels (docs/formats/classifier.md,
// "Evaluation"). An image whose true label is not in the identifier's class list is an
// unknown-class image; all accuracy figures are over known-class images.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/classify/identifier.h"

namespace fruitpipe::classify {

// predictions[i] was made for an image labelled truth[i]. Keys: top1_accuracy,
// top1_accuracy_accepted, top5_accuracy, unknown_flagged_rate, known_false_unknown_rate,
// per_class {label: {precision, recall, support}}, confusion {labels, matrix[true][pred]},
// n_known, n_known_accepted, n_unknown, unknown_labels {label: {support, flagged}}.
// A rate over zero images is null.
nlohmann::json Evaluate(const std::vector<std::string>& classes, const std::vector<std::string>& truth,
                        const std::vector<Prediction>& predictions);

}  // namespace fruitpipe::classify
