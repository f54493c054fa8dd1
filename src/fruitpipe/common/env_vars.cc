#include "fruitpipe/common/env_vars.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "fruitpipe/common/error.h"

namespace fruitpipe {

std::optional<std::string> GetEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::string GetEnvOr(const char* name, const std::string& fallback) {
  return GetEnv(name).value_or(fallback);
}

std::string ReadLocalFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) throw NotFoundError(path + ": no such file");
    throw IOError(path + ": " + std::strerror(err));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IOError(path + ": read failed");
  return ss.str();
}

}  // namespace fruitpipe
