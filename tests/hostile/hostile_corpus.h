// The hostile-input corpus of issue 9, generated from scratch (nothing downloaded): broken,
// odd and malicious images and file-system entries, each with the outcome `fruitpipe run`
// must give it. docs/robustness.md tabulates the same list.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace fruitpipe::hostile {

struct Expectation {
  enum class Outcome {
    kProcessed,  // one Results row with this label, width and height (after orientation)
    kRejected,   // a rejected.jsonl line whose reason equals `reason`, or ends with it when
                 // `reason_is_suffix` (file-system errors start with the path)
    kIgnored,    // in neither: not an image key (hidden, '_' metadata, not traversed)
  };
  std::string key;  // relative to the source root, '/'-separated
  Outcome outcome = Outcome::kRejected;
  std::string what;  // one line for the table: what the input is
  std::string label;
  int width = 0, height = 0;
  std::string reason;
  bool reason_is_suffix = false;
};

// Writes the corpus under `root` (files, folders, links, a FIFO) and returns one expectation
// per entry. Every hostile entry lives under root/Hostile/ except where the entry is itself a
// folder named like an image. `as_root`: reads are not denied by permissions, so the
// chmod-000 file is expected to be processed rather than rejected.
std::vector<Expectation> WriteHostileCorpus(const std::filesystem::path& root, bool as_root);

// `count` distinct small JPEGs (side x side pixels, noise over a coloured disc) under
// root/Class<i % classes>/img<i>.jpg, for the memory benchmark's large listings.
void WriteTinyImages(const std::filesystem::path& root, int count, int classes, int side);

}  // namespace fruitpipe::hostile
