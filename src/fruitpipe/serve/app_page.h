// The app's page (GET /): one self-contained HTML document (app_page.html, compiled in; no
// external script, style, font or image), and the Content-Security-Policy that lets exactly
// its one inline script and one inline style run, by their SHA-256, and nothing else load.
#pragma once

#include <string>

namespace fruitpipe::serve {

struct AppPage {
  std::string html;
  std::string content_security_policy;
};

const AppPage& TheAppPage();

}  // namespace fruitpipe::serve
