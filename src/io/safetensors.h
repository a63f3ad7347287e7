// safetensors reader and writer. The format: an 8-byte little-endian header length N, N bytes of
// JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}), then
// the tensor bytes, offsets relative to the end of the header. The reader enforces every rule of the
// reference implementation (Hugging Face's safetensors crate) plus a few of its own, so a hostile
// header gets an error naming the file and the fault, never an out-of-range read.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace chassis {

enum class SafetensorsDType { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };
const char* safetensors_dtype_name(SafetensorsDType t);
size_t safetensors_dtype_size(SafetensorsDType t);
// The engine's DType for the float types it computes with (F32, F16, BF16); nullopt for the others.
std::optional<DType> to_engine_dtype(SafetensorsDType t);

struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype;
  std::vector<int64_t> shape;  // PyTorch order: shape.back() is the fastest-varying dimension
  uint64_t begin = 0, end = 0; // byte range within the data section
  int64_t n_elements() const;
};

class SafetensorsFile {
 public:
  // Parses and validates the header; `label` (usually the path) prefixes every error message.
  // The bytes must outlive the SafetensorsFile.
  static SafetensorsFile parse(const uint8_t* data, size_t size, const std::string& label);

  const std::string& label() const { return label_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // in file order
  const SafetensorsTensor* find(const std::string& name) const;
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  const uint8_t* tensor_data(const SafetensorsTensor& t) const { return data_ + t.begin; }
  uint64_t data_offset() const { return data_offset_; }

 private:
  const uint8_t* data_ = nullptr;  // start of the data section
  std::string label_;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

struct SafetensorsWriteTensor {
  std::string name;
  SafetensorsDType dtype;
  std::vector<int64_t> shape;
  std::function<void(uint8_t* out)> fill;  // writes exactly n_elements * dtype size bytes
};

// Writes a file the reference implementation reads (tensors laid out in the given order, header
// padded to a multiple of 8 bytes). Written to PATH.tmp and renamed: a crash leaves no half file.
void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace chassis
