// GGUF as a tensor source.
#include "io/tensor_source.h"

#include "io/gguf.h"

namespace chassis {

const std::string& GgufTensors::label() const { return f_.label(); }

std::optional<TensorRef> GgufTensors::find(const std::string& gguf_name) const {
  const GgufTensorInfo* t = f_.find_tensor(gguf_name);
  if (!t) return std::nullopt;
  return TensorRef{t->name, t->ne, t->type, f_.tensor_data(*t), t->n_bytes};
}

}  // namespace chassis
