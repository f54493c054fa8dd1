#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/image/preprocess.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/model/model_card.h"

namespace fruitpipe::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The first image of each of the first `n` classes of the dev Test split, in sorted order.
std::vector<fs::path> DevImages(std::size_t n) {
  std::vector<fs::path> classes;
  for (const auto& e : fs::directory_iterator(testing::DevDataDir() / "Test")) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  std::vector<fs::path> images;
  for (const auto& c : classes) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(c)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (!files.empty()) images.push_back(files.front());
    if (images.size() == n) break;
  }
  return images;
}

// Decode + preprocess with fruitpipe's code into one batch tensor.
std::vector<float> Tensors(const std::vector<fs::path>& images, const image::PreprocessSpec& spec) {
  std::vector<float> t(images.size() * spec.TensorSize());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const image::DecodeOutcome d = image::DecodeImage(ReadLocalFile(images[i].string()));
    EXPECT_TRUE(d.ok) << images[i] << ": " << d.reason;
    image::Preprocess(d.image.rgb, spec, t.data() + i * spec.TensorSize());
  }
  return t;
}

double Cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = a.size() == b.size() ? 0.0f : INFINITY;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::unique_ptr<Featurizer> OpenCv(const ModelCard& card, int input_size = 0) {
  FeaturizerOptions o;
  o.backend = "opencv";
  o.threads = 2;
  o.input_size = input_size;
  return CreateFeaturizer(card, o);
}

class OpenCvFeaturizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::HaveShared()) card_ = LoadModelCard(testing::FeatureModelCard().string());
  }
  ModelCard card_;
};

TEST_F(OpenCvFeaturizerTest, DevImagesGive1280dFeatures) {
  FRUITPIPE_REQUIRE_SHARED();
  auto f = OpenCv(card_);
  EXPECT_EQ(f->backend_name(), "opencv");
  ASSERT_EQ(f->dim(), 1280);
  EXPECT_EQ(f->input_spec().width, 224);
  const auto images = DevImages(4);
  ASSERT_EQ(images.size(), 4u);
  const std::vector<float> in = Tensors(images, f->input_spec());
  std::vector<float> batch(4 * 1280, NAN);
  f->Run(in.data(), 4, batch.data());
  for (int i = 0; i < 4; ++i) {
    double sum = 0;
    for (int k = 0; k < 1280; ++k) {
      const float v = batch[i * 1280 + k];
      ASSERT_TRUE(std::isfinite(v));
      EXPECT_GE(v, 0.0f);  // average of ReLU6 outputs
      EXPECT_LE(v, 6.0f);
      sum += v;
    }
    EXPECT_GT(sum, 1.0);
  }
  // Different fruit, different features.
  EXPECT_LT(Cosine(&batch[0], &batch[1280], 1280), 0.99);

  // A batch of 4 equals 4 runs of 1.
  std::vector<float> singles(4 * 1280);
  for (int i = 0; i < 4; ++i) f->Run(in.data() + i * f->input_spec().TensorSize(), 1, singles.data() + i * 1280);
  EXPECT_LT(MaxAbsDiff(batch, singles), 1e-4f);
}

// The independent check: OpenCV's own imread + blobFromImage + ONNX forward, in a separate
// program that shares no code with fruitpipe, must give the same features.
TEST_F(OpenCvFeaturizerTest, MatchesIndependentReferenceProgram) {
  FRUITPIPE_REQUIRE_SHARED();
  const auto images = DevImages(5);
  std::string cmd = std::string("'") + FRUITPIPE_REFERENCE_FEATURES + "' '" + card_.file + "' features";
  for (const auto& p : images) cmd += " '" + p.string() + "'";
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string text;
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) text.append(buf, n);
  ASSERT_EQ(::pclose(pipe), 0) << cmd;

  auto f = OpenCv(card_);
  const std::vector<float> in = Tensors(images, f->input_spec());
  std::vector<float> ours(images.size() * 1280);
  f->Run(in.data(), static_cast<int>(images.size()), ours.data());

  std::istringstream lines(text);
  std::string line;
  double min_cosine = 1.0;
  float max_diff = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    ASSERT_TRUE(std::getline(lines, line)) << "reference printed " << i << " lines";
    std::istringstream values(line);
    std::vector<float> ref;
    for (float v; values >> v;) ref.push_back(v);
    ASSERT_EQ(ref.size(), 1280u);
    min_cosine = std::min(min_cosine, Cosine(ref.data(), &ours[i * 1280], 1280));
    for (int k = 0; k < 1280; ++k) max_diff = std::max(max_diff, std::abs(ref[k] - ours[i * 1280 + k]));
  }
  std::printf("reference vs fruitpipe over %zu dev images: min cosine %.7f, max |diff| %.3g\n", images.size(),
              min_cosine, max_diff);
  EXPECT_GT(min_cosine, 0.999);
}

// "auto" finds the last GlobalAveragePool: on the classifier it yields exactly the pooled
// features that the feature model outputs.
TEST_F(OpenCvFeaturizerTest, AutoOutputIsTheGlobalAveragePool) {
  FRUITPIPE_REQUIRE_SHARED();
  ModelCard classifier = LoadModelCard((testing::SharedDir() / "models" / "mobilenet_v2_imagenet.json").string());
  classifier.output_name = "auto";
  classifier.dim = 1280;
  auto pooled = OpenCv(classifier);
  auto features = OpenCv(card_);
  const std::vector<float> in = Tensors(DevImages(2), features->input_spec());
  std::vector<float> a(2 * 1280), b(2 * 1280);
  pooled->Run(in.data(), 2, a.data());
  features->Run(in.data(), 2, b.data());
  EXPECT_LT(MaxAbsDiff(a, b), 1e-5f);
}

TEST_F(OpenCvFeaturizerTest, SmallerInputSize) {
  FRUITPIPE_REQUIRE_SHARED();
  auto f = OpenCv(card_, 160);
  EXPECT_EQ(f->input_spec().width, 160);
  EXPECT_EQ(f->input_spec().height, 160);
  EXPECT_EQ(f->dim(), 1280);
  const std::vector<float> in = Tensors(DevImages(1), f->input_spec());
  std::vector<float> out(1280);
  f->Run(in.data(), 1, out.data());
  auto full = OpenCv(card_);
  const std::vector<float> in224 = Tensors(DevImages(1), full->input_spec());
  std::vector<float> out224(1280);
  full->Run(in224.data(), 1, out224.data());
  EXPECT_GT(Cosine(out.data(), out224.data(), 1280), 0.8);  // same image, nearby resolution
}

TEST_F(OpenCvFeaturizerTest, CardMistakesFailAtConstruction) {
  FRUITPIPE_REQUIRE_SHARED();
  ModelCard c = card_;
  c.output_name = "logits";
  try {
    OpenCv(c);
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("output.name 'logits' is not in the model (graph outputs: features)"));
  }
  c = card_;
  c.dim = 1000;
  try {
    OpenCv(c);
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("output 'features' has 1280 values per image but output.dim is 1000"));
  }
  c = card_;
  c.input_name = "image";
  EXPECT_THROW(OpenCv(c), InvalidArgumentError);
  FeaturizerOptions o;
  o.backend = "opencv";
  o.precision = "int8";
  EXPECT_THROW(CreateFeaturizer(card_, o), InvalidArgumentError);
}

TEST(FeaturizerFactoryTest, UnknownBackendAndBadFiles) {
  testing::TempDir dir;
  const std::string junk = "this is not an ONNX protobuf";
  std::ofstream(dir.path() / "junk.onnx") << junk;
  ModelCard c;
  c.card_path = (dir.path() / "junk.json").string();
  c.file = (dir.path() / "junk.onnx").string();
  c.sha256 = Sha256Hex(junk);
  c.input_name = "input";
  c.output_name = "features";
  c.dim = 4;
  FeaturizerOptions o;
  o.backend = "tensorrt";
  EXPECT_THROW(CreateFeaturizer(c, o), InvalidArgumentError);
  o.backend = "opencv";
  try {
    CreateFeaturizer(c, o);
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model file " + c.file + ": OpenCV DNN cannot load it"));
  }
  c.sha256 = Sha256Hex("other");
  EXPECT_THROW(CreateFeaturizer(c, o), CorruptionError);  // verified before anything is loaded
}

TEST_F(OpenCvFeaturizerTest, AutoBackendBuildsOne) {
  FRUITPIPE_REQUIRE_SHARED();
  FeaturizerOptions o;
  o.threads = 2;
  auto f = CreateFeaturizer(card_, o);
  EXPECT_THAT(f->backend_name(), ::testing::AnyOf("onednn", "opencv"));
  EXPECT_EQ(f->dim(), 1280);
}

}  // namespace
}  // namespace fruitpipe::model
