// One completion request in flight: its sequences (prompts × n choices) on one model's engine, the
// pump that waits on them while watching the client, and the OpenAI objects built from the results.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/connection.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/openai_api.h"

namespace chassis::server {

struct Job {
  std::shared_ptr<LoadedModel> lm;
  bool chat = false;
  std::string id;  // chatcmpl-… / cmpl-…
  int64_t created = 0;
  GenerationParams gen;
  std::vector<std::shared_ptr<Sequence>> seqs;  // one per choice
  std::vector<std::string> echo;                // completions: text put before each choice's output
  std::vector<size_t> prompt_of;                // choice -> prompt index
  std::vector<int64_t> prompt_tokens;           // per prompt
  std::vector<ChoiceResult> results;
  std::vector<bool> done;

  // Submits every prompt n times; throws HttpError (400 too long, 429 queue full).
  void submit(const std::vector<std::vector<int32_t>>& prompts);
  // Waits for events, calling on_event(choice, event) for each (a Finished event last per choice).
  // Returns false when the client went away or on_event refused (all sequences are then cancelled).
  bool pump(const ClientConnection& conn, const std::function<bool(size_t, const SequenceEvent&)>& on_event);
  void cancel();
  Usage usage() const;

  // Response objects.
  Json response() const;                                           // non-streamed body
  Json chunk(size_t choice, const SequenceEvent& ev, bool first);  // streamed chunk for an event
  Json usage_chunk() const;                                        // final chunk with usage (include_usage)
};

std::string new_request_id(const char* prefix);

}  // namespace chassis::server
