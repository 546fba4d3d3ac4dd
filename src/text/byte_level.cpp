#include "text/byte_level.h"

#include <array>
#include <vector>

#include "text/utf8.h"

namespace hylora::text {
namespace {

struct Tables {
  std::array<std::string, 256> symbol;
  std::vector<int> byte_of;  // code point -> byte, -1 when not in the alphabet
  Tables() : byte_of(512, -1) {
    // bytes_to_unicode() of GPT-2: printable Latin-1 bytes map to themselves, the rest to 256, 257, ...
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      int cp = printable ? b : next++;
      append_utf8(symbol[b], static_cast<char32_t>(cp));
      byte_of[cp] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_to_symbol(unsigned char b) { return tables().symbol[b]; }

std::string bytes_to_symbols(std::string_view s) {
  const auto& t = tables();
  std::string out;
  out.reserve(s.size() * 2);
  for (char c : s) out += t.symbol[static_cast<unsigned char>(c)];
  return out;
}

std::optional<std::string> symbols_to_bytes(std::string_view s) {
  const auto& t = tables();
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto b0 = static_cast<unsigned char>(s[i]);
    char32_t cp;
    if (b0 < 0x80) {
      cp = b0;
      i += 1;
    } else if ((b0 & 0xE0) == 0xC0 && i + 1 < s.size()) {
      cp = ((b0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return std::nullopt;  // 3- and 4-byte code points are all above the alphabet's range
    }
    if (cp >= t.byte_of.size() || t.byte_of[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.byte_of[cp]));
  }
  return out;
}

}  // namespace hylora::text
