// The taxonomy: each class label's species ("Apple Granny Smith" -> "Apple") and the
// ImageNet-1k class that shows it, if any (docs/formats/taxonomy.md). The built-in one is
// src/fruitpipe/classify/taxonomy.tsv compiled in; a model directory keeps the copy it was
// trained with, so answers never depend on the binary that serves them.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fruitpipe::classify {

class Taxonomy {
 public:
  struct Entry {
    std::string species;
    int imagenet_class = -1;  // 0..999, or -1: ImageNet has no class for it
  };

  // Lines "label<TAB>species<TAB>index|-"; '#' lines and blank lines are skipped. Throws
  // InvalidArgumentError naming `source` and the line on a malformed or duplicate line.
  static Taxonomy Parse(std::string_view tsv, const std::string& source);
  static const Taxonomy& Builtin();

  // A label not listed is its own species, with no ImageNet class.
  std::string SpeciesOf(const std::string& label) const;
  int ImagenetClassOf(const std::string& label) const;
  // The TSV text it was parsed from (byte for byte).
  const std::string& text() const { return text_; }

 private:
  std::map<std::string, Entry> entries_;
  std::string text_;
};

}  // namespace fruitpipe::classify
