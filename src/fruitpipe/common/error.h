// Errors: fruitpipe reports failures with exceptions, consistently. Every message is one
// line that names the input and the cause, so the CLI can print it verbatim and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace fruitpipe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An object, file or key that does not exist. Callers that probe (resume, incremental) catch it.
class NotFoundError : public Error {
 public:
  using Error::Error;
};

// Bad user input: arguments, configuration, a model card, a file in the wrong format.
class InvalidArgumentError : public Error {
 public:
  using Error::Error;
};

// Stored data that fails its own checks (bad magic, checksum, truncated file).
class CorruptionError : public Error {
 public:
  using Error::Error;
};

// The outside world failed (network, disk, remote service); may be retried by the caller.
class IOError : public Error {
 public:
  using Error::Error;
};

}  // namespace fruitpipe
