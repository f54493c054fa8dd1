#include "fruitpipe/classify/taxonomy.h"

#include <charconv>

#include "fruitpipe/common/error.h"

namespace fruitpipe::classify {

extern const char kBuiltinTaxonomy[];

Taxonomy Taxonomy::Parse(std::string_view tsv, const std::string& source) {
  Taxonomy t;
  t.text_ = std::string(tsv);
  int line_number = 0;
  while (!tsv.empty()) {
    const std::size_t end = tsv.find('\n');
    std::string_view line = tsv.substr(0, end);
    tsv.remove_prefix(end == std::string_view::npos ? tsv.size() : end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const auto fail = [&](const std::string& why) {
      throw InvalidArgumentError(source + ":" + std::to_string(line_number) + ": " + why);
    };
    const std::size_t tab1 = line.find('\t');
    const std::size_t tab2 = tab1 == std::string_view::npos ? tab1 : line.find('\t', tab1 + 1);
    if (tab2 == std::string_view::npos || line.find('\t', tab2 + 1) != std::string_view::npos) {
      fail("expected 3 tab-separated fields: label, species, ImageNet class index or -");
    }
    const std::string label(line.substr(0, tab1));
    Entry e;
    e.species = std::string(line.substr(tab1 + 1, tab2 - tab1 - 1));
    const std::string_view index = line.substr(tab2 + 1);
    if (label.empty() || e.species.empty()) fail("empty label or species");
    if (index != "-") {
      const auto [ptr, ec] = std::from_chars(index.data(), index.data() + index.size(), e.imagenet_class);
      if (ec != std::errc() || ptr != index.data() + index.size() || e.imagenet_class < 0 || e.imagenet_class > 999) {
        fail("ImageNet class index must be 0-999 or -, got '" + std::string(index) + "'");
      }
    }
    if (!t.entries_.emplace(label, std::move(e)).second) fail("duplicate label '" + label + "'");
  }
  return t;
}

const Taxonomy& Taxonomy::Builtin() {
  static const Taxonomy builtin = Parse(kBuiltinTaxonomy, "built-in taxonomy.tsv");
  return builtin;
}

std::string Taxonomy::SpeciesOf(const std::string& label) const {
  const auto it = entries_.find(label);
  return it == entries_.end() ? label : it->second.species;
}

int Taxonomy::ImagenetClassOf(const std::string& label) const {
  const auto it = entries_.find(label);
  return it == entries_.end() ? -1 : it->second.imagenet_class;
}

}  // namespace fruitpipe::classify
