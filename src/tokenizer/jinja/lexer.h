// Splits a Jinja template into text and tag tokens exactly as jinja2's lexer does with the options
// transformers uses for chat templates (trim_blocks, lstrip_blocks, keep_trailing_newline off), so the
// whitespace of a rendered prompt matches Hugging Face byte for byte.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chassis::jinja {

struct Token {
  enum class Kind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End };
  Kind kind;
  std::string text;  // Text: the data; Name/Operator: the spelling; String: the decoded value
  int line = 1;
  int64_t integer = 0;
  double number = 0;
};

// Throws TemplateError (with the line) on an unclosed tag, comment or string, or an unexpected character.
std::vector<Token> tokenize(std::string_view source);

}  // namespace chassis::jinja
