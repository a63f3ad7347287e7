// chassis: run open-weight models locally. Entry point and subcommand dispatch.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"chassis — run open-weight models on your own machine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "chassis 0.1.0");
  auto* run = app.add_subcommand("run", "generate text from a prompt");
  auto* tok = app.add_subcommand("tokenize", "print the token ids of a text");
  auto* show = app.add_subcommand("show", "describe a model file");
  auto* bench = app.add_subcommand("bench", "measure prefill and decode speed");
  auto run_fn = chassis::cli::add_run(*run);
  auto tok_fn = chassis::cli::add_tokenize(*tok);
  auto show_fn = chassis::cli::add_show(*show);
  auto* tmpl = app.add_subcommand("template", "render a conversation with a model's chat template");
  auto bench_fn = chassis::cli::add_bench(*bench);
  auto tmpl_fn = chassis::cli::add_template(*tmpl);
  auto* quant = app.add_subcommand("quantize", "rewrite a GGUF's weights in another type (as llama-quantize)");
  auto quant_fn = chassis::cli::add_quantize(*quant);
  auto* serve = app.add_subcommand("serve", "serve models over an OpenAI-compatible HTTP API");
  auto serve_fn = chassis::cli::add_serve(*serve);
  auto* pull = app.add_subcommand("pull", "download a model from the Hugging Face hub into its cache");
  auto pull_fn = chassis::cli::add_pull(*pull);
  auto* list = app.add_subcommand("list", "list the models in the Hugging Face cache");
  auto list_fn = chassis::cli::add_list(*list);
  auto* rm = app.add_subcommand("rm", "remove a model from the Hugging Face cache");
  auto rm_fn = chassis::cli::add_rm(*rm);
  auto* conv = app.add_subcommand("convert", "write a Hugging Face folder as a GGUF file (as llama.cpp's converter)");
  auto conv_fn = chassis::cli::add_convert(*conv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (run->parsed()) return run_fn();
    if (tok->parsed()) return tok_fn();
    if (show->parsed()) return show_fn();
    if (bench->parsed()) return bench_fn();
    if (tmpl->parsed()) return tmpl_fn();
    if (quant->parsed()) return quant_fn();
    if (serve->parsed()) return serve_fn();
    if (pull->parsed()) return pull_fn();
    if (list->parsed()) return list_fn();
    if (rm->parsed()) return rm_fn();
    if (conv->parsed()) return conv_fn();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "chassis: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chassis: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
