// Shared by the S3 tests: the skip rule for tests that need node and the npm tools, and the
// guarantee that no test ever reaches a real metadata service.
#pragma once

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "fruitpipe/common/testing.h"
#include "fruitpipe/storage/s3/harness.h"

namespace fruitpipe::storage::s3::testing {

// Where node or tools/node/node_modules is missing the S3 server tests skip, unless
// FRUITPIPE_REQUIRE_SHARED=1 (CI), where they fail. Checked once per process.
inline const std::string& NodeToolsMissing() {
  static const std::string why = [] {
    std::string w;
    return harness::NodeToolsAvailable(&w) ? std::string() : w;
  }();
  return why;
}

// Every S3 test process starts with instance metadata disabled and no AWS configuration from
// the machine it runs on (a CI runner on ECS or EKS has container or web identity variables);
// tests that exercise IMDS, the container endpoint or STS point them at their own 127.0.0.1
// servers. Nothing may reach 169.254.169.254, 169.254.170.2 or STS.
inline void IsolateAwsEnvironment() {
  ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                        "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT", "FRUITPIPE_S3_MAX_ATTEMPTS",
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
                        "AWS_ENDPOINT_URL_STS"}) {
    ::unsetenv(v);
  }
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/fruitpipe-test/credentials", 1);
  ::setenv("AWS_CONFIG_FILE", "/nonexistent/fruitpipe-test/config", 1);
  for (const char* v : {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) {
    ::unsetenv(v);
  }
}

}  // namespace fruitpipe::storage::s3::testing

#define FRUITPIPE_REQUIRE_NODE_TOOLS()                                                         \
  do {                                                                                         \
    const std::string& why_missing = ::fruitpipe::storage::s3::testing::NodeToolsMissing();    \
    if (!why_missing.empty()) {                                                                \
      if (::fruitpipe::testing::SharedRequired()) {                                            \
        FAIL() << why_missing << " and FRUITPIPE_REQUIRE_SHARED=1";                            \
      }                                                                                        \
      GTEST_SKIP() << "SKIPPED: needs node and tools/node/node_modules: " << why_missing;      \
    }                                                                                          \
  } while (0)
