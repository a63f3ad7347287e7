// The chat-template engine's behaviour on hostile input (the rendering itself is checked against
// Python jinja2 by tests/chat/compare_chat_templates.py): every bad template is an Error naming the
// template and line, never a crash, a hang or unbounded memory.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "engine/chat.h"
#include "engine/model.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/template.h"

namespace chassis {
namespace {

using jinja::Value;

std::string render(const std::string& source, const jinja::Dict& vars = {}) {
  return jinja::Template::parse(source).render(vars);
}

std::string error_of(const std::string& source) {
  try {
    ChatTemplate t(source, {}, "test.jinja");
    ChatRequest r;
    (void)t.apply(r);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// A namespace given itself, or one that holds it, as an attribute: a cycle of shared values that the
// renderer breaks when done (found by the fuzzer as a leak; the ASan run of this test checks it).
TEST(Jinja, NamespacesThatHoldThemselvesRenderAndAreFreed) {
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{% set other = namespace() %}"
                   "{% set other.ns = ns %}{% set ns.other = other %}{{ ns.me.a }}{{ ns.other.ns.me.a }}"),
            "11");
}

TEST(Jinja, ErrorsNameTheTemplateAndLine) {
  EXPECT_EQ(error_of("line 1\n{{ raise_exception('no system role, please') }}"),
            "test.jinja: chat template line 2: no system role, please");
  EXPECT_EQ(error_of("a\nb\n{% if x %}"),
            "test.jinja: chat template line 3: Unexpected end of template. Jinja was looking for the following tags: "
            "'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.");
  EXPECT_EQ(error_of("{{ x | nosuch }}"), "test.jinja: chat template line 1: No filter named 'nosuch'.");
  EXPECT_EQ(error_of("\n\n{{ messages.x.y }}"), "test.jinja: chat template line 3: 'list object' has no attribute 'x'");
}

TEST(Jinja, DeepNestingIsAnErrorNotAStackOverflow) {
  for (const std::string& source :
       {"{{ " + repeat("(", 20000) + "1" + repeat(")", 20000) + " }}", repeat("{% if true %}", 20000),
        "{{ x" + repeat(".a", 20000) + " }}", "{{ x" + repeat("|trim", 20000) + " }}",
        "{{ 1" + repeat("+1", 20000) + " }}", "{{ " + repeat("[", 20000) + repeat("]", 20000) + " }}",
        "{{ " + repeat("not ", 20000) + "x }}", "{{ " + repeat("-", 20000) + "1 }}"}) {
    std::string e = error_of(source);
    EXPECT_NE(e.find("too deep"), std::string::npos) << e;
  }
}

TEST(Jinja, RunawayRendersStop) {
  EXPECT_NE(error_of("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}").find("recursion"), std::string::npos);
  jinja::RenderLimits small;
  small.max_steps = 100000;
  try {
    jinja::Template::parse("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
        .render({}, small);
    ADD_FAILURE() << "an endless render finished";
  } catch (const jinja::TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("step limit"), std::string::npos) << e.what();
  }
  EXPECT_NE(error_of("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}"
                     "{% endfor %}")
                .find("longer than"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 1000000000 }}").find("too large"), std::string::npos);
  EXPECT_NE(error_of("{{ range(1000000) | length }}").find("Range too big"), std::string::npos);
  // Output doubling past the cap.
  EXPECT_NE(error_of("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                     "{% endfor %}{{ ns.s }}")
                .find("larger than"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 9223372036854775807 + 1 }}").find("overflow"), std::string::npos);
  EXPECT_NE(error_of("{{ 2 ** 64 }}").find("overflow"), std::string::npos);
}

TEST(Jinja, UnterminatedConstructsAreErrors) {
  for (const char* source : {"{{ 'abc", "{{ x", "{% if", "{# comment", "{% raw %}x", "{{ (1 }}", "{{ 1) }}",
                             "{{ '\\x4' }}", "{% for %}", "{% set %}", "{% macro %}", "{{ }}", "{% %}"}) {
    std::string e = error_of(source);
    EXPECT_NE(e.find("test.jinja: chat template"), std::string::npos) << source << " -> " << e;
  }
}

TEST(Jinja, InvalidUtf8InTemplateOrValuesDoesNotCrash) {
  jinja::Dict vars;
  vars.set("s", Value(std::string("\xff\xfe abc \xc3")));
  EXPECT_NO_THROW(render("{{ s | upper }}{{ s | length }}{{ s[1:] }}{{ s | tojson }}{{ s.split() }}", vars));
  EXPECT_NO_THROW(error_of(std::string("{{ '\xff' }}\xc3{% if true %}\xe2\x82{% endif %}")));
}

TEST(Jinja, SandboxForbidsMutationAndPrivateAttributes) {
  EXPECT_NE(error_of("{% set l = [] %}{{ l.append(1) }}").find("unsafe"), std::string::npos);
  EXPECT_NE(error_of("{{ ''.__class__.__mro__ }}").find("unsafe"), std::string::npos);
  EXPECT_EQ(render("{% set ns = namespace(n=1) %}{% set ns.n = ns.n + 1 %}{{ ns.n }}"), "2");
}

TEST(ChatTemplate, GgufTemplateGetsTheModelsSpecialTokens) {
  auto model = Model::load(test::shared("models/ggml-vocab/ggml-vocab-phi-3.gguf"), /*vocab_only=*/true);
  auto t = chat_template_of(*model);
  ASSERT_TRUE(t.has_value());
  ChatRequest r;
  jinja::Dict user;
  user.set("role", Value("user"));
  user.set("content", Value("Hi"));
  r.messages = Value::list({Value::dict(user)});
  std::string prompt = t->apply(r);
  EXPECT_NE(prompt.find("Hi"), std::string::npos);
  EXPECT_NE(prompt.find("<|user|>"), std::string::npos);
}

TEST(ChatTemplate, ModelWithoutTemplateSaysSo) {
  auto model = Model::load(test::shared("models/stories260K/stories260K.gguf"), /*vocab_only=*/true);
  EXPECT_FALSE(chat_template_of(*model).has_value());
}

TEST(ChatTemplate, HfFolderTemplateAndSpecialTokens) {
  auto t = chat_template_of_folder(test::shared("models/llama-3.2-instruct-tokenizer"));
  ASSERT_TRUE(t.has_value());
  ChatRequest r;
  jinja::Dict user;
  user.set("role", Value("user"));
  user.set("content", Value("Hi"));
  r.messages = Value::list({Value::dict(user)});
  std::string prompt = t->apply(r);
  EXPECT_EQ(prompt.rfind("<|begin_of_text|>", 0), 0u) << prompt;  // bos_token from the config
}

}  // namespace
}  // namespace chassis
