#pragma once
// JSONL on stdin and stdout for the CLI commands, bounded and checked: a line longer than the limit is read past
// (never held) and reported on its own; output goes through stdio and every write error (a full disk, a closed
// pipe) becomes a non-zero exit instead of lost results.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}

namespace hylora::cli {

// Default longest input line (bytes): a request of ~1M token ids, or a long chat.
inline constexpr int64_t kDefaultMaxLineBytes = int64_t{16} << 20;

class LineReader {
 public:
  LineReader(std::FILE* in, int64_t max_bytes) : in_(in), max_bytes_(max_bytes), buf_(1 << 16) {}
  // Next line without its "\n" (and "\r"); false at the end of input. A line over the limit comes back empty with
  // `too_long` set and `length` its full length; its bytes are skipped, not stored.
  bool next(std::string& line, bool& too_long, int64_t& length);
  int64_t line_no() const { return line_no_; }
  // The one-line error for a line over the limit (without the line number).
  std::string too_long_error(int64_t length) const;

 private:
  bool fill();
  std::FILE* in_;
  int64_t max_bytes_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  int64_t line_no_ = 0;
};

// --max-line-bytes of the JSONL commands, into max_line_bytes (1 B .. 1 GiB): the longest input line (`line`: what a
// line holds, e.g. "input", "request"); a longer one gets an error line of its own.
void add_max_line_bytes_option(CLI::App& app, int64_t& max_line_bytes, const std::string& line = "input");

// Fails with a clear message when `dir` (given as `flag`) is not a directory: a file given as --model is not
// "missing".
void require_directory(const std::string& flag, const std::string& dir);

// One JSON value as one output line; invalid UTF-8 inside strings (an error message quoting input) is replaced by
// U+FFFD instead of throwing.
template <typename J>
std::string json_line(const J& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// Writes `s` to stdout; false once any write failed (the error is kept for finish_output).
bool write_out(const std::string& s);
// Flushes stdout; on any write error prints "hylora <command>: error: cannot write the output (...)" on stderr and
// returns false.
bool finish_output(const std::string& command);

// A JSONL loop for tokenize and chat-template: calls `handle` on each non-blank line (parsed under the request
// JSON limits after lossy UTF-8 repair, keeping key order) and prints what it returns; a line whose read, parse or
// handler fails gets {"error": ...} and a message on stderr. Returns the exit code: 0, or 1 when a line or a write
// failed.
int run_jsonl_loop(const std::string& command, int64_t max_line_bytes,
                   const std::function<nlohmann::ordered_json(const nlohmann::ordered_json&)>& handle);

}  // namespace hylora::cli
