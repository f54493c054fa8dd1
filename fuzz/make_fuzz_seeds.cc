// Writes the committed seed corpora of the fuzz targets (fuzz/corpus/<target>/): small
// synthetic inputs, nothing copied from the dev data. Re-run after a format change:
//   build-fuzz/fuzz/make_fuzz_seeds fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fruitpipe/image/test_images.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/privacy/test_photos.h"

namespace {

namespace fs = std::filesystem;
using fruitpipe::image::testimg::Encode;

void Write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

cv::Mat Disc(int w, int h, int channels) {
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::circle(m, {w / 2, h / 2}, std::min(w, h) / 3, cv::Scalar(200, 60, 30), cv::FILLED);
  if (channels == 3) return m;
  cv::Mat out;
  cv::cvtColor(m, out, channels == 1 ? cv::COLOR_RGB2GRAY : cv::COLOR_RGB2RGBA);
  return out;
}

void ImageSeeds(const fs::path& dir) {
  Write(dir / "baseline.jpg", Encode(Disc(16, 12, 3), ".jpg"));
  Write(dir / "progressive.jpg", Encode(Disc(16, 12, 3), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  Write(dir / "gray.jpg", Encode(Disc(8, 8, 1), ".jpg"));
  const std::uint8_t ink[4] = {10, 100, 200, 5};
  Write(dir / "cmyk.jpg", fruitpipe::image::testimg::CmykJpeg(8, 8, ink, true));
  Write(dir / "exif.jpg", fruitpipe::image::testimg::WithExifOrientation(Encode(Disc(8, 6, 3), ".jpg"), 6, true));
  Write(dir / "rgb.png", Encode(Disc(8, 6, 3), ".png"));
  Write(dir / "rgba.png", Encode(Disc(8, 6, 4), ".png"));
  cv::Mat rgb16;
  Disc(6, 4, 3).convertTo(rgb16, CV_16U, 257.0);
  Write(dir / "rgb16.png", Encode(rgb16, ".png"));
  Write(dir / "palette.png", fruitpipe::image::testimg::Png(
                                 4, 2, 3, {0, 1, 1, 0, 1, 0, 0, 1},
                                 {fruitpipe::image::testimg::PngChunk("PLTE", std::string("\xff\0\0\0\xff\0", 6))}));
  Write(dir / "lossy.webp", Encode(Disc(16, 12, 3), ".webp", {cv::IMWRITE_WEBP_QUALITY, 50}));
  Write(dir / "lossless.webp", Encode(Disc(8, 6, 4), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  Write(dir / "image.bmp", Encode(Disc(6, 4, 3), ".bmp"));
  Write(dir / "image.gif", std::string("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
                                       ",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;", 35));
  Write(dir / "image.tiff", Encode(Disc(4, 4, 3), ".tiff"));
}

void ParquetSeeds(const fs::path& dir) {
  using namespace fruitpipe::parquet;
  Table t;
  StringColumn path{{"a/1.jpg", "b/2.jpg", "b/3.jpg"}, {}, false};
  StringColumn subject{{"", "s1", ""}, {false, true, false}, true};
  FloatListColumn features;
  const float f[4] = {0.5f, -1.0f, 2.0f, 0.0f};
  features.AppendRow(f, 2);
  features.AppendRow(f + 2, 2);
  features.AppendRow(f, 0);
  DoubleListColumn pca;
  const double d[2] = {1.5, -2.5};
  pca.AppendRow(d, 2);
  pca.AppendRow(d, 1);
  pca.AppendRow(d, 2);
  t.columns.push_back({"path", path});
  t.columns.push_back({"subject_id", subject});
  t.columns.push_back({"width", Int32Column{{100, 1, 10000}}});
  t.columns.push_back({"rows", Int64Column{{1, -2, 3}}});
  t.columns.push_back({"score", DoubleColumn{{0.25, 1e300, -0.0}}});
  t.columns.push_back({"features", features});
  t.columns.push_back({"pcaFeatures", pca});
  t.metadata["fruitpipe"] = "{\"seed\":true}";
  WriteOptions o;
  o.row_group_rows = 2;  // two row groups
  o.compression = Compression::kUncompressed;
  Write(dir / "plain.parquet", WriteParquet(t, o));
  o.compression = Compression::kSnappy;
  Write(dir / "snappy.parquet", WriteParquet(t, o));
  o.compression = Compression::kZstd;
  o.page_values = 2;  // several pages per chunk
  Write(dir / "zstd-pages.parquet", WriteParquet(t, o));
}

// pca_fuzzer input: one byte for the kind (0 stats, 1 model), then the record without its
// magic and checksum.
std::string Body(const std::string& record, char kind) { return kind + record.substr(8, record.size() - 8 - 32); }

void PcaSeeds(const fs::path& dir) {
  fruitpipe::pca::PcaStats stats(3);
  const float rows[12] = {1, 2, 3, 2, 1, 0, 4, 4, 5, 0, 1, 1};
  stats.AddBatch(rows, 4);
  Write(dir / "stats", Body(stats.Serialize(), 0));
  Write(dir / "stats-empty", Body(fruitpipe::pca::PcaStats().Serialize(), 0));
  Write(dir / "model", Body(fruitpipe::pca::FitPca(stats, {2, 0.0}).Serialize(), 1));
}

void ModelCardSeeds(const fs::path& dir) {
  Write(dir / "card.json", R"({
  "name": "mobilenet_v2_1.0_224",
  "description": "seed",
  "file": "mobilenet_v2_features.onnx",
  "sha256": "afc61595720fb15fd2545e0f0559fdaa1135167557f91abc8407bf71f6e8c767",
  "format": "onnx",
  "url": "https://models.example.org/mobilenet_v2_features.onnx",
  "input": {"name": "input", "layout": "NCHW", "width": 224, "height": 224, "color": "RGB",
            "scale": 0.00784313725490196, "mean": [127.5, 127.5, 127.5]},
  "output": {"name": "features", "dim": 1280}
})");
  Write(dir / "torch.json", R"({"name": "t", "file": "/m/t.onnx", "sha256": "00000000000000000000000000000000000000000000000000000000000000AA",
 "input": {"name": "x", "layout": "NHWC", "width": 96, "height": 64, "color": "BGR", "scale": 0.00392156862745098,
           "mean": [123.675, 116.28, 103.53], "std": [0.229, 0.224, 0.225], "formula": "(x/255-m)/s"},
 "output": {"name": "auto", "dim": 1000, "labels": ["a", "b"]}, "opset": 13})");
}

void ServeSeeds(const fs::path& dir) {
  const std::string jpeg = Encode(Disc(16, 16, 3), ".jpg");
  const std::string auth = "Authorization: Bearer fuzz-token\r\n";
  auto post = [&](const std::string& type, const std::string& body, const std::string& extra = "") {
    return "POST /v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "Content-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
  };
  Write(dir / "identify-jpeg", post("image/jpeg", jpeg));
  Write(dir / "identify-png", post("image/png; charset=binary", Encode(Disc(8, 8, 4), ".png")));
  Write(dir / "identify-not-image", post("application/octet-stream", "hello"));
  Write(dir / "identify-wrong-type", post("text/plain", "hello"));
  Write(dir / "identify-gzip", post("image/jpeg", jpeg, "Content-Encoding: gzip\r\n"));
  Write(dir / "identify-chunked", "POST /v1/identify HTTP/1.1\r\nHost: x\r\n" + auth +
                                      "Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                      "10\r\n" + jpeg.substr(0, 16) + "\r\n0\r\n\r\n");
  Write(dir / "identify-no-token", "POST /v1/identify HTTP/1.1\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc");
  Write(dir / "pipelined", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\n" + auth +
                               "\r\nGET /nowhere?x=1 HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n");
}

// Photos as phones hand them over, tiny: Exif with GPS, XMP, ICC, IPTC, a comment, a JFIF
// thumbnail and a trailer (JPEG); tEXt, eXIf with GPS, tIME and iTXt (PNG).
void MetadataStripSeeds(const fs::path& dir) {
  namespace tp = fruitpipe::privacy::testphotos;
  namespace ti = fruitpipe::image::testimg;
  const std::string plain = Encode(Disc(8, 6, 3), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 50});
  Write(dir / "phone.jpg", tp::PhoneJpeg(plain, 6));
  // SOI, then Exif (GPS, orientation 1) in place of the JFIF APP0 (FF E0, its length, payload).
  const std::size_t jfif = 2 + ((static_cast<std::uint8_t>(plain[4]) << 8) | static_cast<std::uint8_t>(plain[5]));
  Write(dir / "exif-gps.jpg", "\xFF\xD8" + tp::JpegSegment(0xE1, std::string("Exif\0\0", 6) + tp::GpsExifTiff(1)) +
                                  plain.substr(2 + jfif));
  Write(dir / "phone.png", tp::PhonePng(3, 2, 8));
  Write(dir / "text-exif.png", ti::Png(2, 2, 2, std::vector<std::uint8_t>(12, 200),
                                       {ti::PngChunk("tEXt", std::string("Author\0alice", 12)),
                                        ti::PngChunk("eXIf", tp::GpsExifTiff(3))}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds CORPUS_DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  ImageSeeds(root / "image_fuzzer");
  ParquetSeeds(root / "parquet_fuzzer");
  PcaSeeds(root / "pca_fuzzer");
  ModelCardSeeds(root / "model_card_fuzzer");
  ServeSeeds(root / "serve_fuzzer");
  MetadataStripSeeds(root / "metadata_strip_fuzzer");
  std::printf("seeds written to %s\n", root.c_str());
  return 0;
}
