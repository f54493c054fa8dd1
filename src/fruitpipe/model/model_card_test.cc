#include "fruitpipe/model/model_card.h"

#include <cstdlib>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"

namespace fruitpipe::model {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

json GoodCard() {
  return json::parse(R"({
    "name": "tiny", "description": "a test card", "file": "tiny.onnx",
    "sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "format": "onnx", "opset": 10, "url": "https://example.org/tiny.onnx",
    "input": {"name": "input", "layout": "NCHW", "width": 224, "height": 160, "color": "RGB",
              "scale": 0.00784313725490196, "mean": [127.5, 127.5, 127.5], "formula": "x/127.5-1"},
    "output": {"name": "features", "dim": 1280}
  })");
}

std::string ErrorOf(const json& card, const std::string& path = "/models/tiny.json") {
  try {
    ParseModelCard(card.dump(), path);
  } catch (const InvalidArgumentError& e) {
    return e.what();
  }
  return "(no error)";
}

void WriteFile(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

TEST(ModelCardTest, ParsesEveryField) {
  const ModelCard c = ParseModelCard(GoodCard().dump(), "/models/cards/tiny.json");
  EXPECT_EQ(c.card_path, "/models/cards/tiny.json");
  EXPECT_EQ(c.name, "tiny");
  EXPECT_EQ(c.description, "a test card");
  EXPECT_EQ(c.file, "/models/cards/tiny.onnx");  // relative to the card's folder
  EXPECT_EQ(c.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(c.format, "onnx");
  EXPECT_EQ(c.url, "https://example.org/tiny.onnx");
  EXPECT_EQ(c.input_name, "input");
  EXPECT_EQ(c.output_name, "features");
  EXPECT_EQ(c.dim, 1280);
  EXPECT_EQ(c.input.width, 224);
  EXPECT_EQ(c.input.height, 160);
  EXPECT_TRUE(c.input.rgb);
  EXPECT_TRUE(c.input.nchw);
  EXPECT_FLOAT_EQ(c.input.scale, 1 / 127.5f);
  EXPECT_FLOAT_EQ(c.input.mean[2], 127.5f);
  EXPECT_FLOAT_EQ(c.input.std[0], 1.0f);  // default
}

TEST(ModelCardTest, OptionalFieldsAndAlternatives) {
  json j = GoodCard();
  j.erase("description");
  j.erase("url");
  j.erase("format");
  j["file"] = "/abs/model.onnx";
  j["input"]["layout"] = "NHWC";
  j["input"]["color"] = "BGR";
  j["input"]["mean"] = 0.5;
  j["input"]["std"] = {0.229, 0.224, 0.225};
  const ModelCard c = ParseModelCard(j.dump(), "rel/card.json");
  EXPECT_EQ(c.file, "/abs/model.onnx");
  EXPECT_EQ(c.format, "onnx");
  EXPECT_FALSE(c.input.nchw);
  EXPECT_FALSE(c.input.rgb);
  EXPECT_FLOAT_EQ(c.input.mean[1], 0.5f);
  EXPECT_FLOAT_EQ(c.input.std[2], 0.225f);
  j["file"] = "sub/../m.onnx";
  EXPECT_EQ(ParseModelCard(j.dump(), "rel/card.json").file, "rel/m.onnx");
}

TEST(ModelCardTest, MissingFieldsAreNamed) {
  for (const char* field : {"name", "file", "sha256", "input", "output"}) {
    json j = GoodCard();
    j.erase(field);
    EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field '" + std::string(field) + "' is missing");
  }
  json j = GoodCard();
  j["input"].erase("width");
  EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field 'input.width' is missing");
  j = GoodCard();
  j["output"].erase("dim");
  EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field 'output.dim' is missing");
}

TEST(ModelCardTest, BadTypesAndValuesAreNamed) {
  json j = GoodCard();
  j["input"]["width"] = "224";
  EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field 'input.width' must be an integer from 1 to 8192, got \"224\"");
  j = GoodCard();
  j["output"]["dim"] = 0;
  EXPECT_THAT(ErrorOf(j), HasSubstr("field 'output.dim' must be an integer"));
  j = GoodCard();
  j["input"]["color"] = "rgb";
  EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field 'input.color' must be RGB or BGR, got \"rgb\"");
  j = GoodCard();
  j["input"]["layout"] = "CHW";
  EXPECT_THAT(ErrorOf(j), HasSubstr("field 'input.layout' must be NCHW or NHWC"));
  j = GoodCard();
  j["sha256"] = "abc";
  EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field 'sha256' must be 64 hexadecimal digits");
  j = GoodCard();
  j["input"]["mean"] = {1, 2};
  EXPECT_THAT(ErrorOf(j), HasSubstr("field 'input.mean' must be a number or an array of 3 numbers"));
  j = GoodCard();
  j["input"]["std"] = {1, 0, 1};
  EXPECT_THAT(ErrorOf(j), HasSubstr("field 'input.std' must be positive"));
  j = GoodCard();
  j["input"]["scale"] = -1;
  EXPECT_THAT(ErrorOf(j), HasSubstr("field 'input.scale' must be positive"));
  j = GoodCard();
  j["input"]["sdt"] = 0.5;  // a typo must not silently drop the normalisation
  EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field 'input.sdt' is not a known field (see docs/model-card.md)");
  j = GoodCard();
  j["format"] = "tflite";
  EXPECT_THAT(ErrorOf(j), HasSubstr("field 'format' must be \"onnx\""));
  j = GoodCard();
  j["url"] = "ftp://x/y";
  EXPECT_THAT(ErrorOf(j), HasSubstr("field 'url' must be an http:// or https:// URL"));
  j = GoodCard();
  j["input"] = "input";
  EXPECT_EQ(ErrorOf(j), "model card /models/tiny.json: field 'input' must be an object, got \"input\"");
  EXPECT_THROW(ParseModelCard("[1,2]", "x.json"), InvalidArgumentError);
}

TEST(ModelCardTest, InvalidJsonNamesTheCard) {
  try {
    ParseModelCard("{\"name\": ", "/m/bad.json");
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model card /m/bad.json: invalid JSON: parse error at line 1"));
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(ModelCardTest, LoadVerifyAndMismatch) {
  testing::TempDir dir;
  const std::string model_bytes = "not really onnx, but bytes with a hash";
  WriteFile(dir.path() / "tiny.onnx", model_bytes);
  json j = GoodCard();
  j["sha256"] = Sha256Hex(model_bytes);
  WriteFile(dir.path() / "tiny.json", j.dump());
  const std::string card_path = (dir.path() / "tiny.json").string();

  const ModelCard card = LoadModelCard(card_path);
  EXPECT_EQ(card.file, (dir.path() / "tiny.onnx").string());
  EXPECT_NO_THROW(VerifyModelFile(card));
  EXPECT_EQ(Sha256OfFile(card.file), Sha256Hex(model_bytes));

  WriteFile(dir.path() / "tiny.onnx", model_bytes + "!");
  try {
    VerifyModelFile(card);
    FAIL();
  } catch (const CorruptionError& e) {
    EXPECT_EQ(std::string(e.what()), "model file " + card.file + ": sha256 mismatch (card says " +
                                         Sha256Hex(model_bytes).substr(0, 12) + "..., file is " +
                                         Sha256Hex(model_bytes + "!").substr(0, 12) + "...)");
  }

  std::filesystem::remove(dir.path() / "tiny.onnx");
  try {
    VerifyModelFile(card);
    FAIL();
  } catch (const NotFoundError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model file " + card.file + ": no such file (named by " + card_path));
  }
  EXPECT_THROW(LoadModelCard((dir.path() / "missing.json").string()), NotFoundError);
}

TEST(ModelCardTest, ResolvePathFromFlagOrEnvironment) {
  ::unsetenv("FRUITPIPE_MODEL");
  EXPECT_EQ(ResolveModelCardPath("a.json"), "a.json");
  try {
    ResolveModelCardPath("");
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_STREQ(e.what(), "no model: pass --model CARD.json or set FRUITPIPE_MODEL (see docs/export-model.md)");
  }
  ::setenv("FRUITPIPE_MODEL", "/env/card.json", 1);
  EXPECT_EQ(ResolveModelCardPath(""), "/env/card.json");
  EXPECT_EQ(ResolveModelCardPath("b.json"), "b.json");
  ::unsetenv("FRUITPIPE_MODEL");
}

TEST(ModelCardTest, SharedCardsParseAndVerify) {
  FRUITPIPE_REQUIRE_SHARED();
  const ModelCard features = LoadModelCard(testing::FeatureModelCard().string());
  EXPECT_EQ(features.dim, 1280);
  EXPECT_EQ(features.output_name, "features");
  EXPECT_EQ(features.input.width, 224);
  EXPECT_NO_THROW(VerifyModelFile(features));
  const ModelCard classifier =
      LoadModelCard((testing::SharedDir() / "models" / "mobilenet_v2_imagenet.json").string());
  EXPECT_EQ(classifier.dim, 1000);
  EXPECT_NO_THROW(VerifyModelFile(classifier));
}

}  // namespace
}  // namespace fruitpipe::model
