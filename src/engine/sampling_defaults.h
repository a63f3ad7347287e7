// A model's own sampling recommendation: Hugging Face's generation_config.json, or the
// general.sampling.* keys llama.cpp's converter writes into GGUF from it. `chassis run` and the server
// use it where the user or the request leaves a setting unset.
#pragma once
#include <string>

#include "engine/sampler.h"

namespace chassis {

class GgufFile;
class GgufWriter;

// DIR/generation_config.json (absent: nothing recommended). do_sample false means greedy, as
// transformers' generate() reads it; temperature, top_k, top_p, min_p and repetition_penalty apply
// otherwise. Out-of-range values are an Error naming the file.
SamplingChoices read_generation_config_sampling(const std::string& dir);

SamplingChoices gguf_sampling(const GgufFile& f);
void add_gguf_sampling(GgufWriter& w, const SamplingChoices& s);

}  // namespace chassis
