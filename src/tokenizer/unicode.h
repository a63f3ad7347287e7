// UTF-8 and Unicode helpers shared by the tokenizers (categories and case come from utf8proc).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chassis {

// Length of the UTF-8 sequence introduced by lead byte c (1 for invalid lead bytes).
size_t utf8_len(uint8_t c);
// Decodes text into code points; invalid bytes become U+FFFD (never throws).
std::vector<uint32_t> utf8_decode(std::string_view text);
void utf8_append(std::string& out, uint32_t cp);
std::string utf8_encode(uint32_t cp);
// Number of bytes at the end of s that form an incomplete (so far valid) UTF-8 sequence.
size_t utf8_incomplete_tail(std::string_view s);
// Replaces invalid sequences with U+FFFD so the result is valid UTF-8.
std::string utf8_sanitize(std::string_view s);

// GPT-2's reversible byte <-> printable code point mapping used by byte-level BPE.
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the mapped code point
int unicode_to_byte(uint32_t cp);               // -1 if cp is not in the mapping

struct CodepointFlags {
  bool whitespace, letter, number, punctuation, symbol, control, mark;
};
CodepointFlags codepoint_flags(uint32_t cp);
uint32_t to_lower(uint32_t cp);
// First code point of the canonical decomposition (accent stripping as llama.cpp's WPM does).
uint32_t nfd_base(uint32_t cp);

}  // namespace chassis
