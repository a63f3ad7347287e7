#include "engine/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#include "core/error.h"

namespace chassis {
namespace {

class SentencePieceTokenizer : public TextTokenizer {
 public:
  SentencePieceTokenizer(const std::string& path, SentencePieceOptions options) : options_(std::move(options)) {
    const auto status = sp_.Load(path);
    if (!status.ok()) throw Error(path + ": not a SentencePiece model: " + status.ToString());
    // Control pieces (<s>, </s>, ...) and <unk> are what "special-token text" means for a
    // SentencePiece model (transformers' slow tokenizer matches exactly these).
    for (int id = 0; id < sp_.GetPieceSize(); ++id)
      if ((sp_.IsControl(id) || sp_.IsUnknown(id)) && !sp_.IdToPiece(id).empty()) specials_.push_back({sp_.IdToPiece(id), id});
    std::sort(specials_.begin(), specials_.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    if (sp_.eos_id() >= 0) options_.eog.insert(sp_.eos_id());
  }

  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> out;
    if (add_special && options_.add_bos && sp_.bos_id() >= 0) out.push_back(sp_.bos_id());
    size_t start = 0, i = 0;
    bool after_special = false;
    auto flush = [&](size_t end) {
      if (end <= start) return;
      std::string segment(text.substr(start, end - start));
      // After a special token transformers' Llama tokenizers add no dummy-prefix space of their own:
      // a leading space becomes the prefix, and a lone prefix piece is dropped.
      const bool drop_prefix = after_special && segment[0] != ' ';
      if (after_special && segment[0] == ' ') segment.erase(0, 1);
      std::vector<int> ids;
      const auto status = sp_.Encode(segment, &ids);
      if (!status.ok()) throw Error("SentencePiece could not encode the text: " + status.ToString());
      auto first = ids.begin();
      if (drop_prefix && first != ids.end() && sp_.IdToPiece(*first) == "\xE2\x96\x81") ++first;
      out.insert(out.end(), first, ids.end());
    };
    while (parse_special && i < text.size()) {
      const auto match = std::find_if(specials_.begin(), specials_.end(),
                                      [&](const auto& s) { return text.compare(i, s.first.size(), s.first) == 0; });
      if (match == specials_.end()) {
        ++i;
        continue;
      }
      // Spaces right before a special token are dropped (as transformers' tokenizer.json files do).
      size_t left_end = i;
      while (left_end > start && text[left_end - 1] == ' ') --left_end;
      flush(left_end);
      out.push_back(match->second);
      i += match->first.size();
      start = i;
      after_special = true;
    }
    flush(text.size());
    if (add_special && options_.add_eos && sp_.eos_id() >= 0) out.push_back(sp_.eos_id());
    return out;
  }

  std::string token_to_piece(int32_t id) const override {
    if (id < 0 || id >= sp_.GetPieceSize() || sp_.IsControl(id)) return "";
    const std::string piece = sp_.IdToPiece(id);
    if (sp_.IsByte(id)) {  // <0xAB>
      unsigned byte = 0;
      if (std::sscanf(piece.c_str(), "<0x%2X>", &byte) == 1) return std::string(1, char(byte));
      return "";
    }
    if (sp_.IsUnknown(id)) return piece;
    std::string text;
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {  // U+2581, SentencePiece's space
        text += ' ';
        i += 3;
      } else {
        text += piece[i++];
      }
    }
    return text;
  }

  void add_eog(const std::set<int32_t>& ids) { options_.eog.insert(ids.begin(), ids.end()); }
  bool is_eog(int32_t id) const override { return options_.eog.count(id) != 0; }
  int32_t n_tokens() const override { return sp_.GetPieceSize(); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
  SentencePieceOptions options_;
  std::vector<std::pair<std::string, int32_t>> specials_;  // longest first
};

}  // namespace

std::unique_ptr<TextTokenizer> load_sentencepiece_tokenizer(
    const std::string& path, const SentencePieceOptions& options,
    const std::function<std::set<int32_t>(const TextTokenizer&)>& extra_eog) {
  auto t = std::make_unique<SentencePieceTokenizer>(path, options);
  if (extra_eog) t->add_eog(extra_eog(*t));
  return t;
}

// Read from the protobuf's wire format directly: two scalar fields, and Debian ships no generated
// header for SentencePiece's .proto.
SentencePieceSpec read_sentencepiece_spec(const std::string& bytes, const std::string& label) {
  SentencePieceSpec spec;
  auto fail = [&]() -> Error { return Error(label + ": not a SentencePiece model (malformed protobuf)"); };
  auto varint = [&](size_t& at, size_t end) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= end) throw fail();
      const uint8_t b = uint8_t(bytes[at++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw fail();
  };
  // Walks the fields of [at, end), calling on(field, wire type, value or length, offset of the payload).
  std::function<void(size_t, size_t, const std::function<void(uint64_t, int, uint64_t, size_t)>&)> walk =
      [&](size_t at, size_t end, const std::function<void(uint64_t, int, uint64_t, size_t)>& on) {
        while (at < end) {
          const uint64_t key = varint(at, end);
          const int wire = int(key & 7);
          uint64_t value = 0;
          const size_t payload = at;
          if (wire == 0) value = varint(at, end);
          else if (wire == 1) at += 8;
          else if (wire == 5) at += 4;
          else if (wire == 2) {
            value = varint(at, end);
            if (value > end - at) throw fail();
            on(key >> 3, wire, value, at);
            at += value;
            continue;
          } else {
            throw fail();
          }
          if (at > end) throw fail();
          on(key >> 3, wire, value, payload);
        }
      };
  walk(0, bytes.size(), [&](uint64_t field, int wire, uint64_t len, size_t at) {
    if (wire != 2 || (field != 2 && field != 3)) return;
    walk(at, at + len, [&](uint64_t f, int w, uint64_t v, size_t) {
      if (w != 0 || f != 3) return;
      if (field == 2) spec.model_type = int(v);          // TrainerSpec.model_type
      else spec.add_dummy_prefix = v != 0;               // NormalizerSpec.add_dummy_prefix
    });
  });
  return spec;
}


}  // namespace chassis
