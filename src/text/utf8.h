#pragma once
// UTF-8 helpers shared by the tokenizer and its CLI: turning arbitrary bytes into valid UTF-8 the way
// Python's bytes.decode("utf-8", errors="replace") and Rust's String::from_utf8_lossy do (one U+FFFD per
// maximal invalid subpart, Unicode 3.9 "substitution of maximal subparts"), and finding an incomplete
// sequence at the end of a buffer so that streaming decode never emits half a character.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hylora::text {

// True when `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

// `s` with every maximal invalid subpart replaced by U+FFFD; returns `s` unchanged when it is valid.
std::string to_valid_utf8(std::string_view s);

// Number of bytes at the end of `s` that start a valid but unfinished UTF-8 sequence (0..3).
std::size_t incomplete_utf8_tail(std::string_view s);

// Code points of valid UTF-8 text, and back (used by Python-style string slicing in templates).
std::u32string utf8_to_u32(std::string_view s);
std::string u32_to_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);

}  // namespace hylora::text
