#include "text/pre_tokenizer.h"

#include "core/error.h"
#include "text/byte_level.h"
#include "text/regex.h"

namespace hylora::text {
namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& s) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  hylora::fail("tokenizer.json: Split pre_tokenizer: unknown behavior '", s, "'");
}

// Splits one piece at the regex matches, the way HF's NormalizedString::split does for each behavior.
void split_piece(const Regex& re, Behavior behavior, bool invert, const std::string& piece,
                 std::vector<std::string>& out) {
  struct Part {
    std::size_t b, e;
    bool match;
  };
  std::vector<Part> parts;
  std::size_t prev = 0;
  for (auto [b, e] : re.find_all(piece)) {
    if (b > prev) parts.push_back({prev, b, invert});
    parts.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < piece.size()) parts.push_back({prev, piece.size(), invert});

  auto text = [&](const Part& p) { return piece.substr(p.b, p.e - p.b); };
  switch (behavior) {
    case Behavior::Isolated:
      for (const auto& p : parts) out.push_back(text(p));
      break;
    case Behavior::Removed:
      for (const auto& p : parts)
        if (!p.match) out.push_back(text(p));
      break;
    case Behavior::Contiguous: {
      bool last_match = false;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i > 0 && parts[i].match && last_match)
          out.back() += text(parts[i]);
        else
          out.push_back(text(parts[i]));
        last_match = parts[i].match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      // A match joins the part before it unless that part is itself a match (HF's fold, verbatim).
      std::vector<std::pair<std::size_t, std::size_t>> acc;
      bool previous_match = false;
      for (const auto& p : parts) {
        if (p.match && !previous_match && !acc.empty())
          acc.back().second = p.e;
        else
          acc.emplace_back(p.b, p.e);
        previous_match = p.match;
      }
      for (auto [b, e] : acc) out.push_back(piece.substr(b, e - b));
      break;
    }
    case Behavior::MergedWithNext: {
      // Mirror image: walking backwards, a match joins the part after it unless that one is a match.
      std::vector<std::pair<std::size_t, std::size_t>> acc;
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->match && !previous_match && !acc.empty())
          acc.back().first = it->b;
        else
          acc.emplace_back(it->b, it->e);
        previous_match = it->match;
      }
      for (auto it = acc.rbegin(); it != acc.rend(); ++it) out.push_back(piece.substr(it->first, it->second - it->first));
      break;
    }
  }
}

class Split : public PreTokenizer {
 public:
  Split(const std::string& pattern, bool literal, Behavior behavior, bool invert)
      : re_(pattern, literal, "tokenizer.json: Split pre_tokenizer"), behavior_(behavior), invert_(invert) {}
  void split(std::vector<std::string>& pieces) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size() * 2);
    for (const auto& p : pieces) split_piece(re_, behavior_, invert_, p, out);
    pieces = std::move(out);
  }

 private:
  Regex re_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's pattern, used by ByteLevel when use_regex is true.
const char* kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) re_ = std::make_unique<Regex>(kGpt2Pattern, false, "tokenizer.json: ByteLevel pre_tokenizer");
  }
  void split(std::vector<std::string>& pieces) const override {
    std::vector<std::string> words;
    words.reserve(pieces.size());
    for (auto& p : pieces) {
      if (add_prefix_space_ && (p.empty() || p[0] != ' ')) p.insert(p.begin(), ' ');
      if (re_)
        split_piece(*re_, Behavior::Isolated, false, p, words);
      else
        words.push_back(std::move(p));
    }
    for (auto& w : words) w = bytes_to_symbols(w);
    pieces = std::move(words);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
};

class Sequence : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void split(std::vector<std::string>& pieces) const override {
    for (const auto& p : parts_) p->split(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& p : j.at("pretokenizers"))
      if (auto t = from_json(p)) parts.push_back(std::move(t));
    return std::make_unique<Sequence>(std::move(parts));
  }
  if (type == "Split") {
    const auto& pat = j.at("pattern");
    bool literal = pat.contains("String");
    if (!literal && !pat.contains("Regex"))
      hylora::fail("tokenizer.json: Split pre_tokenizer: expected pattern {\"Regex\": ...} or {\"String\": ...}, found ",
                   pat.dump());
    return std::make_unique<Split>(pat.at(literal ? "String" : "Regex").get<std::string>(), literal,
                                   parse_behavior(j.value("behavior", "Isolated")), j.value("invert", false));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevel>(j.value("add_prefix_space", false), j.value("use_regex", true));
  if (type == "Digits") {
    bool individual = j.value("individual_digits", false);
    return std::make_unique<Split>(individual ? "\\p{N}" : "\\p{N}+", false, Behavior::Isolated, false);
  }
  hylora::fail("tokenizer.json: pre_tokenizer: expected type Split, ByteLevel, Digits or Sequence, found '", type,
               "'");
}

}  // namespace hylora::text
