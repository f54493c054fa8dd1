// UTF-8 validation. File names on Linux are arbitrary bytes, but Parquet string columns, JSON
// and S3 keys are UTF-8: a name that is not must be refused where it enters, not where a
// writer or serializer would throw on it.
#pragma once

#include <string_view>

namespace fruitpipe {

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF).
bool IsValidUtf8(std::string_view text);

}  // namespace fruitpipe
