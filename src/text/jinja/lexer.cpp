// Hand-written (no C++ Jinja library in Debian): follows jinja2/lexer.py for the parts that decide output
// whitespace, so that templates render byte-for-byte as in transformers.
#include "text/jinja/lexer.h"

#include <cctype>

#include "core/error.h"
#include "text/utf8.h"

namespace hylora::text::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

class Lexer {
 public:
  explicit Lexer(const std::string& src) : s_(src) {}

  std::vector<Token> run() {
    std::size_t text_start = 0;
    bool lstrip_next_text = false;  // previous tag ended with '-'
    while (true) {
      std::size_t open = find_open(text_start);
      std::string text = s_.substr(text_start, (open == std::string::npos ? s_.size() : open) - text_start);
      if (lstrip_next_text) {
        std::size_t k = 0;
        while (k < text.size() && is_space(text[k])) ++k;
        text.erase(0, k);
      }
      if (open == std::string::npos) {
        emit_text(text);
        break;
      }
      char kind = s_[open + 1];  // '{', '%' or '#'
      std::size_t p = open + 2;
      char sign = p < s_.size() && (s_[p] == '-' || s_[p] == '+') ? s_[p] : 0;
      if (sign) ++p;
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: drop spaces/tabs between the start of the line and a block or comment tag.
        std::size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        bool line_starting = text_start == 0 || s_[text_start - 1] == '\n';
        if ((l_pos > 0 || line_starting) && text.find_first_not_of(" \t", l_pos) == std::string::npos)
          text.erase(l_pos);
      }
      emit_text(text);
      line_ = line_at(open);
      std::size_t end;
      bool strip_after = false;
      if (kind == '#') {
        end = s_.find("#}", p);
        if (end == std::string::npos) fail_at(line_, "unclosed comment");
        strip_after = end > p && s_[end - 1] == '-';
        bool keep = end > p && s_[end - 1] == '+';
        end += 2;
        if (!strip_after && !keep && end < s_.size() && s_[end] == '\n') ++end;  // trim_blocks
      } else {
        out_.push_back({kind == '{' ? Token::Kind::VarBegin : Token::Kind::BlockBegin, "", line_});
        const char* close = kind == '{' ? "}}" : "%}";
        end = lex_tag(p, close, strip_after);
        out_.push_back({kind == '{' ? Token::Kind::VarEnd : Token::Kind::BlockEnd, "", line_});
        if (kind == '%' && !strip_after && !keep_newline_ && end < s_.size() && s_[end] == '\n') ++end;
      }
      lstrip_next_text = strip_after;
      text_start = end;
    }
    out_.push_back({Token::Kind::End, "", line_at(s_.size())});
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail_at(int line, const std::string& what) {
    hylora::fail("chat template line ", line, ": ", what);
  }

  int line_at(std::size_t pos) const {
    int line = 1;
    for (std::size_t i = 0; i < pos && i < s_.size(); ++i) line += s_[i] == '\n';
    return line;
  }

  std::size_t find_open(std::size_t from) const {
    for (std::size_t i = s_.find('{', from); i != std::string::npos; i = s_.find('{', i + 1))
      if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  void emit_text(const std::string& text) {
    if (!text.empty()) out_.push_back({Token::Kind::Text, text, line_});
  }

  // Tokenizes tag contents from `p` up to the closing delimiter; returns the position after it.
  std::size_t lex_tag(std::size_t p, const char* close, bool& strip_after) {
    keep_newline_ = false;
    while (true) {
      while (p < s_.size() && is_space(s_[p])) {
        if (s_[p] == '\n') ++line_;
        ++p;
      }
      if (p >= s_.size()) fail_at(line_, std::string("missing '") + close + "'");
      if (s_.compare(p, 2, close) == 0) return p + 2;
      if ((s_[p] == '-' || s_[p] == '+') && s_.compare(p + 1, 2, close) == 0) {
        strip_after = s_[p] == '-';
        keep_newline_ = s_[p] == '+';
        return p + 3;
      }
      char c = s_[p];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t b = p;
        while (p < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p])) || s_[p] == '_')) ++p;
        out_.push_back({Token::Kind::Name, s_.substr(b, p - b), line_});
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        std::size_t b = p;
        bool is_float = false;
        while (p < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[p])) || s_[p] == '_')) ++p;
        if (p + 1 < s_.size() && s_[p] == '.' && std::isdigit(static_cast<unsigned char>(s_[p + 1]))) {
          is_float = true;
          ++p;
          while (p < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p]))) ++p;
        }
        if (p < s_.size() && (s_[p] == 'e' || s_[p] == 'E')) {
          std::size_t q = p + 1;
          if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
          if (q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q]))) {
            is_float = true;
            p = q;
            while (p < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p]))) ++p;
          }
        }
        std::string num;
        for (std::size_t i = b; i < p; ++i)
          if (s_[i] != '_') num += s_[i];
        out_.push_back({is_float ? Token::Kind::Float : Token::Kind::Int, num, line_});
      } else if (c == '"' || c == '\'') {
        out_.push_back({Token::Kind::String, lex_string(p), line_});
      } else {
        static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="};
        bool found = false;
        for (const char* op : ops) {
          std::size_t n = std::char_traits<char>::length(op);
          if (s_.compare(p, n, op) == 0) {
            out_.push_back({Token::Kind::Op, op, line_});
            p += n;
            found = true;
            break;
          }
        }
        if (!found) fail_at(line_, std::string("unexpected character '") + c + "' in tag");
      }
    }
  }

  // A quoted string with Python escapes (Jinja decodes literals with "unicode-escape").
  std::string lex_string(std::size_t& p) {
    char q = s_[p++];
    std::string out;
    while (true) {
      if (p >= s_.size()) fail_at(line_, "unterminated string literal");
      char c = s_[p++];
      if (c == q) return out;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p >= s_.size()) fail_at(line_, "unterminated string literal");
      char e = s_[p++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': ++line_; break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (p + n > s_.size()) fail_at(line_, "truncated \\" + std::string(1, e) + " escape");
          char32_t cp = 0;
          for (std::size_t k = 0; k < n; ++k) {
            const char h = s_[p + k];
            const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) fail_at(line_, "invalid \\" + std::string(1, e) + " escape (expected " + std::to_string(n) +
                                          " hex digits)");
            cp = cp * 16 + static_cast<char32_t>(d);
          }
          // Python refuses code points past U+10FFFF; a lone surrogate could not be written as UTF-8 either.
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            fail_at(line_, "\\" + std::string(1, e) + " escape is not a Unicode scalar value");
          p += n;
          append_utf8(out, cp);
          break;
        }
        default:  // unknown escapes stay as written, as in Python
          out += '\\';
          out += e;
      }
    }
  }

  const std::string& s_;
  std::vector<Token> out_;
  int line_ = 1;
  bool keep_newline_ = false;
};

}  // namespace

std::vector<Token> tokenize_template(const std::string& source) { return Lexer(source).run(); }

}  // namespace hylora::text::jinja
