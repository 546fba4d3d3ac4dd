#include "cli/jsonl_io.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

#include "core/json_limits.h"
#include "text/utf8.h"

namespace hylora::cli {

namespace {
int write_errno = 0;  // first write error of this process's stdout
}

bool LineReader::fill() {
  if (eof_) return false;
  pos_ = 0;
  end_ = std::fread(buf_.data(), 1, buf_.size(), in_);
  if (end_ == 0) eof_ = true;
  return end_ > 0;
}

bool LineReader::next(std::string& line, bool& too_long, int64_t& length) {
  line.clear();
  too_long = false;
  length = 0;
  bool any = false;
  while (true) {
    if (pos_ == end_ && !fill()) break;
    any = true;
    const char* start = buf_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
    const size_t n = nl ? static_cast<size_t>(nl - start) : end_ - pos_;
    length += static_cast<int64_t>(n);
    if (length > max_bytes_) {
      too_long = true;
      line.clear();
      line.shrink_to_fit();
    } else {
      line.append(start, n);
    }
    pos_ += n;
    if (nl) {
      ++pos_;
      break;
    }
  }
  if (!any) return false;
  ++line_no_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

std::string LineReader::too_long_error(int64_t length) const {
  return std::to_string(length) + " bytes is over the line limit of " + std::to_string(max_bytes_) +
         " bytes (--max-line-bytes)";
}

void add_max_line_bytes_option(CLI::App& app, int64_t& max_line_bytes, const std::string& line) {
  app.add_option("--max-line-bytes", max_line_bytes, "longest " + line + " line; longer lines get an error line")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
}

void require_directory(const std::string& flag, const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) fail(flag, " ", dir, ": directory does not exist");
  if (!std::filesystem::is_directory(dir, ec))
    fail(flag, " ", dir, ": is a file, expected a model directory (config.json, safetensors, tokenizer.json)");
}

bool write_out(const std::string& s) {
  if (write_errno) return false;
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size()) write_errno = errno ? errno : EIO;
  return write_errno == 0;
}

bool finish_output(const std::string& command) {
  if (!write_errno && std::fflush(stdout) != 0) write_errno = errno ? errno : EIO;
  if (!write_errno && std::ferror(stdout)) write_errno = EIO;
  if (!write_errno) return true;
  std::fprintf(stderr, "hylora %s: error: cannot write the output (%s)\n", command.c_str(), std::strerror(write_errno));
  return false;
}

int run_jsonl_loop(const std::string& command, int64_t max_line_bytes,
                   const std::function<nlohmann::ordered_json(const nlohmann::ordered_json&)>& handle) {
  LineReader reader(stdin, max_line_bytes);
  std::string line;
  bool too_long = false;
  int64_t length = 0;
  int rc = 0;
  while (reader.next(line, too_long, length)) {
    if (!too_long && line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::ordered_json result;
    try {
      if (too_long) fail(reader.too_long_error(length));
      // Invalid UTF-8 bytes become U+FFFD first (Python errors="replace"), as HF only receives decoded text; each
      // replaced byte may grow to 3, hence the size limit of 3 lines.
      result = handle(parse_json_bounded<nlohmann::ordered_json>(
          text::to_valid_utf8(line), {static_cast<size_t>(max_line_bytes) * 3, json_limits::kMaxDepth}, "request"));
    } catch (const std::exception& e) {
      const std::string msg = text::to_valid_utf8(e.what());
      std::fprintf(stderr, "hylora %s: line %lld: %s\n", command.c_str(), static_cast<long long>(reader.line_no()),
                   msg.c_str());
      result = nlohmann::ordered_json{{"error", msg}};
      rc = 1;
    }
    if (!write_out(json_line(result))) break;
  }
  if (!finish_output(command)) return 1;
  return rc;
}

}  // namespace hylora::cli
