#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/model/onednn/engine.h"
#include "fruitpipe/model/onednn/onnx_graph.h"

namespace fruitpipe::model::onednn {
namespace {

namespace fs = std::filesystem;

// ---- Building small ONNX models with the protobuf API -------------------------------------

class ModelBuilder {
 public:
  explicit ModelBuilder(int opset = 10) : rng_(7) {
    model_.set_ir_version(7);
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    graph_ = model_.mutable_graph();
    graph_->set_name("test");
  }

  void Input(const std::string& name, std::int64_t channels) {
    auto* in = graph_->add_input();
    in->set_name(name);
    auto* t = in->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto_DataType_FLOAT);
    auto* shape = t->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    shape->add_dim()->set_dim_value(channels);
    shape->add_dim()->set_dim_param("H");
    shape->add_dim()->set_dim_param("W");
  }
  void Output(const std::string& name) { graph_->add_output()->set_name(name); }

  // A float initializer with random values in [-scale, scale] (or the given ones).
  std::string Weights(const std::string& name, std::vector<std::int64_t> dims, float scale, std::vector<float> values = {}) {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    if (values.empty()) {
      std::uniform_real_distribution<float> dist(-scale, scale);
      for (std::int64_t k = 0; k < n; ++k) values.push_back(dist(rng_));
    }
    auto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_FLOAT);
    for (auto d : dims) t->add_dims(d);
    // Alternate the two encodings ONNX allows, so both are read.
    if (graph_->initializer_size() % 2) {
      t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    } else {
      for (float v : values) t->add_float_data(v);
    }
    return name;
  }
  std::string Ints(const std::string& name, std::vector<std::int64_t> values) {
    auto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_INT64);
    t->add_dims(static_cast<std::int64_t>(values.size()));
    for (auto v : values) t->add_int64_data(v);
    return name;
  }

  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> inputs, const std::string& output) {
    auto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(output + "_node");
    for (const auto& in : inputs) n->add_input(in);
    n->add_output(output);
    return n;
  }
  static void Attr(onnx::NodeProto* n, const std::string& name, std::vector<std::int64_t> ints) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INTS);
    for (auto v : ints) a->add_ints(v);
  }
  static void Attr(onnx::NodeProto* n, const std::string& name, std::int64_t i) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(i);
  }
  static void AttrF(onnx::NodeProto* n, const std::string& name, float f) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    a->set_f(f);
  }

  // Conv with random weights and bias; returns the output name.
  std::string Conv(const std::string& x, const std::string& y, std::int64_t in_c, std::int64_t out_c, std::int64_t k,
                   std::int64_t stride, std::vector<std::int64_t> pads, std::int64_t group = 1) {
    const float scale = 1.5f / std::sqrt(static_cast<float>(in_c / group * k * k));
    auto* n = Node("Conv", {x, Weights(y + "_W", {out_c, in_c / group, k, k}, scale), Weights(y + "_B", {out_c}, 0.2f)}, y);
    Attr(n, "kernel_shape", {k, k});
    Attr(n, "strides", {stride, stride});
    Attr(n, "pads", pads);
    Attr(n, "group", group);
    return y;
  }
  std::string Clip(const std::string& x, const std::string& y, float lo, float hi) {
    auto* n = Node("Clip", {x}, y);
    AttrF(n, "min", lo);
    AttrF(n, "max", hi);
    return y;
  }

  const onnx::ModelProto& model() const { return model_; }
  std::string Save(const fs::path& file) const {
    std::ofstream out(file, std::ios::binary);
    model_.SerializeToOstream(&out);
    return file.string();
  }

 private:
  onnx::ModelProto model_;
  onnx::GraphProto* graph_;
  std::mt19937 rng_;
};

// ---- A naive interpreter of the same ONNX subset, independent of the lowering and oneDNN ----

struct Tensor {
  std::vector<std::int64_t> dims;
  std::vector<float> data;
};

class Reference {
 public:
  explicit Reference(const onnx::ModelProto& model) : model_(model) {
    for (const auto& t : model.graph().initializer()) {
      Tensor x;
      x.dims.assign(t.dims().begin(), t.dims().end());
      if (t.data_type() == onnx::TensorProto_DataType_INT64) {
        for (auto v : t.int64_data()) x.data.push_back(static_cast<float>(v));
      } else if (!t.raw_data().empty()) {
        x.data.resize(t.raw_data().size() / sizeof(float));
        std::memcpy(x.data.data(), t.raw_data().data(), t.raw_data().size());
      } else {
        x.data.assign(t.float_data().begin(), t.float_data().end());
      }
      tensors_[t.name()] = x;
    }
  }

  Tensor Run(const std::string& input, Tensor x, const std::string& output) {
    tensors_[input] = std::move(x);
    for (const auto& n : model_.graph().node()) tensors_[n.output(0)] = Eval(n);
    return tensors_.at(output);
  }
  // Every tensor of the last Run, by name (nullptr if the graph has no such tensor).
  const Tensor* Find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }

 private:
  static std::vector<std::int64_t> Ints(const onnx::NodeProto& n, const std::string& name, std::vector<std::int64_t> def) {
    for (const auto& a : n.attribute()) {
      if (a.name() == name) return {a.ints().begin(), a.ints().end()};
    }
    return def;
  }
  static float Float(const onnx::NodeProto& n, const std::string& name, float def) {
    for (const auto& a : n.attribute()) {
      if (a.name() == name) return a.has_f() ? a.f() : static_cast<float>(a.i());
    }
    return def;
  }
  const Tensor& In(const onnx::NodeProto& n, int k) { return tensors_.at(n.input(k)); }

  Tensor Eval(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    if (op == "Conv") return Conv(n);
    if (op == "Identity") return In(n, 0);
    Tensor y = In(n, 0);
    const std::int64_t c = y.dims.size() > 1 ? y.dims[1] : 1;
    const std::int64_t inner = y.dims.size() == 4 ? y.dims[2] * y.dims[3] : 1;
    if (op == "Relu" || op == "Clip" || op == "LeakyRelu") {
      const float lo = op == "Clip" ? Float(n, "min", -1e30f) : 0.0f;
      const float hi = op == "Clip" ? Float(n, "max", 1e30f) : 1e30f;
      const float alpha = Float(n, "alpha", 0.01f);
      for (float& v : y.data) v = op == "LeakyRelu" ? (v >= 0 ? v : alpha * v) : std::min(std::max(v, lo), hi);
    } else if (op == "BatchNormalization") {
      const auto &s = In(n, 1).data, &b = In(n, 2).data, &m = In(n, 3).data, &var = In(n, 4).data;
      const float eps = Float(n, "epsilon", 1e-5f);
      for (std::size_t i = 0; i < y.data.size(); ++i) {
        const std::size_t ch = (i / inner) % c;
        y.data[i] = (y.data[i] - m[ch]) / std::sqrt(var[ch] + eps) * s[ch] + b[ch];
      }
    } else if (op == "Add") {
      const Tensor& b = In(n, 1);
      for (std::size_t i = 0; i < y.data.size(); ++i) {
        y.data[i] += b.data.size() == y.data.size() ? b.data[i] : b.data[(i / inner) % c];  // same shape or per channel
      }
    } else if (op == "GlobalAveragePool") {
      Tensor p{{y.dims[0], c, 1, 1}, std::vector<float>(static_cast<std::size_t>(y.dims[0] * c), 0.0f)};
      for (std::size_t i = 0; i < y.data.size(); ++i) p.data[i / inner] += y.data[i] / static_cast<float>(inner);
      return p;
    } else if (op == "Flatten" || op == "Reshape") {
      y.dims = {y.dims[0], static_cast<std::int64_t>(y.data.size()) / y.dims[0]};
    } else if (op == "Gemm" || op == "MatMul") {
      const Tensor& w = In(n, 1);
      const bool trans = op == "Gemm" && Float(n, "transB", 0.0f) != 0.0f;
      const float alpha = op == "Gemm" ? Float(n, "alpha", 1.0f) : 1.0f;
      const float beta = op == "Gemm" ? Float(n, "beta", 1.0f) : 1.0f;
      const std::int64_t batch = y.dims[0], k = y.dims[1], outs = trans ? w.dims[0] : w.dims[1];
      Tensor z{{batch, outs}, std::vector<float>(static_cast<std::size_t>(batch * outs), 0.0f)};
      for (std::int64_t b = 0; b < batch; ++b) {
        for (std::int64_t o = 0; o < outs; ++o) {
          double acc = 0.0;
          for (std::int64_t i = 0; i < k; ++i) acc += y.data[b * k + i] * (trans ? w.data[o * k + i] : w.data[i * outs + o]);
          z.data[b * outs + o] = static_cast<float>(alpha * acc + (n.input_size() > 2 ? beta * In(n, 2).data[o] : 0.0));
        }
      }
      return z;
    } else {
      ADD_FAILURE() << "reference has no " << op;
    }
    return y;
  }

  Tensor Conv(const onnx::NodeProto& n) {
    const Tensor& x = In(n, 0);
    const Tensor& w = In(n, 1);
    const auto stride = Ints(n, "strides", {1, 1});
    const auto pads = Ints(n, "pads", {0, 0, 0, 0});
    const std::int64_t group = static_cast<std::int64_t>(Float(n, "group", 1.0f));
    const std::int64_t batch = x.dims[0], ic = x.dims[1], ih = x.dims[2], iw = x.dims[3];
    const std::int64_t oc = w.dims[0], icg = w.dims[1], kh = w.dims[2], kw = w.dims[3];
    const std::int64_t oh = (ih + pads[0] + pads[2] - kh) / stride[0] + 1;
    const std::int64_t ow = (iw + pads[1] + pads[3] - kw) / stride[1] + 1;
    Tensor y{{batch, oc, oh, ow}, std::vector<float>(static_cast<std::size_t>(batch * oc * oh * ow))};
    for (std::int64_t b = 0; b < batch; ++b) {
      for (std::int64_t o = 0; o < oc; ++o) {
        const std::int64_t g = o / (oc / group);
        for (std::int64_t yy = 0; yy < oh; ++yy) {
          for (std::int64_t xx = 0; xx < ow; ++xx) {
            double acc = n.input_size() > 2 ? In(n, 2).data[o] : 0.0;
            for (std::int64_t i = 0; i < icg; ++i) {
              for (std::int64_t ky = 0; ky < kh; ++ky) {
                for (std::int64_t kx = 0; kx < kw; ++kx) {
                  const std::int64_t sy = yy * stride[0] - pads[0] + ky, sx = xx * stride[1] - pads[1] + kx;
                  if (sy < 0 || sy >= ih || sx < 0 || sx >= iw) continue;
                  acc += x.data[((b * ic + g * icg + i) * ih + sy) * iw + sx] * w.data[((o * icg + i) * kh + ky) * kw + kx];
                }
              }
            }
            y.data[((b * oc + o) * oh + yy) * ow + xx] = static_cast<float>(acc);
          }
        }
      }
    }
    return y;
  }

  const onnx::ModelProto& model_;
  std::map<std::string, Tensor> tensors_;
};

std::vector<float> RandomImages(int batch, std::int64_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(batch * size));
  for (float& v : x) v = dist(rng);
  return x;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

double Cosine(const float* a, const float* b, std::size_t n) {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb + 1e-30);
}

// A MobileNetV2-like net: stem conv with TF-SAME asymmetric pads and a BatchNormalization to
// fold, Clip (opset-10 attributes), inverted residual blocks (expand 1x1 + Relu, depthwise
// 3x3 stride 1 and stride 2 with asymmetric pads, linear projection), a residual Add,
// GlobalAveragePool, Flatten, Identity and Gemm (transB).
ModelBuilder MobileNetLike() {
  ModelBuilder m;
  m.Input("input", 3);
  m.Conv("input", "stem", 3, 8, 3, 2, {0, 0, 1, 1});
  m.Node("BatchNormalization",
         {"stem", m.Weights("bn_s", {8}, 1.0f), m.Weights("bn_b", {8}, 0.5f), m.Weights("bn_m", {8}, 0.3f),
          m.Weights("bn_v", {8}, 0.0f, {0.5f, 1.0f, 1.5f, 2.0f, 0.7f, 0.9f, 1.1f, 1.3f})},
         "bn");
  m.Clip("bn", "a", 0.0f, 6.0f);
  m.Conv("a", "e1", 8, 16, 1, 1, {0, 0, 0, 0});
  m.Node("Relu", {"e1"}, "e1r");
  m.Conv("e1r", "d1", 16, 16, 3, 1, {1, 1, 1, 1}, 16);
  m.Clip("d1", "d1r", 0.0f, 6.0f);
  m.Conv("d1r", "p1", 16, 8, 1, 1, {0, 0, 0, 0});
  m.Node("Add", {"a", "p1"}, "s1");
  m.Conv("s1", "e2", 8, 16, 1, 1, {0, 0, 0, 0});
  m.Clip("e2", "e2r", 0.0f, 6.0f);
  m.Conv("e2r", "d2", 16, 16, 3, 2, {0, 0, 1, 1}, 16);
  m.Clip("d2", "d2r", 0.0f, 6.0f);
  m.Conv("d2r", "p2", 16, 12, 1, 1, {0, 0, 0, 0});
  m.Node("GlobalAveragePool", {"p2"}, "gap");
  m.Node("Flatten", {"gap"}, "flat");
  m.Node("Identity", {"flat"}, "features");
  auto* gemm = m.Node("Gemm", {"features", m.Weights("fc_W", {10, 12}, 0.5f), m.Weights("fc_B", {10}, 0.1f)}, "logits");
  ModelBuilder::Attr(gemm, "transB", 1);
  m.Output("logits");
  return m;
}

std::vector<float> ReferenceOutput(const ModelBuilder& m, const std::vector<float>& input, int batch, int size,
                                   const std::string& output) {
  Reference ref(m.model());
  return ref.Run("input", Tensor{{batch, 3, size, size}, input}, output).data;
}

struct SyntheticCase {
  bool fuse;
  int batch;
  int chunk;
  int threads;
  bool split;  // EngineOptions::split_images
};

class SyntheticModelTest : public ::testing::TestWithParam<SyntheticCase> {};

TEST_P(SyntheticModelTest, MatchesNaiveReference) {
  const SyntheticCase c = GetParam();
  fruitpipe::testing::TempDir tmp;
  const ModelBuilder m = MobileNetLike();
  const std::string path = m.Save(tmp.path() / "net.onnx");
  const int size = 12;
  const auto input = RandomImages(c.batch, 3 * size * size, 1);
  for (const std::string output : {"logits", "features"}) {
    Graph graph = LoadOnnxGraph(path, "input", output, size, size);
    // Folded/fused: stem(+bn+clip), e1(+relu), d1(+clip), p1(+add), e2, d2, p2, gap, flatten, [gemm].
    EXPECT_EQ(graph.ops.size(), output == "logits" ? 10u : 9u);
    EngineOptions options;
    options.fuse_depthwise = c.fuse;
    options.chunk = c.chunk;
    options.threads = c.threads;
    options.split_images = c.split;
    Engine engine(std::move(graph), options);
    std::vector<float> got(static_cast<std::size_t>(c.batch * engine.output_floats()));
    engine.Run(input.data(), c.batch, got.data());
    const auto want = ReferenceOutput(m, input, c.batch, size, output);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LT(MaxAbsDiff(got, want), 1e-4) << output;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, SyntheticModelTest,
                         // Split across 2 workers (dynamic chunks, remainder), an OpenMP team
                         // (asked, or a single chunk), one thread.
                         ::testing::Values(SyntheticCase{true, 1, 16, 1, true}, SyntheticCase{false, 1, 16, 1, true},
                                           SyntheticCase{true, 5, 2, 2, true}, SyntheticCase{false, 7, 4, 2, true},
                                           SyntheticCase{true, 6, 4, 2, false}, SyntheticCase{true, 1, 4, 2, true}),
                         [](const ::testing::TestParamInfo<SyntheticCase>& info) {
                           const SyntheticCase& c = info.param;
                           return std::string(c.fuse ? "Fused" : "Unfused") + "Batch" + std::to_string(c.batch) + "Chunk" +
                                  std::to_string(c.chunk) + "Threads" + std::to_string(c.threads) + (c.split ? "" : "Team");
                         });

TEST(SyntheticModel, AutoOutputIsTheLastGlobalPool) {
  fruitpipe::testing::TempDir tmp;
  const std::string path = MobileNetLike().Save(tmp.path() / "net.onnx");
  const Graph graph = LoadOnnxGraph(path, "input", "auto", 16, 16);
  EXPECT_EQ(graph.values[graph.output].name, "gap");
  EXPECT_EQ(graph.values[graph.output].shape.c, 12);
}

// The ops that cannot become post-ops: an Add whose addend is read again later (copied into
// the convolution's output), an Add of two pooled vectors (binary primitive), Relu and
// LeakyRelu after it (eltwise primitives), MatMul with a constant bias Add folded, Reshape.
TEST(SyntheticModel, StandaloneOpsMatchNaiveReference) {
  ModelBuilder m(13);
  m.Input("input", 3);
  m.Conv("input", "ca", 3, 16, 3, 1, {1, 1, 1, 1});
  m.Conv("input", "cb", 3, 16, 1, 1, {0, 0, 0, 0});
  m.Node("Add", {"ca", "cb"}, "s");
  m.Node("GlobalAveragePool", {"s"}, "g1");
  m.Node("GlobalAveragePool", {"ca"}, "g2");
  m.Node("Add", {"g1", "g2"}, "t");
  m.Node("Relu", {"t"}, "u");
  ModelBuilder::AttrF(m.Node("LeakyRelu", {"u"}, "lu"), "alpha", 0.1f);
  m.Node("Reshape", {"lu", m.Ints("shape", {0, -1})}, "flat");
  m.Node("MatMul", {"flat", m.Weights("mm_W", {16, 5}, 0.5f)}, "mm");
  m.Node("Add", {"mm", m.Weights("mm_B", {5}, 0.5f)}, "out");
  m.Output("out");
  fruitpipe::testing::TempDir tmp;
  const std::string path = m.Save(tmp.path() / "net.onnx");
  const int size = 10, batch = 3;
  Graph graph = LoadOnnxGraph(path, "input", "out", size, size);
  std::vector<OpKind> kinds;
  for (const Op& op : graph.ops) kinds.push_back(op.kind);
  EXPECT_EQ(kinds, (std::vector<OpKind>{OpKind::kConv, OpKind::kConv, OpKind::kGlobalAvgPool, OpKind::kGlobalAvgPool,
                                        OpKind::kAdd, OpKind::kEltwise, OpKind::kEltwise, OpKind::kFlatten,
                                        OpKind::kInnerProduct}));
  Engine engine(std::move(graph), EngineOptions{});
  const auto input = RandomImages(batch, 3 * size * size, 2);
  std::vector<float> got(static_cast<std::size_t>(batch * engine.output_floats()));
  engine.Run(input.data(), batch, got.data());
  EXPECT_LT(MaxAbsDiff(got, ReferenceOutput(m, input, batch, size, "out")), 1e-4);
}

// A Flatten of a C x H x W map (not pooled first) reorders to plain NCHW and views it.
TEST(SyntheticModel, FlattenOfASpatialMapMatchesReference) {
  ModelBuilder m;
  m.Input("input", 3);
  m.Conv("input", "c", 3, 24, 3, 2, {1, 1, 1, 1});
  m.Node("Flatten", {"c"}, "flat");
  auto* gemm = m.Node("Gemm", {"flat", m.Weights("W", {24 * 4 * 4, 6}, 0.1f), m.Weights("B", {6}, 0.1f)}, "out");
  ModelBuilder::AttrF(gemm, "alpha", 0.5f);
  m.Output("out");
  fruitpipe::testing::TempDir tmp;
  const std::string path = m.Save(tmp.path() / "net.onnx");
  Engine engine(LoadOnnxGraph(path, "input", "out", 8, 8), EngineOptions{});
  const auto input = RandomImages(2, 3 * 8 * 8, 3);
  std::vector<float> got(2 * 6);
  engine.Run(input.data(), 2, got.data());
  EXPECT_LT(MaxAbsDiff(got, ReferenceOutput(m, input, 2, 8, "out")), 1e-4);
}

TEST(SyntheticModel, UnsupportedOperatorIsOneLineNamingIt) {
  ModelBuilder m;
  m.Input("input", 3);
  m.Conv("input", "c", 3, 8, 3, 1, {1, 1, 1, 1});
  m.Node("Resize", {"c"}, "n123");
  m.Node("GlobalAveragePool", {"n123"}, "gap");
  m.Output("gap");
  fruitpipe::testing::TempDir tmp;
  const std::string path = m.Save(tmp.path() / "resize.onnx");
  try {
    LoadOnnxGraph(path, "input", "auto", 16, 16);
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()), "model " + path + ": operator 'Resize' (node n123_node) is not supported by the onednn "
                                      "backend; use --backend opencv");
  }
}

TEST(SyntheticModel, NotAnOnnxFileIsAnError) {
  fruitpipe::testing::TempDir tmp;
  const fs::path path = tmp.path() / "junk.onnx";
  std::ofstream(path) << "definitely not protobuf \xff\xff\xff";
  EXPECT_THROW(LoadOnnxGraph(path.string(), "input", "auto", 16, 16), InvalidArgumentError);
  EXPECT_THROW(LoadOnnxGraph((tmp.path() / "missing.onnx").string(), "input", "auto", 16, 16), NotFoundError);
}

// Calibration: each value's range is the largest |x| the reference computes for it, however
// the images are split over chunks and threads (ranges are merged across workers).
TEST(SyntheticModel, MeasuredRangesAreTheReferenceMaxima) {
  fruitpipe::testing::TempDir tmp;
  const ModelBuilder m = MobileNetLike();
  const std::string path = m.Save(tmp.path() / "net.onnx");
  const int size = 12, batch = 7;
  const auto images = RandomImages(batch, 3 * size * size, 11);
  Reference ref(m.model());
  ref.Run("input", Tensor{{batch, 3, size, size}, images}, "features");
  for (int threads : {1, 2}) {
    EngineOptions options;
    options.fuse_depthwise = false;
    options.threads = threads;
    options.chunk = 2;
    Engine engine(LoadOnnxGraph(path, "input", "features", size, size), options);
    Ranges ranges;
    engine.MeasureRanges(images.data(), batch, &ranges);
    const auto& values = engine.graph().values;
    ASSERT_EQ(ranges.size(), values.size());
    int compared = 0;
    for (std::size_t v = 0; v < values.size(); ++v) {
      const Tensor* t = ref.Find(values[v].name);
      // A flatten is a view of its input, not a step: int8 never stores it, nothing measures it.
      const int producer = values[v].producer;
      if (t == nullptr || (producer >= 0 && engine.graph().ops[producer].kind == OpKind::kFlatten)) continue;
      float want = 0.0f;
      for (float x : t->data) want = std::max(want, std::fabs(x));
      EXPECT_NEAR(ranges[v], want, 1e-4f * (1.0f + want)) << values[v].name << " threads " << threads;
      ++compared;
    }
    EXPECT_GE(compared, 5) << "threads " << threads;
  }
}

// int8: activation ranges from fp32 runs, then u8/s8 convolutions; the output stays close.
TEST(SyntheticModel, Int8StaysCloseToFp32) {
  fruitpipe::testing::TempDir tmp;
  const ModelBuilder m = MobileNetLike();
  const std::string path = m.Save(tmp.path() / "net.onnx");
  const int size = 12, batch = 16;
  const auto calibration = RandomImages(32, 3 * size * size, 4);
  EngineOptions fp32_options;
  fp32_options.fuse_depthwise = false;
  Ranges ranges;
  Engine(LoadOnnxGraph(path, "input", "features", size, size), fp32_options).MeasureRanges(calibration.data(), 32, &ranges);
  const auto input = RandomImages(batch, 3 * size * size, 5);
  const auto want = ReferenceOutput(m, input, batch, size, "features");
  for (bool fuse : {false, true}) {
    EngineOptions options;
    options.int8 = true;
    options.fuse_depthwise = fuse;
    Engine engine(LoadOnnxGraph(path, "input", "features", size, size), options, ranges);
    bool has_int8 = false;
    for (const auto& line : engine.Describe(batch)) has_int8 |= line.find(" u8:") != std::string::npos;
    EXPECT_TRUE(has_int8);
    std::vector<float> got(static_cast<std::size_t>(batch * engine.output_floats()));
    engine.Run(input.data(), batch, got.data());
    for (int b = 0; b < batch; ++b) {
      EXPECT_GT(Cosine(got.data() + b * 12, want.data() + b * 12, 12), 0.99) << "image " << b << " fuse " << fuse;
    }
  }
}

// ---- The real MobileNetV2 on dev images (needs ../shared) -----------------------------------

// One thread: the figures do not depend on it, and a loaded CI machine does not stall the
// OpenMP team (see docs/engine.md on oversubscription).
FeaturizerOptions OneThread() {
  FeaturizerOptions options;
  options.threads = 1;
  return options;
}

ModelCard FeatureCard() {
  ModelCard card;
  card.card_path = fruitpipe::testing::FeatureModelCard().string();
  card.name = "mobilenet_v2_1.0_224";
  card.file = (fruitpipe::testing::SharedDir() / "models" / "mobilenet_v2_features.onnx").string();
  card.input_name = "input";
  card.output_name = "features";
  card.dim = 1280;
  return card;  // PreprocessSpec defaults are this model's: 224, RGB, NCHW, x / 127.5 - 1
}

// The first image of each of the first `n` Test classes, preprocessed for `spec`.
std::vector<float> DevImages(int n, const image::PreprocessSpec& spec, const std::string& split = "Test") {
  std::vector<fs::path> classes;
  for (const auto& e : fs::directory_iterator(fruitpipe::testing::DevDataDir() / split)) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  std::vector<float> out;
  for (int k = 0; k < n; ++k) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(classes.at(static_cast<std::size_t>(k) * classes.size() / n))) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    cv::Mat rgb;
    cv::cvtColor(cv::imread(files.at(0).string(), cv::IMREAD_COLOR), rgb, cv::COLOR_BGR2RGB);
    out.resize(out.size() + spec.TensorSize());
    image::Preprocess(rgb, spec, out.data() + out.size() - spec.TensorSize());
  }
  return out;
}

std::vector<float> OpenCvFeatures(const std::string& model, const std::vector<float>& images, int n, int size) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(model);
  const int dims[] = {n, 3, size, size};
  net.setInput(cv::Mat(4, dims, CV_32F, const_cast<float*>(images.data())), "input");
  cv::Mat out = net.forward("features");
  return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.total());
}

TEST(RealModel, MatchesOpenCvDnnOnDevImages) {
  FRUITPIPE_REQUIRE_SHARED();
  const ModelCard card = FeatureCard();
  for (int size : {224, 160}) {
    FeaturizerOptions options = OneThread();
    options.input_size = size;
    auto featurizer = CreateOneDnnFeaturizer(card, options);
    ASSERT_EQ(featurizer->dim(), 1280);
    ASSERT_EQ(featurizer->input_spec().width, size);
    const int n = 6;
    const auto images = DevImages(n, featurizer->input_spec());
    std::vector<float> got(n * 1280);
    featurizer->Run(images.data(), n, got.data());
    const auto want = OpenCvFeatures(card.file, images, n, size);
    ASSERT_EQ(want.size(), got.size());
    EXPECT_LT(MaxAbsDiff(got, want), 1e-3) << "input " << size;
    for (int k = 0; k < n; ++k) EXPECT_GT(Cosine(got.data() + k * 1280, want.data() + k * 1280, 1280), 0.9999) << "image " << k;
  }
}

// Two threads: the batch of 8 runs as two 4-image chunks on two workers, a single image on
// an OpenMP team; images from both chunks are checked.
TEST(RealModel, BatchOfEightEqualsOneByOne) {
  FRUITPIPE_REQUIRE_SHARED();
  FeaturizerOptions options;
  options.threads = 2;
  auto featurizer = CreateOneDnnFeaturizer(FeatureCard(), options);
  const int n = 8;
  const std::size_t tensor = featurizer->input_spec().TensorSize();
  const auto images = DevImages(n, featurizer->input_spec());
  std::vector<float> batched(n * 1280), single(1280);
  featurizer->Run(images.data(), n, batched.data());
  for (int k : {0, 3, 6}) {
    featurizer->Run(images.data() + k * tensor, 1, single.data());
    const std::vector<float> row(batched.begin() + k * 1280, batched.begin() + (k + 1) * 1280);
    EXPECT_LT(MaxAbsDiff(row, single), 1e-5) << "image " << k;
  }
}

TEST(RealModel, Int8FeaturesStayCloseToFp32) {
  FRUITPIPE_REQUIRE_SHARED();
  FeaturizerOptions options = OneThread();
  auto fp32 = CreateOneDnnFeaturizer(FeatureCard(), options);
  options.precision = "int8";
  options.calibration_dir = (fruitpipe::testing::DevDataDir() / "Training").string();
  auto int8 = CreateOneDnnFeaturizer(FeatureCard(), options);
  EXPECT_EQ(int8->backend_name(), "onednn-int8");
  const int n = 12;
  const auto images = DevImages(n, fp32->input_spec());
  std::vector<float> a(n * 1280), b(n * 1280);
  fp32->Run(images.data(), n, a.data());
  int8->Run(images.data(), n, b.data());
  double sum = 0.0;
  for (int k = 0; k < n; ++k) {
    const double c = Cosine(a.data() + k * 1280, b.data() + k * 1280, 1280);
    EXPECT_GT(c, 0.97) << "image " << k;
    sum += c;
  }
  RecordProperty("mean_cosine_int8_fp32", std::to_string(sum / n));
  std::cout << "int8 vs fp32 feature cosine, mean of " << n << " dev images: " << sum / n << "\n";
  EXPECT_GT(sum / n, 0.98);  // 0.995 with AVX512-VNNI; 0.986 with AVX2 (7-bit weights)
}

TEST(RealModel, OptionErrorsAreOneLine) {
  FRUITPIPE_REQUIRE_SHARED();
  FeaturizerOptions options;
  options.precision = "fp16";
  EXPECT_THROW(CreateOneDnnFeaturizer(FeatureCard(), options), InvalidArgumentError);
  options.precision = "int8";
  EXPECT_THROW(CreateOneDnnFeaturizer(FeatureCard(), options), InvalidArgumentError);  // no calibration folder
  ModelCard card = FeatureCard();
  card.dim = 1000;
  try {
    CreateOneDnnFeaturizer(card, FeaturizerOptions{});
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()), "model " + card.file + ": output 'features' has 1280 values per image, the card says dim 1000");
  }
}

}  // namespace
}  // namespace fruitpipe::model::onednn
