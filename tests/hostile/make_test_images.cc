// Writes generated test images for benchmarks and manual checks (never downloaded):
//   make_test_images hostile DIR            the hostile corpus of hostile_corpus.cc
//   make_test_images tiny DIR COUNT [SIDE]  COUNT distinct SIDExSIDE JPEGs in 100 class folders
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "hostile_corpus.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "hostile" && argc == 3) {
    const auto list = fruitpipe::hostile::WriteHostileCorpus(argv[2], ::geteuid() == 0);
    std::printf("%zu hostile entries in %s\n", list.size(), argv[2]);
    return 0;
  }
  if (mode == "tiny" && (argc == 4 || argc == 5)) {
    const int count = std::atoi(argv[3]);
    const int side = argc == 5 ? std::atoi(argv[4]) : 100;
    if (count <= 0 || side <= 0) {
      std::fprintf(stderr, "make_test_images: COUNT and SIDE must be positive\n");
      return 2;
    }
    fruitpipe::hostile::WriteTinyImages(argv[2], count, 100, side);
    std::printf("%d images of %dx%d in %s\n", count, side, side, argv[2]);
    return 0;
  }
  std::fprintf(stderr, "usage: make_test_images hostile DIR | tiny DIR COUNT [SIDE]\n");
  return 2;
}
