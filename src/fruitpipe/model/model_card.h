// The model card: a small JSON file beside an ONNX model that says what the model is and how
// to feed it (see docs/model-card.md). The card, not the code, decides preprocessing.
#pragma once

#include <string>

#include "fruitpipe/image/preprocess.h"

namespace fruitpipe::model {

struct ModelCard {
  std::string card_path;     // the JSON file
  std::string name;
  std::string description;
  std::string file;          // absolute or card-relative path, resolved to a usable path
  std::string sha256;        // expected sha256 of `file`, lowercase hex
  std::string format = "onnx";
  std::string input_name;    // graph input
  std::string output_name;   // graph output holding the feature vector, or "auto"
  int dim = 0;               // feature dimension
  std::string url;           // where `model fetch` can download the file, optional
  image::PreprocessSpec input;
};

// Parses and validates a card; throws InvalidArgumentError naming the card and the field.
ModelCard ParseModelCard(const std::string& json_text, const std::string& card_path);
ModelCard LoadModelCard(const std::string& card_path);

// Streaming sha256 of a file as lowercase hex; throws NotFoundError / IOError naming the file.
std::string Sha256OfFile(const std::string& path);

// Checks that the model file exists and its sha256 matches the card; throws a one-line
// error naming the file otherwise.
void VerifyModelFile(const ModelCard& card);

// The card to use: the explicit path if given, else $FRUITPIPE_MODEL, else an error that says
// how to get one.
std::string ResolveModelCardPath(const std::string& explicit_path);

}  // namespace fruitpipe::model
