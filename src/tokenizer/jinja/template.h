// A parsed Jinja template and its renderer. Semantics follow jinja2 3.1 in the environment
// transformers uses for chat templates: ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True, extensions=[loopcontrols]) with transformers' tojson, raise_exception and
// strftime_now.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/jinja/value.h"

namespace chassis::jinja {

struct Program;

struct RenderLimits {
  size_t max_output_bytes = kMaxStringBytes;  // a hostile template cannot exhaust memory
  size_t max_steps = 2'000'000;         // statements + loop iterations: no endless render (~seconds)
  int max_call_depth = 100;             // macro recursion
};

class Template {
 public:
  // Throws TemplateError on a syntax error (message and line as jinja2 gives them).
  static Template parse(std::string_view source);
  // Renders with `variables` on top of the built-in globals. Throws TemplateError (with the line of
  // the failing statement) on a runtime error or raise_exception().
  std::string render(const Dict& variables, const RenderLimits& limits = {}) const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace chassis::jinja
