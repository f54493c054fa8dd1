// Reading the process environment in one place, so tests can see what the program consults.
#pragma once

#include <optional>
#include <string>

namespace fruitpipe {

// The variable's value, or nullopt when unset or empty.
std::optional<std::string> GetEnv(const char* name);
std::string GetEnvOr(const char* name, const std::string& fallback);

// Reads a whole local file; throws NotFoundError / IOError naming the path.
std::string ReadLocalFile(const std::string& path);

}  // namespace fruitpipe
