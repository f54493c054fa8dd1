#include "fruitpipe/serve/app_page.h"

#include <openssl/evp.h>

#include <string_view>

#include "app_page_html.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"

namespace fruitpipe::serve {
namespace {

// The CSP source for the text between <tag> and </tag> (the only one in the page).
std::string InlineHash(std::string_view html, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const auto begin = html.find(open);
  const auto end = html.find(close);
  if (begin == std::string_view::npos || end == std::string_view::npos || html.find(open, begin + 1) != std::string_view::npos) {
    throw Error("app page: expected exactly one <" + std::string(tag) + "> element");
  }
  const Sha256Digest digest = Sha256(html.substr(begin + open.size(), end - begin - open.size()));
  unsigned char b64[4 * ((sizeof digest + 2) / 3) + 1];
  EVP_EncodeBlock(b64, digest.data(), static_cast<int>(digest.size()));
  return "'sha256-" + std::string(reinterpret_cast<const char*>(b64)) + "'";
}

}  // namespace

const AppPage& TheAppPage() {
  static const AppPage page = [] {
    AppPage p;
    p.html = std::string(kAppPageHtml);
    // Photos are previewed from blob: URLs; every request goes to this origin.
    p.content_security_policy = "default-src 'none'; script-src " + InlineHash(kAppPageHtml, "script") +
                                "; style-src " + InlineHash(kAppPageHtml, "style") +
                                "; img-src blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                                "frame-ancestors 'none'";
    return p;
  }();
  return page;
}

}  // namespace fruitpipe::serve
