// jinja2's built-in filters, tests and globals, the Python methods templates call on str/dict/list,
// and the attribute rules of jinja2's ImmutableSandboxedEnvironment (no mutation, no private names).
#pragma once
#include <functional>
#include <string>

#include "tokenizer/jinja/value.h"

namespace chassis::jinja {

bool has_filter(const std::string& name);
bool has_test(const std::string& name);

// `caller` lets filters such as map/select apply other filters and tests by name.
Value apply_filter(const std::string& name, const Value& operand, CallArgs& args);
bool apply_test(const std::string& name, const Value& operand, CallArgs& args);

// obj.name: a Python method or attribute first, then obj[name] (jinja2's getattr order); missing
// gives Undefined with jinja2's hint. Throws for Undefined obj and for the mutating methods the
// immutable sandbox forbids.
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: obj[key] first, then the attribute (jinja2's getitem order).
Value get_item(const Value& obj, const Value& key);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python's iteration: list/tuple items, dict keys, string characters; Undefined is empty.
List iterate(const Value& v);

// The globals every chat template sees: range, dict, namespace, raise_exception, strftime_now.
void add_globals(Dict& globals);

// Python's `%` string formatting for the conversions templates use (%s %r %d %i %f %%).
std::string percent_format(const std::string& format, const Value& args);

}  // namespace chassis::jinja
