// Builds the syntax tree of a Jinja template with jinja2's grammar and operator precedence.
#pragma once
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace chassis::jinja {

// Throws TemplateError (with jinja2's message and the line) on a syntax error, an unknown tag, or a
// filter/test jinja2 does not have (jinja2 rejects those when compiling, before rendering).
Body parse(const std::vector<Token>& tokens);

}  // namespace chassis::jinja
