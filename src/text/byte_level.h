#pragma once
// GPT-2's byte-level alphabet (HF `ByteLevel` pre-tokenizer and decoder): every byte maps to one printable
// code point, so that BPE works on text that can hold any byte sequence.
#include <optional>
#include <string>
#include <string_view>

namespace hylora::text {

// The 256 UTF-8 strings that bytes 0..255 map to.
const std::string& byte_to_symbol(unsigned char b);

// `s` with every byte replaced by its symbol.
std::string bytes_to_symbols(std::string_view s);

// The bytes that a symbol string stands for, or nullopt when it holds a code point outside the alphabet
// (HF's decoder then keeps the token's own bytes).
std::optional<std::string> symbols_to_bytes(std::string_view s);

}  // namespace hylora::text
