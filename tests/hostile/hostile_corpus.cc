#include "hostile_corpus.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <stdexcept>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zlib.h>

#include "fruitpipe/image/test_images.h"

namespace fruitpipe::hostile {
namespace {

namespace fs = std::filesystem;
using image::testimg::Encode;
using Outcome = Expectation::Outcome;

constexpr char kLabel[] = "Hostile";

// A fruit-like picture: a shaded disc on white, with a little noise so codecs have work.
cv::Mat Picture(int w, int h, int channels, unsigned seed) {
  cv::Mat rgb(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::RNG rng(seed);
  const cv::Scalar colour(rng.uniform(80, 230), rng.uniform(40, 200), rng.uniform(20, 120));
  cv::circle(rgb, {w / 2, h / 2}, std::max(1, std::min(w, h) * 2 / 5), colour, cv::FILLED, cv::LINE_AA);
  cv::Mat noise(h, w, CV_8UC3);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 12);
  rgb -= noise;
  if (channels == 3) return rgb;
  cv::Mat out;
  if (channels == 1) cv::cvtColor(rgb, out, cv::COLOR_RGB2GRAY);
  if (channels == 4) {
    cv::cvtColor(rgb, out, cv::COLOR_RGB2RGBA);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) out.at<cv::Vec4b>(y, x)[3] = static_cast<std::uint8_t>(255 * x / std::max(1, w - 1));
    }
  }
  return out;
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// A PNG of `side`x`side` 16-bit RGBA pixels, all the same colour: a few hundred kilobytes that
// decode to gigabytes of samples unless the declared size is checked. Deflated row by row so
// the generator itself stays small.
std::string FlatRgba16Png(std::uint32_t side) {
  std::string raw_row(1 + std::size_t{side} * 8, '\0');
  for (std::size_t x = 0; x < side; ++x) {
    raw_row[1 + 8 * x] = '\xC0';      // R high byte
    raw_row[1 + 8 * x + 2] = '\x20';  // G high byte
    raw_row[1 + 8 * x + 6] = '\xFF';  // opaque
  }
  z_stream z{};
  if (deflateInit(&z, 9) != Z_OK) throw std::runtime_error("deflateInit failed");
  std::string idat;
  char buf[1 << 16];
  for (std::uint32_t y = 0; y < side; ++y) {
    z.next_in = reinterpret_cast<Bytef*>(raw_row.data());
    z.avail_in = static_cast<uInt>(raw_row.size());
    const int flush = y + 1 == side ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, flush);
      idat.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  std::string png = "\x89PNG\r\n\x1a\n" + image::testimg::PngIhdr(side, side, 16, 6);
  for (std::size_t i = 0; i < idat.size(); i += 1 << 20) {
    png += image::testimg::PngChunk("IDAT", std::string_view(idat).substr(i, 1 << 20));
  }
  return png + image::testimg::PngChunk("IEND", "");
}

// The smallest GIF: 1x1, one colour (the format is recognised and refused).
std::string Gif() {
  return std::string("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
                     "!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02"
                     "D\x01\x00;",
                     43);
}

Expectation MakeProcessed(std::string key, std::string what, std::string label, int w, int h) {
  Expectation e;
  e.key = std::move(key);
  e.outcome = Outcome::kProcessed;
  e.what = std::move(what);
  e.label = std::move(label);
  e.width = w;
  e.height = h;
  return e;
}

Expectation MakeRejected(std::string key, std::string what, std::string reason, bool suffix) {
  Expectation e;
  e.key = std::move(key);
  e.outcome = Outcome::kRejected;
  e.what = std::move(what);
  e.reason = std::move(reason);
  e.reason_is_suffix = suffix;
  return e;
}

Expectation MakeIgnored(std::string key, std::string what) {
  Expectation e;
  e.key = std::move(key);
  e.outcome = Outcome::kIgnored;
  e.what = std::move(what);
  return e;
}

class Corpus {
 public:
  explicit Corpus(fs::path root) : root_(std::move(root)) {}

  void Processed(const std::string& name, const std::string& bytes, int w, int h, const std::string& what) {
    WriteFile(root_ / kLabel / name, bytes);
    Add(MakeProcessed(std::string(kLabel) + "/" + name, what, kLabel, w, h));
  }
  void Rejected(const std::string& name, const std::string& bytes, const std::string& reason,
                const std::string& what) {
    WriteFile(root_ / kLabel / name, bytes);
    RejectedEntry(name, reason, false, what);
  }
  void RejectedEntry(const std::string& name, const std::string& reason, bool suffix, const std::string& what) {
    Add(MakeRejected(std::string(kLabel) + "/" + name, what, reason, suffix));
  }
  void Add(Expectation e) { list_.push_back(std::move(e)); }
  fs::path Path(const std::string& name) const { return root_ / kLabel / name; }
  const fs::path& root() const { return root_; }
  std::vector<Expectation> Take() { return std::move(list_); }

 private:
  fs::path root_;
  std::vector<Expectation> list_;
};

}  // namespace

std::vector<Expectation> WriteHostileCorpus(const fs::path& root, bool as_root) {
  Corpus c(root);
  const std::string jpeg = Encode(Picture(64, 48, 3, 1), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90});
  const std::size_t sos = image::testimg::FindMarker(jpeg, 0xDA);

  // Not images at all.
  c.Rejected("empty.jpg", "", "empty file", "zero bytes");
  {
    std::mt19937 gen(9);
    std::string random(4096, '\0');
    for (char& ch : random) ch = static_cast<char>(gen());
    random[0] = 'r';  // never a signature by chance
    c.Rejected("random.jpg", random, "not an image (unrecognised signature)", "4 KiB of random bytes named .jpg");
  }
  c.Rejected("notes.png", "these are not pixels\n", "not an image (unrecognised signature)", "a text file named .png");

  // Broken JPEGs.
  for (std::size_t cut : {std::size_t{3}, std::size_t{100}, sos + 20, jpeg.size() / 2, jpeg.size() - 2}) {
    c.Rejected("truncated-" + std::to_string(cut) + ".jpg", jpeg.substr(0, cut), "truncated JPEG",
               "JPEG cut after " + std::to_string(cut) + " of " + std::to_string(jpeg.size()) + " bytes");
  }
  {
    // Every code-length count of the first Huffman table set to 255: the table claims 4080
    // codes (at most 256 exist).
    std::string bad = jpeg;
    const std::size_t dht = image::testimg::FindMarker(bad, 0xC4);  // at the segment length
    for (std::size_t i = 0; i < 16; ++i) bad[dht + 3 + i] = '\xFF';
    c.Rejected("bad-huffman.jpg", bad, "corrupt image data: Bogus Huffman table definition",
               "JPEG whose Huffman table declares 4080 codes");
  }
  {
    std::string bad = jpeg;
    const std::size_t mid = (sos + bad.size()) / 2;
    bad[mid] = '\xFF';
    bad[mid + 1] = '\xD9';
    c.Rejected("eoi-inside-data.jpg", bad, "corrupt image data: premature end of data segment",
               "JPEG with an end-of-image marker inside the entropy-coded data");
  }
  c.Rejected("many-scans.jpg", image::testimg::ManyScanJpeg(), "corrupt image data: more than 500 progressive scans",
             "progressive JPEG with ~1400 scans (CPU exhaustion)");

  // Decompression bombs: tiny files declaring 3.6 gigapixels.
  {
    std::string bomb = Encode(Picture(16, 16, 3, 2), ".jpg");
    const std::size_t sof = image::testimg::FindMarker(bomb, 0xC0);
    for (int i : {3, 5}) {
      bomb[sof + i] = static_cast<char>(60000 >> 8);
      bomb[sof + i + 1] = static_cast<char>(60000 & 0xff);
    }
    c.Rejected("bomb-60000.jpg", bomb, "declared 60000x60000 pixels exceeds the limit of 40000000",
               "JPEG declaring 60000x60000");
    const std::string png = "\x89PNG\r\n\x1a\n" + image::testimg::PngIhdr(60000, 60000, 8, 2) +
                            image::testimg::PngChunk("IDAT", std::string(64, '\0')) +
                            image::testimg::PngChunk("IEND", "");
    c.Rejected("bomb-60000.png", png, "declared 60000x60000 pixels exceeds the limit of 40000000",
               "PNG declaring 60000x60000");
  }
  // Just under the pixel limit: it is decoded, so memory is bounded by the limit, not the file.
  c.Processed("flat-6000x6000-rgba16.png", FlatRgba16Png(6000), 6000, 6000,
              "16-bit RGBA PNG of 6000x6000 (36 Mpixels, 288 MB of samples) in ~300 KB");
  {
    const std::string png = Encode(Picture(32, 32, 3, 3), ".png");
    const std::size_t idat = png.find("IDAT");
    std::string damaged = png;
    damaged[idat + 12] = static_cast<char>(damaged[idat + 12] ^ 0x55);  // inside the deflate stream
    c.Rejected("damaged-idat.png", damaged, "corrupt image data: IDAT: invalid code lengths set",
               "PNG whose compressed pixel data is damaged");
    std::string bad_crc = png;
    const std::size_t length = (std::size_t{static_cast<std::uint8_t>(png[idat - 4])} << 24) |
                               (std::size_t{static_cast<std::uint8_t>(png[idat - 3])} << 16) |
                               (std::size_t{static_cast<std::uint8_t>(png[idat - 2])} << 8) |
                               std::size_t{static_cast<std::uint8_t>(png[idat - 1])};
    bad_crc[idat + 4 + length] = static_cast<char>(bad_crc[idat + 4 + length] ^ 0x01);
    c.Rejected("bad-crc.png", bad_crc, "corrupt image data: IDAT: CRC error", "PNG whose IDAT fails its CRC");
  }
  c.Rejected("truncated.png", Encode(Picture(64, 48, 3, 4), ".png").substr(0, 200), "truncated PNG",
             "PNG cut after 200 bytes");
  {
    // 100 MiB, sparse: a JPEG signature followed by nothing.
    const fs::path p = c.Path("oversized.jpg");
    WriteFile(p, jpeg.substr(0, 20));
    fs::resize_file(p, 100u << 20);
    c.RejectedEntry("oversized.jpg", "file of 104857600 bytes exceeds the limit of 67108864", false,
                    "100 MiB file starting like a JPEG");
  }

  // Unusual but valid images: converted to 8-bit RGB (docs/model-card.md).
  c.Processed("progressive.jpg", Encode(Picture(64, 48, 3, 5), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}), 64, 48,
              "progressive JPEG");
  {
    const std::uint8_t ink[4] = {20, 200, 180, 10};
    c.Processed("cmyk.jpg", image::testimg::CmykJpeg(40, 30, ink, true), 40, 30, "CMYK JPEG (Adobe)");
  }
  c.Processed("gray.jpg", Encode(Picture(50, 40, 1, 6), ".jpg"), 50, 40, "grayscale JPEG");
  c.Processed("gray.png", Encode(Picture(50, 40, 1, 7), ".png"), 50, 40, "grayscale PNG");
  {
    cv::Mat rgb16;
    Picture(40, 30, 3, 8).convertTo(rgb16, CV_16U, 257.0);
    c.Processed("rgb16.png", Encode(rgb16, ".png"), 40, 30, "16-bit RGB PNG");
  }
  {
    std::vector<std::uint8_t> indices(36 * 20);
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::uint8_t>(i % 4);
    const std::string plte = image::testimg::PngChunk("PLTE", std::string("\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\xff", 12));
    c.Processed("palette.png", image::testimg::Png(36, 20, 3, indices, {plte}), 36, 20, "palette PNG");
  }
  c.Processed("rgba.png", Encode(Picture(40, 30, 4, 9), ".png"), 40, 30, "RGBA PNG (alpha composited on white)");
  c.Processed("exif-rotated.jpg",
              image::testimg::WithExifOrientation(Encode(Picture(40, 20, 3, 10), ".jpg"), 6), 20, 40,
              "JPEG 40x20 with EXIF orientation 6 (row: 20x40)");
  c.Processed("one-pixel.jpg", Encode(Picture(1, 1, 3, 11), ".jpg"), 1, 1, "1x1 JPEG");
  c.Processed("one-pixel.png", Encode(Picture(1, 1, 3, 12), ".png"), 1, 1, "1x1 PNG");
  c.Processed("wide-10000x10.jpg", Encode(Picture(10000, 10, 3, 13), ".jpg"), 10000, 10, "10000x10 JPEG");
  c.Processed("lossy.webp", Encode(Picture(40, 30, 3, 14), ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}), 40, 30,
              "lossy WebP");
  c.Processed("lossless.webp", Encode(Picture(40, 30, 3, 15), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}), 40, 30,
              "lossless WebP");
  c.Processed("image.bmp", Encode(Picture(40, 30, 3, 16), ".bmp"), 40, 30, "24-bit BMP");
  c.Processed("png-named.jpg", Encode(Picture(30, 20, 3, 17), ".png"), 30, 20,
              "PNG named .jpg (the signature decides)");
  c.Processed("no-extension", Encode(Picture(30, 20, 3, 18), ".jpg"), 30, 20, "JPEG without an extension");
  c.Processed("trailing-garbage.jpg", jpeg + std::string(1000, '\x5A'), 64, 48, "JPEG followed by 1000 junk bytes");
  c.Processed("name with\nnewline and \"quotes\".jpg", Encode(Picture(30, 20, 3, 19), ".jpg"), 30, 20,
              "valid JPEG whose name holds a newline and quotes");
  c.Rejected("animation.gif", Gif(), "unsupported format gif", "GIF");
  c.Rejected("image.tiff", Encode(Picture(20, 10, 3, 20), ".tiff"), "unsupported format tiff", "TIFF");

  // File-system oddities.
  {
    // A folder named like an image is a folder: traversed, its images labelled by its name.
    const std::string bytes = Encode(Picture(24, 24, 3, 21), ".png");
    WriteFile(root / kLabel / "folder.jpg" / "inside.png", bytes);
    c.Add(MakeProcessed(std::string(kLabel) + "/folder.jpg/inside.png",
                        "folder named folder.jpg holding a PNG (label: folder.jpg)", "folder.jpg", 24, 24));
    fs::create_directories(root / kLabel / "empty-folder.jpg");
  }
  fs::create_symlink("loop.jpg", c.Path("loop.jpg"));
  c.RejectedEntry("loop.jpg", ": Too many levels of symbolic links", true, "symlink to itself");
  fs::create_symlink("ping.jpg", c.Path("pong.jpg"));
  fs::create_symlink("pong.jpg", c.Path("ping.jpg"));
  c.RejectedEntry("ping.jpg", ": Too many levels of symbolic links", true, "two symlinks pointing at each other");
  c.RejectedEntry("pong.jpg", ": Too many levels of symbolic links", true, "(the other one)");
  fs::create_symlink("..", c.Path("up"));
  c.Add(MakeIgnored(std::string(kLabel) + "/up", "symlink to the parent folder (not followed: no cycle)"));
  fs::create_symlink("missing.jpg", c.Path("dangling.jpg"));
  c.RejectedEntry("dangling.jpg", ": no such file", true, "dangling symlink");
  c.Processed("target.bin", Encode(Picture(28, 28, 3, 22), ".jpg"), 28, 28, "JPEG named .bin");
  fs::create_symlink("target.bin", c.Path("symlinked.jpg"));
  c.Add(MakeProcessed(std::string(kLabel) + "/symlinked.jpg",
                      "symlink to a valid image in the same folder (keeps its own key)", kLabel, 28, 28));
  fs::create_symlink("/dev/null", c.Path("dev-null.jpg"));
  c.RejectedEntry("dev-null.jpg", ": not a regular file", true, "symlink to /dev/null (a character device)");
  if (::mkfifo(c.Path("fifo.jpg").c_str(), 0644) != 0) throw std::runtime_error("mkfifo failed");
  c.RejectedEntry("fifo.jpg", ": not a regular file", true, "named pipe (FIFO) with no writer");
  {
    const std::string bytes = Encode(Picture(26, 26, 3, 23), ".jpg");
    WriteFile(c.Path("unreadable.jpg"), bytes);
    fs::permissions(c.Path("unreadable.jpg"), fs::perms::none);
    if (as_root) {
      c.Add(MakeProcessed(std::string(kLabel) + "/unreadable.jpg", "mode 000 file (root reads it anyway: processed)",
                          kLabel, 26, 26));
    } else {
      c.RejectedEntry("unreadable.jpg", ": Permission denied", true, "mode 000 file");
    }
  }
  c.Rejected("latin1-\xE9t\xE9.jpg", jpeg,
             "file name is not valid UTF-8 (paths are UTF-8 strings in Parquet and JSON): rename it",
             "valid JPEG whose name is Latin-1 bytes, not UTF-8");
  WriteFile(root / "no-folder.jpg", jpeg);
  c.Add(MakeRejected("no-folder.jpg", "image directly in the source root (no label)",
                     "no class folder: images must be in <Label>/ folders", false));
  WriteFile(c.Path(".hidden.jpg"), jpeg);
  c.Add(MakeIgnored(std::string(kLabel) + "/.hidden.jpg", "hidden file (skipped by design)"));
  WriteFile(c.Path("_metadata.jpg"), jpeg);
  c.Add(MakeIgnored(std::string(kLabel) + "/_metadata.jpg", "'_' file (Spark metadata convention, skipped)"));
  return c.Take();
}

void WriteTinyImages(const fs::path& root, int count, int classes, int side) {
  for (int c = 0; c < classes; ++c) fs::create_directories(root / ("Class" + std::to_string(c)));
  for (int i = 0; i < count; ++i) {
    const fs::path p = root / ("Class" + std::to_string(i % classes)) / ("img" + std::to_string(i) + ".jpg");
    WriteFile(p, Encode(Picture(side, side, 3, static_cast<unsigned>(i) + 1), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 80}));
  }
}

}  // namespace fruitpipe::hostile
