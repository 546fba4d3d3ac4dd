#pragma once
// Errors: every failure the user can cause is an hylora::Error whose message names the file, tensor or field,
// what was expected and what was found. The CLI prints it on one line; the server fails only that request/load.
#include <sstream>
#include <stdexcept>
#include <string>

namespace hylora {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// fail("tensor ", name, ": expected shape ", a, ", found ", b) -> throws Error with the concatenated message.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  throw Error(os.str());
}

#define HYLORA_CHECK(cond, ...)             \
  do {                                      \
    if (!(cond)) ::hylora::fail(__VA_ARGS__); \
  } while (0)

}  // namespace hylora
