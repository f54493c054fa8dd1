// Featurization figures (issue 8), printed, not asserted. Sections, each optional:
//   throughput    inference-only images/s per backend/precision/input size/threads, with GFLOP/s
//                 and percent of the measured FMA peak; tab-separated lines
//                 "fruitpipe <backend> <precision> <size> <threads> <batch> <img/s> <GFLOP/s> <%peak>"
//   arrangements  decode + preprocess + inference on dev images under the ways a pipeline can
//                 share the cores (docs/engine.md), and the oversubscription collapse
//   accuracy      int8 and reduced sizes against fp32 224 on the dev split: feature cosine, and
//                 top-1 of a nearest-centroid classifier trained on Training, tested on Test
// Usage: engine_bench [--card FILE] [--sections throughput,arrangements,accuracy]
//          [--backends opencv,onednn] [--precisions fp32,int8] [--sizes 224,160,128,96]
//          [--threads 1,2] [--batch 32] [--seconds 2] [--rounds 1] [--data DIR]
// bench/engine_bench.sh runs it beside bench/ort_bench.mjs and prints the ratios to ONNX Runtime.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "fruitpipe/common/error.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/image/preprocess.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/model/model_card.h"
#include "fruitpipe/model/onednn/engine.h"
#include "fruitpipe/model/onednn/onnx_graph.h"

namespace fs = std::filesystem;
using fruitpipe::model::Featurizer;
using fruitpipe::model::FeaturizerOptions;
using fruitpipe::model::ModelCard;
using fruitpipe::model::onednn::Engine;
using fruitpipe::model::onednn::EngineOptions;
using fruitpipe::model::onednn::LoadOnnxGraph;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string card;
  std::vector<std::string> sections{"throughput"};
  std::vector<std::string> backends{"opencv", "onednn"};
  std::vector<std::string> precisions{"fp32", "int8"};
  std::vector<int> sizes{224, 160, 128, 96};
  std::vector<int> threads{1, 2};
  int batch = 32;
  double seconds = 2.0;
  int rounds = 1;
  std::string data;  // the dev data root: Training/ and Test/ class folders
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<int> SplitInts(const std::string& s) {
  std::vector<int> out;
  for (const auto& item : Split(s)) out.push_back(std::stoi(item));
  return out;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  const fs::path shared = fs::path(FRUITPIPE_SOURCE_DIR) / ".." / "shared";
  a.card = (shared / "models" / "mobilenet_v2_features.json").string();
  a.data = (shared / "data" / "fruits360-dev").string();
  if (const char* env = std::getenv("FRUITPIPE_MODEL")) a.card = env;
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    if (i + 1 >= argc) throw fruitpipe::InvalidArgumentError("option " + key + " needs a value");
    const std::string value = argv[i + 1];
    if (key == "--card") a.card = value;
    else if (key == "--sections") a.sections = Split(value);
    else if (key == "--backends") a.backends = Split(value);
    else if (key == "--precisions") a.precisions = Split(value);
    else if (key == "--sizes") a.sizes = SplitInts(value);
    else if (key == "--threads") a.threads = SplitInts(value);
    else if (key == "--batch") a.batch = std::stoi(value);
    else if (key == "--seconds") a.seconds = std::stod(value);
    else if (key == "--rounds") a.rounds = std::stoi(value);
    else if (key == "--data") a.data = value;
    else throw fruitpipe::InvalidArgumentError("unknown option " + key);
  }
  return a;
}

bool Has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// CPU seconds of this process (all threads): images per CPU-second is what one core delivers
// when the machine is shared, for single-threaded runs.
double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + t.tv_nsec * 1e-9;
}

// ---- FMA peak ------------------------------------------------------------------------------

// 12 independent 8-wide FMA chains: enough to cover the FMA latency on both pipes of a core.
__attribute__((target("avx2,fma"))) float FmaChains(long iterations) {
  __m256 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k));
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 12  // unrolled, the chains live in registers instead of the stack
    for (int k = 0; k < 12; ++k) acc[k] = _mm256_fmadd_ps(acc[k], mul, add);
  }
  __m256 sum = acc[0];
  for (int k = 1; k < 12; ++k) sum = _mm256_add_ps(sum, acc[k]);
  float out[8];
  _mm256_storeu_ps(out, sum);
  return out[0];
}

// GFLOP/s of one core running AVX2 FMAs; the best of a few tries (other processes may run).
double MeasureCorePeak() {
  const long iterations = 20'000'000;
  double best = 0.0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    timespec t0, t1;  // this thread's CPU time: the core's rate even when others share it
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    volatile float sink = FmaChains(iterations);
    (void)sink;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    const double seconds = static_cast<double>(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    best = std::max(best, iterations * 12.0 * 8 * 2 / seconds / 1e9);
  }
  return best;
}

// ---- Throughput --------------------------------------------------------------------------

std::unique_ptr<Featurizer> Make(const ModelCard& card, const std::string& backend, const std::string& precision, int size,
                                 int threads, const Args& args) {
  FeaturizerOptions o;
  o.backend = backend;
  o.precision = precision;
  o.input_size = size;
  o.threads = threads;
  if (precision == "int8") o.calibration_dir = (fs::path(args.data) / "Training").string();
  return fruitpipe::model::CreateFeaturizer(card, o);
}

struct Rate {
  double wall = 0.0;  // images per second
  double cpu = 0.0;   // images per CPU-second of the process
};

Rate InferenceRate(Featurizer& f, int batch, double seconds) {
  std::vector<float> input(batch * f.input_spec().TensorSize()), output(static_cast<std::size_t>(batch) * f.dim());
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>((i * 7919) % 255) / 127.5f - 1.0f;
  f.Run(input.data(), batch, output.data());  // warm-up: primitives, caches
  long images = 0;
  const auto start = Clock::now();
  const double cpu_start = CpuSeconds();
  while (Seconds(start) < seconds || images < 2L * batch) {
    f.Run(input.data(), batch, output.data());
    images += batch;
  }
  return {images / Seconds(start), images / (CpuSeconds() - cpu_start)};
}

void Throughput(const ModelCard& card, const Args& args) {
  const double core_peak = MeasureCorePeak();
  std::printf("# FMA peak (AVX2 FMA chains, thread CPU time, best of 5): %.1f GFLOP/s per core; %%peak = GFLOP/s / (threads x that)\n",
              core_peak);
  struct Config {
    std::string backend, precision;
    int size, threads;
  };
  std::vector<Config> configs;
  for (const auto& backend : args.backends) {
    for (const auto& precision : args.precisions) {
      if (backend == "opencv" && precision != "fp32") continue;
      for (int size : args.sizes) {
        for (int threads : args.threads) configs.push_back({backend, precision, size, threads});
      }
    }
  }
  std::map<int, double> gflop;  // per image, by input size
  for (int size : args.sizes) {
    gflop[size] = LoadOnnxGraph(card.file, card.input_name, card.output_name, size, size).Flops() / 1e9;
  }
  // Rounds interleave the configurations; each keeps its best (the machine may be shared).
  std::vector<Rate> best(configs.size());
  for (int round = 0; round < args.rounds; ++round) {
    for (std::size_t k = 0; k < configs.size(); ++k) {
      const Config& c = configs[k];
      auto f = Make(card, c.backend, c.precision, c.size, c.threads, args);
      const Rate r = InferenceRate(*f, args.batch, args.seconds);
      best[k].wall = std::max(best[k].wall, r.wall);
      best[k].cpu = std::max(best[k].cpu, r.cpu);
    }
  }
  std::printf("# engine\tbackend\tprecision\tsize\tthreads\tbatch\timg/s\tGFLOP/s\t%%peak\timg/cpu-s\n");
  for (std::size_t k = 0; k < configs.size(); ++k) {
    const Config& c = configs[k];
    const double rate = gflop[c.size] * best[k].wall;
    std::printf("fruitpipe\t%s\t%s\t%d\t%d\t%d\t%.1f\t%.1f\t%.0f%%\t%.1f\n", c.backend.c_str(), c.precision.c_str(),
                c.size, c.threads, args.batch, best[k].wall, rate, 100.0 * rate / (core_peak * c.threads), best[k].cpu);
  }
  std::printf("# GFLOP per image: 224 %.3f, 160 %.3f, 128 %.3f, 96 %.3f (multiply-adds x 2, from the ONNX graph)\n",
              gflop.count(224) ? gflop[224] : 0.0, gflop.count(160) ? gflop[160] : 0.0, gflop.count(128) ? gflop[128] : 0.0,
              gflop.count(96) ? gflop[96] : 0.0);
  std::fflush(stdout);
}

// ---- Dev images ---------------------------------------------------------------------------

struct LabeledFile {
  std::string label;
  std::string bytes;
};

// Every image under root/split (label = folder), sorted; `limit` > 0 takes that many, spread.
std::vector<LabeledFile> ReadSplit(const std::string& root, const std::string& split, std::size_t limit) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(root) / split)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw fruitpipe::NotFoundError("no images under " + (fs::path(root) / split).string());
  const std::size_t take = limit > 0 ? std::min(limit, files.size()) : files.size();
  std::vector<LabeledFile> out;
  for (std::size_t k = 0; k < take; ++k) {
    const fs::path& p = files[k * files.size() / take];
    std::ifstream in(p, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    out.push_back({p.parent_path().filename().string(), bytes.str()});
  }
  return out;
}

// What the pipeline does per image before inference: decode (validated) and preprocess.
void DecodeAndPreprocess(const std::string& bytes, const fruitpipe::image::PreprocessSpec& spec, float* out) {
  auto decoded = fruitpipe::image::DecodeImage(bytes);
  if (!decoded.ok) throw fruitpipe::CorruptionError("dev image does not decode: " + decoded.reason);
  fruitpipe::image::Preprocess(decoded.image.rgb, spec, out);
}

// ---- Arrangements of decode and inference on the cores ---------------------------------------

// A bounded queue of prepared batches between a decode thread and the inference thread.
class BatchQueue {
 public:
  void Push(std::vector<float> batch) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < 2; });
    q_.push_back(std::move(batch));
    not_empty_.notify_one();
  }
  std::vector<float> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty(); });
    auto b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::vector<float>> q_;
};

// The engine directly, to choose how its threads work: an OpenMP team inside every primitive
// ("team") or whole chunks per thread ("split", the default).
std::unique_ptr<Engine> MakeEngine(const ModelCard& card, int threads, bool split) {
  EngineOptions o;
  o.threads = threads;
  o.split_images = split;
  return std::make_unique<Engine>(LoadOnnxGraph(card.file, card.input_name, card.output_name, card.input.height,
                                                card.input.width),
                                  o);
}

void Arrangements(const ModelCard& card, const Args& args) {
  const auto files = ReadSplit(args.data, "Test", 512);
  const int batch = args.batch;
  const int batches = static_cast<int>(files.size()) / batch;
  const int n = batches * batch;
  const auto& spec = card.input;
  const std::size_t tensor = spec.TensorSize();
  auto one = MakeEngine(card, 1, true);
  auto team = MakeEngine(card, 2, false);
  auto split = MakeEngine(card, 2, true);
  std::vector<float> output(static_cast<std::size_t>(batch) * one->output_floats());
  std::vector<float> staged(batch * tensor);
  auto decode_batch = [&](int b, float* out) {
    for (int k = 0; k < batch; ++k) DecodeAndPreprocess(files[b * batch + k].bytes, spec, out + k * tensor);
  };
  auto report = [&](const std::string& name, double seconds) {
    std::printf("arrangement\t%-58s\t%7.1f img/s\n", name.c_str(), n / seconds);
    std::fflush(stdout);
  };
  std::printf("# decode (fp_image) + preprocess + inference (fp32 224) of %d dev Test images, batch %d\n", n, batch);
  decode_batch(0, staged.data());
  for (Engine* e : {one.get(), team.get(), split.get()}) e->Run(staged.data(), batch, output.data());  // build plans

  auto start = Clock::now();
  for (int b = 0; b < batches; ++b) decode_batch(b, staged.data());
  report("decode+preprocess only, 1 thread", Seconds(start));
  for (auto [name, e] : {std::pair{"inference only, 1 thread", one.get()}, std::pair{"inference only, 2 threads team", team.get()},
                         std::pair{"inference only, 2 threads split", split.get()}}) {
    start = Clock::now();
    for (int b = 0; b < batches; ++b) e->Run(staged.data(), batch, output.data());
    report(name, Seconds(start));
  }

  start = Clock::now();
  for (int b = 0; b < batches; ++b) {
    decode_batch(b, staged.data());
    one->Run(staged.data(), batch, output.data());
  }
  report("A serial decode then infer, 1 thread", Seconds(start));

  // A decode thread feeding inference on the calling thread (the usual producer/consumer).
  auto pipelined = [&](Engine* e) {
    BatchQueue q;
    const auto t0 = Clock::now();
    std::thread producer([&] {
      for (int b = 0; b < batches; ++b) {
        std::vector<float> x(batch * tensor);
        decode_batch(b, x.data());
        q.Push(std::move(x));
      }
    });
    for (int b = 0; b < batches; ++b) {
      auto x = q.Pop();
      e->Run(x.data(), batch, output.data());
    }
    producer.join();
    return Seconds(t0);
  };
  report("B decode thread + 2-thread inference, team", pipelined(team.get()));
  report("B decode thread + 2-thread inference, split", pipelined(split.get()));
  report("D decode thread + 1-thread inference", pipelined(one.get()));

  // The OpenMP team decodes the batch, then inference (the pipeline's shard worker).
  for (auto [name, e] : {std::pair{"C decode in an OpenMP team, then infer, team", team.get()},
                         std::pair{"C decode in an OpenMP team, then infer, split", split.get()}}) {
    start = Clock::now();
    for (int b = 0; b < batches; ++b) {
#pragma omp parallel for num_threads(2) schedule(dynamic, 1)
      for (int k = 0; k < batch; ++k) DecodeAndPreprocess(files[b * batch + k].bytes, spec, staged.data() + k * tensor);
      e->Run(staged.data(), batch, output.data());
    }
    report(name, Seconds(start));
  }

  // Two workers, each decoding and inferring its own batches single-threaded.
  {
    auto other = MakeEngine(card, 1, true);
    other->Run(staged.data(), batch, output.data());
    start = Clock::now();
    auto worker = [&](Engine* e, int first) {
      omp_set_num_threads(1);
      std::vector<float> x(batch * tensor), y(static_cast<std::size_t>(batch) * e->output_floats());
      for (int b = first; b < batches; b += 2) {
        decode_batch(b, x.data());
        e->Run(x.data(), batch, y.data());
      }
    };
    std::thread t0(worker, one.get(), 0), t1(worker, other.get(), 1);
    t0.join();
    t1.join();
    report("E two workers x (decode + 1-thread inference)", Seconds(start));
  }

  // The collapse: 2-thread inference while another thread keeps a core busy.
  for (auto [images, e, name] : {std::tuple{1, team.get(), "batch 1, team"}, std::tuple{batch, team.get(), "batch 32, team"},
                                 std::tuple{batch, split.get(), "batch 32, split"}}) {
    double rate[2];
    for (int busy = 0; busy < 2; ++busy) {
      std::atomic<bool> stop{false};
      std::thread spinner;
      if (busy) {
        spinner = std::thread([&] {
          volatile double x = 1.0;
          while (!stop.load(std::memory_order_relaxed)) x = x * 1.0000001 + 1e-9;
        });
      }
      long done = 0;
      start = Clock::now();
      while (Seconds(start) < args.seconds) {
        e->Run(staged.data(), images, output.data());
        done += images;
      }
      rate[busy] = done / Seconds(start);
      stop = true;
      if (busy) spinner.join();
    }
    std::printf("collapse\t2-thread inference, %-16s\t%7.1f img/s alone\t%7.1f img/s beside a busy thread\n", name, rate[0],
                rate[1]);
    std::fflush(stdout);
  }
}

// ---- Accuracy of int8 and reduced sizes ---------------------------------------------------

struct Features {
  std::vector<std::string> labels;
  std::vector<float> values;  // n x dim, L2-normalized
  int dim = 0;
};

Features Featurize(Featurizer& f, const std::vector<LabeledFile>& files, const std::vector<cv::Mat>& rgb, int batch) {
  Features out;
  out.dim = f.dim();
  const std::size_t tensor = f.input_spec().TensorSize();
  std::vector<float> x(batch * tensor);
  out.values.resize(files.size() * static_cast<std::size_t>(out.dim));
  for (std::size_t start = 0; start < files.size(); start += batch) {
    const int n = static_cast<int>(std::min<std::size_t>(batch, files.size() - start));
    for (int k = 0; k < n; ++k) fruitpipe::image::Preprocess(rgb[start + k], f.input_spec(), x.data() + k * tensor);
    f.Run(x.data(), n, out.values.data() + start * out.dim);
  }
  for (const auto& file : files) out.labels.push_back(file.label);
  for (std::size_t i = 0; i < files.size(); ++i) {
    float* v = out.values.data() + i * out.dim;
    double norm = 0.0;
    for (int d = 0; d < out.dim; ++d) norm += static_cast<double>(v[d]) * v[d];
    for (int d = 0; d < out.dim; ++d) v[d] = static_cast<float>(v[d] / std::sqrt(norm + 1e-30));
  }
  return out;
}

// Top-1 (%) of the nearest class mean (cosine) trained on `train`, and each test prediction.
double NearestCentroid(const Features& train, const Features& test, std::vector<std::string>* predictions) {
  std::map<std::string, std::vector<double>> sums;
  for (std::size_t i = 0; i < train.labels.size(); ++i) {
    auto& s = sums[train.labels[i]];
    s.resize(train.dim, 0.0);
    for (int d = 0; d < train.dim; ++d) s[d] += train.values[i * train.dim + d];
  }
  int correct = 0;
  predictions->clear();
  for (std::size_t i = 0; i < test.labels.size(); ++i) {
    double best = -1e30;
    std::string label;
    for (const auto& [name, s] : sums) {
      double dot = 0.0, norm = 0.0;
      for (int d = 0; d < test.dim; ++d) {
        dot += s[d] * test.values[i * test.dim + d];
        norm += s[d] * s[d];
      }
      if (dot / std::sqrt(norm) > best) {
        best = dot / std::sqrt(norm);
        label = name;
      }
    }
    predictions->push_back(label);
    correct += label == test.labels[i];
  }
  return 100.0 * correct / static_cast<double>(test.labels.size());
}

void Accuracy(const ModelCard& card, const Args& args) {
  const auto train_files = ReadSplit(args.data, "Training", 0);
  const auto test_files = ReadSplit(args.data, "Test", 0);
  auto decode_all = [](const std::vector<LabeledFile>& files) {
    std::vector<cv::Mat> out(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
      auto d = fruitpipe::image::DecodeImage(files[i].bytes);
      if (!d.ok) throw fruitpipe::CorruptionError("dev image does not decode: " + d.reason);
      out[i] = d.image.rgb;
    }
    return out;
  };
  const auto train_rgb = decode_all(train_files);
  const auto test_rgb = decode_all(test_files);
  std::printf("# accuracy: nearest class mean of L2-normalized features, %zu Training -> %zu Test images\n",
              train_files.size(), test_files.size());
  Features reference;
  std::vector<std::string> reference_predictions;
  for (const std::string precision : {"fp32", "int8"}) {
    for (int size : args.sizes) {
      if (precision == "int8" && !Has(args.precisions, "int8")) continue;
      // One thread: figures do not depend on it, and it does not stall on a shared machine.
      auto f = Make(card, "onednn", precision, size, 1, args);
      const Features train = Featurize(*f, train_files, train_rgb, args.batch);
      const Features test = Featurize(*f, test_files, test_rgb, args.batch);
      std::vector<std::string> predictions;
      const double top1 = NearestCentroid(train, test, &predictions);
      const bool is_reference = precision == "fp32" && size == args.sizes.front();
      if (is_reference) {
        reference = test;
        reference_predictions = predictions;
      }
      int changed = 0;
      for (std::size_t i = 0; i < predictions.size(); ++i) changed += predictions[i] != reference_predictions[i];
      std::string cosine = "-";
      if (!is_reference && reference.dim == test.dim) {  // same model, same images: features comparable
        double sum = 0.0, worst = 1.0;
        for (std::size_t i = 0; i < test.labels.size(); ++i) {
          double dot = 0.0;
          for (int d = 0; d < test.dim; ++d) dot += static_cast<double>(test.values[i * test.dim + d]) * reference.values[i * test.dim + d];
          sum += dot;
          worst = std::min(worst, dot);
        }
        char buf[96];
        std::snprintf(buf, sizeof(buf), "mean %.4f min %.4f", sum / test.labels.size(), worst);
        cosine = buf;
      }
      std::printf("accuracy\t%s\t%d\ttop-1 %.2f%%\tpredictions changed vs fp32 %d: %d of %zu\tcosine to fp32 %d: %s\n",
                  precision.c_str(), size, top1, args.sizes.front(), changed, predictions.size(), args.sizes.front(),
                  cosine.c_str());
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = ParseArgs(argc, argv);
    const ModelCard card = fruitpipe::model::LoadModelCard(args.card);
    std::printf("# model %s (%s), batch %d, %u hardware threads\n", card.name.c_str(), card.file.c_str(), args.batch,
                std::thread::hardware_concurrency());
    if (Has(args.sections, "throughput")) Throughput(card, args);
    if (Has(args.sections, "arrangements")) Arrangements(card, args);
    if (Has(args.sections, "accuracy")) Accuracy(card, args);
  } catch (const std::exception& e) {
    std::cerr << "engine_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
