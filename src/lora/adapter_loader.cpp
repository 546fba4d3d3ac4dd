#include "lora/adapter_loader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>

#include "io/safetensors.h"
#include "lora/adapter_config.h"

namespace hylora::lora {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
std::string leaf_of(const std::string& path) { return path.substr(path.rfind('.') + 1); }
std::string parent_of(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

// Pre-fused spellings of other engines/trainers: one A shared by every part, B rows = the parts in order.
const std::map<std::string, std::vector<std::string>>& fused_spellings() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"qkv_proj", {"q_proj", "k_proj", "v_proj"}},
      {"gate_up_proj", {"gate_proj", "up_proj"}},
      {"in_proj_qkvz", {"in_proj_qkv", "in_proj_z"}},  // Qwen3.5 order [q|k|v|z]
  };
  return m;
}
// Mixtral-style per-expert names.
std::string canonical_expert_leaf(const std::string& leaf) {
  if (leaf == "w1") return "gate_proj";
  if (leaf == "w3") return "up_proj";
  if (leaf == "w2") return "down_proj";
  return leaf;
}

// A part of one key's factors landing on rows [row_offset, row_offset + rows) of one slice.
struct Piece {
  enum Kind { kLinear, kExpert, kEmbedding } kind = kLinear;
  int32_t target = -1;
  int32_t slice = 0;
  int64_t expert = -1;      // per-expert key: that expert only; -1 = every expert (or not an expert target)
  int64_t row_offset = 0;   // first row of the slice that B writes
  int64_t rank = 0;
  Tensor A;                 // [rank, in]; all-expert pieces [E, rank, in]
  Tensor B;                 // [rows, rank]; all-expert pieces [E, rows, rank]; scaling folded in
  std::string key;          // the adapter tensor it came from
};

struct Pair {
  std::string raw;    // module path as stored (after base_model.model.), for rank/alpha patterns
  std::string canon;  // module path in the model's names
  std::string a_key, b_key;
  bool embedding = false;
};

class Loader {
 public:
  Loader(const std::string& name, const std::string& dir, const TargetIndex& index, int64_t max_rank)
      : name_(name), dir_(dir), index_(index), max_rank_(max_rank), cfg_(read_adapter_config(name, dir)) {}

  std::shared_ptr<NormalizedAdapter> run() {
    open_weights();
    collect_keys();
    for (auto& [_, p] : pairs_) resolve(p);
    for (auto& [key, canon] : replacements_) replacement(key, canon);
    auto out = std::make_shared<NormalizedAdapter>();
    out->name = name_;
    out->dir = dir_;
    assemble(*out);
    out->linear_deltas = std::move(deltas_);
    out->embedding_delta = embedding_delta_;
    out->deltas_are_replacements = !index_.holds_whole_weights();
    if (out->linears.empty() && out->experts.empty() && out->embedding.empty() && out->linear_deltas.empty() &&
        !out->embedding_delta.defined())
      fail(who(), ": the adapter touches no module that hylora serves for this ", index_.model().architecture(),
           " model (", ckpt_.tensors().size(), " tensor(s) in ", ckpt_.where(), ", ", skipped_,
           " of them for unserved modules)");
    if (skipped_ > 0)
      out->warnings.push_back(who() + ": skipped " + std::to_string(skipped_) +
                              " tensor(s) of modules hylora does not serve (e.g. " + skipped_example_ + ")");
    return out;
  }

 private:
  std::string who() const { return "adapter \"" + name_ + "\""; }

  void open_weights() {
    namespace fs = std::filesystem;
    const fs::path st = fs::path(dir_) / "adapter_model.safetensors";
    if (!fs::exists(st)) {
      const fs::path bin = fs::path(dir_) / "adapter_model.bin";
      if (fs::exists(bin))
        fail(who(), ": ", bin.string(), " is a pickle file; hylora reads only safetensors (pickle can run code). "
             "Convert it with: python -c \"import torch; from safetensors.torch import save_file; "
             "save_file(torch.load('adapter_model.bin', map_location='cpu'), 'adapter_model.safetensors')\"");
      fail(who(), ": weights file ", st.string(), " is missing");
    }
    try {
      ckpt_ = Checkpoint::open_file(st.string());
    } catch (const Error& e) {
      fail(who(), ": ", e.what());
    }
  }

  bool unserved(const std::string& path) const {
    for (auto& p : index_.model().unserved_prefixes())
      if (starts_with(path, p)) return true;
    return false;
  }
  std::string canonical(const std::string& raw) const {
    for (auto& [from, to] : index_.model().adapter_prefix_aliases())
      if (starts_with(raw, from)) return to + raw.substr(from.size());
    return raw;
  }

  void collect_keys() {
    const std::string peft_prefix = "base_model.model.";
    for (auto& [key, _] : ckpt_.tensors()) {
      const std::string raw = starts_with(key, peft_prefix) ? key.substr(peft_prefix.size()) : key;
      const std::string canon = canonical(raw);
      if (unserved(raw) || unserved(canon)) {
        if (skipped_++ == 0) skipped_example_ = key;
        continue;
      }
      if (key.find("lora_magnitude_vector") != std::string::npos)
        fail(who(), ": tensor ", key, " is a DoRA magnitude vector; DoRA is not supported");
      if (key.find("trainable_tokens") != std::string::npos)
        fail(who(), ": tensor ", key, " holds added/trainable tokens, which are not supported");
      if (ends_with(key, ".lora_B.bias") || ends_with(key, ".lora_A.bias"))
        fail(who(), ": tensor ", key, " is a LoRA bias (lora_bias); it is not supported");
      auto module_of = [&](const std::string& s, const std::string& suffix) {
        return s.substr(0, s.size() - suffix.size());
      };
      bool handled = false;
      for (auto [suffix, is_a, emb] : {std::tuple{".lora_A.weight", true, false},
                                       std::tuple{".lora_B.weight", false, false},
                                       std::tuple{".lora_embedding_A", true, true},
                                       std::tuple{".lora_embedding_B", false, true}}) {
        if (!ends_with(key, suffix)) continue;
        const std::string cm = module_of(canon, suffix);
        Pair& p = pairs_[(emb ? "E:" : "L:") + cm];
        p.raw = module_of(raw, suffix);
        p.canon = cm;
        p.embedding = emb;
        (is_a ? p.a_key : p.b_key) = key;
        handled = true;
        break;
      }
      if (handled) continue;
      if (ends_with(key, ".bias"))
        fail(who(), ": tensor ", key, " is a trained bias (bias=\"all\"/\"lora_only\"); replacing biases is not "
             "supported");
      if (ends_with(key, ".weight")) {
        std::string m = module_of(canon, ".weight");
        if (ends_with(m, ".base_layer")) m = module_of(m, ".base_layer");
        replacements_.emplace_back(key, m);
        continue;
      }
      fail(who(), ": tensor ", key, " maps to no module of this ", index_.model().architecture(),
           " model (maybe the wrong base model?)");
    }
    for (auto& [_, p] : pairs_) {
      if (const std::string why = cfg_.why_not_selected(p.raw); !why.empty())
        fail(who(), ": tensor ", p.a_key.empty() ? p.b_key : p.a_key, " is for a module its adapter_config.json "
             "does not select: ", why);
      if (p.a_key.empty())
        fail(who(), ": tensor ", p.b_key, " has no matching lora_A (", p.embedding ? "lora_embedding_A" : "lora_A",
             " of module ", p.raw, " is missing)");
      if (p.b_key.empty())
        fail(who(), ": tensor ", p.a_key, " has no matching lora_B (", p.embedding ? "lora_embedding_B" : "lora_B",
             " of module ", p.raw, " is missing)");
    }
  }

  Tensor read(const std::string& key) {
    Tensor t = tensor_to_f32(ckpt_.info(key));
    const float* p = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i]))
        fail(who(), ": tensor ", key, " contains ", std::isnan(p[i]) ? "NaN" : "Inf", " (at flat index ", i,
             "); expected finite values");
    return t;
  }

  // PEFT rank of the module or parameter `scale_key`, checked against the tensor and --max-lora-rank.
  void check_rank(const std::string& key, const std::string& scale_key, int64_t tensor_rank) {
    std::string pattern;
    const int64_t r = cfg_.rank_for(scale_key, &pattern);
    const std::string source = pattern.empty() ? "r" : "rank_pattern[\"" + pattern + "\"]";
    if (r > max_rank_)
      fail(who(), ": module ", scale_key, " has rank ", r, " (", source, " in adapter_config.json), above "
           "--max-lora-rank ", max_rank_, "; restart with --max-lora-rank ", r, " or more");
    if (tensor_rank != r)
      fail(who(), ": tensor ", key, " has rank ", tensor_rank, ", but adapter_config.json gives rank ", r, " (",
           source, ") for ", scale_key);
  }

  void expect_shape(const std::string& key, const Tensor& t, const Shape& expected, const std::string& what) {
    if (t.shape() != expected)
      fail(who(), ": tensor ", key, " has shape ", shape_str(t.shape()), ", expected ", shape_str(expected), " (",
           what, ")");
  }

  void scale(Tensor& B, double s) {
    float* p = B.f32();
    for (int64_t i = 0; i < B.numel(); ++i) p[i] = static_cast<float>(p[i] * s);
    require_finite(B, s);
  }
  // A finite lora_B times a finite scaling can still overflow float32 (lora_alpha 1e308): refused at load, since
  // it would only show as NaN log-probabilities later.
  void require_finite(const Tensor& B, double s) {
    const float* p = B.f32();
    for (int64_t i = 0; i < B.numel(); ++i)
      if (!std::isfinite(p[i]))
        fail(who(), ": lora_B × scaling (", s, ") is not finite in float32 (flat index ", i,
             "); lora_alpha / rank in adapter_config.json is too large for these weights");
  }

  // Rows [from, from + n) of a 2-D tensor, copied.
  static Tensor row_range(const Tensor& t, int64_t from, int64_t n) { return t.rows(from, from + n).clone(); }

  void resolve(const Pair& p) {
    Tensor A = read(p.a_key), B = read(p.b_key);
    if (A.ndim() != 2 || B.ndim() != 2)
      fail(who(), ": tensors ", p.a_key, " ", shape_str(A.shape()), " and ", p.b_key, " ", shape_str(B.shape()),
           " must both be 2-D");
    if (p.embedding) return resolve_embedding(p, A, B);
    if (const auto* s = index_.linear_slice(p.canon)) {
      // A 2-D target_parameters entry (a router `gate.weight`) is scaled by its parameter path.
      const std::string sk = cfg_.targets_parameter(p.raw + ".weight") ? p.raw + ".weight" : p.raw;
      return add_linear_parts(p, sk, A, B, {*s});
    }
    const std::string leaf = leaf_of(p.canon), parent = parent_of(p.canon);
    if (auto it = fused_spellings().find(leaf); it != fused_spellings().end()) {
      std::vector<TargetIndex::SliceRef> parts;
      for (auto& part : it->second)
        if (const auto* s = index_.linear_slice(parent + "." + part)) parts.push_back(*s);
      if (parts.size() == it->second.size()) return add_linear_parts(p, p.raw, A, B, parts);
    }
    if (leaf == "in_proj_q" || leaf == "in_proj_k" || leaf == "in_proj_v")
      if (const auto* s = index_.linear_slice(parent + ".in_proj_qkv")) return add_qkv_part(p, A, B, *s);
    static const std::regex fused_experts(R"(^(.*\.experts)((?:\.base_layer)*)$)");
    static const std::regex per_expert(R"(^(.*\.experts)\.(\d+)\.([A-Za-z0-9_]+)$)");
    std::smatch m;
    if (std::regex_match(p.canon, m, fused_experts) && index_.experts_of(m[1].str()))
      return add_fused_experts(p, m[1].str(), m[2].length() / static_cast<int64_t>(std::string(".base_layer").size()),
                               A, B);
    if (std::regex_match(p.canon, m, per_expert)) {
      const std::string module = m[1].str() + "." + canonical_expert_leaf(m[3].str());
      if (const auto* s = index_.expert_slice(module)) return add_per_expert(p, std::stoll(m[2].str()), *s, A, B);
    }
    fail(who(), ": tensor ", p.a_key, " maps to no module of this ", index_.model().architecture(),
         " model (module ", p.canon, "; maybe the wrong base model?)");
  }

  // One key whose B rows cover `parts` in order (one slice, or a pre-fused spelling with a shared A).
  void add_linear_parts(const Pair& p, const std::string& scale_key, const Tensor& A, Tensor B,
                        const std::vector<TargetIndex::SliceRef>& parts) {
    const TargetShapes::Target& lin = index_.shapes().linears[parts[0].target];
    const int64_t r = A.dim(0);
    int64_t rows = 0;
    std::string names;
    for (auto& s : parts) {
      rows += index_.shapes().linears[s.target].slices[s.slice].size;
      names += (names.empty() ? "" : "|") + index_.targets().linears[s.target]->slices[s.slice].module;
    }
    expect_shape(p.a_key, A, {r, lin.in}, "lora_A [r, in] of " + names);
    expect_shape(p.b_key, B, {rows, r}, "lora_B [out, r] of " + names);
    check_rank(p.a_key, scale_key, r);
    scale(B, cfg_.scaling_for(scale_key));
    int64_t row = 0;
    for (auto& s : parts) {
      const int64_t n = index_.shapes().linears[s.target].slices[s.slice].size;
      pieces_.push_back({Piece::kLinear, s.target, s.slice, -1, 0, r, A, row_range(B, row, n), p.a_key});
      row += n;
    }
  }

  // in_proj_q / in_proj_k / in_proj_v: rows of the in_proj_qkv slice ([q | k | v], |q| = |k|).
  void add_qkv_part(const Pair& p, const Tensor& A, Tensor B, const TargetIndex::SliceRef& s) {
    const TargetShapes::Target& lin = index_.shapes().linears[s.target];
    const int64_t total = lin.slices[s.slice].size, rows = B.dim(0), r = A.dim(0);
    const std::string leaf = leaf_of(p.canon);
    const int64_t kd = leaf == "in_proj_v" ? (total - rows) / 2 : rows;
    const int64_t vd = total - 2 * kd;
    const int64_t offset = leaf == "in_proj_q" ? 0 : leaf == "in_proj_k" ? kd : 2 * kd;
    if (kd <= 0 || vd <= 0 || (leaf == "in_proj_v" && (total - rows) % 2 != 0))
      fail(who(), ": tensor ", p.b_key, " has ", rows, " rows, which does not split the ", total,
           "-row in_proj_qkv of ", parent_of(p.canon), " as [q | k | v] with |q| = |k|");
    expect_shape(p.a_key, A, {r, lin.in}, "lora_A [r, in]");
    check_rank(p.a_key, p.raw, r);
    scale(B, cfg_.scaling_for(p.raw));
    pieces_.push_back({Piece::kLinear, s.target, s.slice, -1, offset, r, A, B, p.a_key});
  }

  // target_parameters: lora_A [E·r, in] (expert-major rows), lora_B [out, E·r] (column j·E + e), models.md §4.6.
  // Which parameter of the owner a key belongs to follows from its `.base_layer` nesting.
  void add_fused_experts(const Pair& p, const std::string& owner, int64_t nesting, const Tensor& A, const Tensor& B) {
    const auto& all = *index_.experts_of(owner);
    const std::string raw_owner = p.raw.substr(0, p.raw.size() - (p.canon.size() - owner.size()));
    std::vector<int32_t> targeted;
    for (int32_t t : all)
      if (cfg_.targets_parameter(raw_owner + "." + leaf_of(index_.targets().experts[t]->name))) targeted.push_back(t);
    if (targeted.empty()) targeted = all;  // hand-written adapters without target_parameters: the nesting decides
    const int64_t pos = static_cast<int64_t>(targeted.size()) - 1 - nesting;
    if (pos < 0)
      fail(who(), ": tensor ", p.a_key, " is nested ", nesting, " .base_layer level(s) deep, but only ",
           targeted.size(), " parameter(s) of ", owner, " are targeted (target_parameters)");
    const int32_t t = targeted[pos];
    const ExpertLinear& el = *index_.targets().experts[t];
    const TargetShapes::Target& shape = index_.shapes().experts[t];
    const std::string scale_key = raw_owner + "." + leaf_of(el.name);
    const int64_t E = shape.experts, in = shape.in, out = shape.out;
    const int64_t r = cfg_.rank_for(scale_key);
    const bool a_per_expert = A.dim(0) == E * r, b_per_expert = B.dim(1) == E * r;
    if (!(a_per_expert || A.dim(0) == r) || A.dim(1) != in)
      fail(who(), ": tensor ", p.a_key, " has shape ", shape_str(A.shape()), ", expected [", E * r, ", ", in,
           "] (lora_A of ", scale_key, ": ", E, " experts × rank ", r, ", in ", in, ")");
    if (!(b_per_expert || B.dim(1) == r) || B.dim(0) != out)
      fail(who(), ": tensor ", p.b_key, " has shape ", shape_str(B.shape()), ", expected [", out, ", ", E * r,
           "] (lora_B of ", scale_key, ": out ", out, ", ", E, " experts × rank ", r, ")");
    check_rank(p.a_key, scale_key, r);
    const float s = static_cast<float>(cfg_.scaling_for(scale_key));
    Tensor Ae = Tensor::empty({E, r, in});   // [E, r, in]
    Tensor Be = Tensor::empty({E, out, r});  // [E, out, r], scaled
    for (int64_t e = 0; e < E; ++e) {
      const float* src = A.f32() + (a_per_expert ? e * r * in : 0);
      std::copy_n(src, r * in, Ae.f32() + e * r * in);
      for (int64_t o = 0; o < out; ++o)
        for (int64_t j = 0; j < r; ++j)
          Be.f32()[(e * out + o) * r + j] = s * B.f32()[o * B.dim(1) + (b_per_expert ? j * E + e : j)];
    }
    require_finite(Be, s);
    for (int32_t k = 0; k < static_cast<int32_t>(shape.slices.size()); ++k) {
      const TargetShapes::Slice& sl = shape.slices[k];
      Tensor Bk = Tensor::empty({E, sl.size, r});  // [E, out_size, r]
      for (int64_t e = 0; e < E; ++e)
        std::copy_n(Be.f32() + (e * out + sl.offset) * r, sl.size * r, Bk.f32() + e * sl.size * r);
      pieces_.push_back({Piece::kExpert, t, k, -1, 0, r, Ae, Bk, p.a_key});
    }
  }

  // Per-expert keys experts.{e}.gate_proj|up_proj|down_proj (or w1|w3|w2): A [r, in], B [out_slice, r].
  void add_per_expert(const Pair& p, int64_t e, const TargetIndex::SliceRef& s, const Tensor& A, Tensor B) {
    const ExpertLinear& el = *index_.targets().experts[s.target];
    const TargetShapes::Target& shape = index_.shapes().experts[s.target];
    if (e >= shape.experts)
      fail(who(), ": tensor ", p.a_key, " names expert ", e, ", but ", el.name, " has ", shape.experts, " experts");
    const int64_t r = A.dim(0);
    expect_shape(p.a_key, A, {r, shape.in}, "lora_A [r, in] of expert " + std::to_string(e));
    expect_shape(p.b_key, B, {shape.slices[s.slice].size, r}, "lora_B [out, r] of expert " + std::to_string(e));
    check_rank(p.a_key, p.raw, r);
    scale(B, cfg_.scaling_for(p.raw));
    pieces_.push_back({Piece::kExpert, s.target, s.slice, e, 0, r, A, B, p.a_key});
  }

  // lora_embedding_A [r, vocab], lora_embedding_B [H, r] (models.md §4.4).
  void resolve_embedding(const Pair& p, const Tensor& A, Tensor B) {
    const Embedding* emb = index_.targets().embedding;
    if (!emb || p.canon != emb->module)
      fail(who(), ": tensor ", p.a_key, " is an embedding LoRA for module ", p.canon, ", which is not this ",
           index_.model().architecture(), " model's embedding (", emb ? emb->module : "none",
           "; maybe the wrong base model?)");
    const int64_t r = A.dim(0);
    expect_shape(p.a_key, A, {r, index_.shapes().vocab}, "lora_embedding_A [r, vocab]");
    expect_shape(p.b_key, B, {index_.shapes().hidden, r}, "lora_embedding_B [hidden, r]");
    check_rank(p.a_key, p.raw, r);
    scale(B, cfg_.scaling_for(p.raw));
    pieces_.push_back({Piece::kEmbedding, 0, 0, -1, 0, r, A, B, p.a_key});
  }

  // A full weight (modules_to_save, or a saved base_layer copy): kept as W' − W when it differs from the base.
  void replacement(const std::string& key, const std::string& module) {
    const Tensor W = read(key);
    auto nonzero = [](const Tensor& d) {
      for (int64_t i = 0; i < d.numel(); ++i)
        if (d.f32()[i] != 0.0f) return true;
      return false;
    };
    const Embedding* emb = index_.targets().embedding;
    const bool whole = index_.holds_whole_weights();  // else kept as W' (a shard model; lora::shard_adapter)
    if (emb && module == emb->module) {
      expect_shape(key, W, {index_.shapes().vocab, index_.shapes().hidden},
                   "replacement of the embedding table [vocab, hidden]");
      Tensor d = W.clone();
      if (!whole) {
        embedding_delta_ = d;
        return;
      }
      for (int64_t i = 0; i < d.numel(); ++i) d.f32()[i] -= emb->host_table().f32()[i];
      if (nonzero(d)) embedding_delta_ = d;
      return;
    }
    const auto* s = index_.linear_slice(module);
    if (!s)
      fail(who(), ": tensor ", key, " is a full weight of module ", module, ", which is not a projection or "
           "embedding hylora can replace for this ", index_.model().architecture(), " model (maybe the wrong base "
           "model?)");
    const Linear& lin = *index_.targets().linears[s->target];
    const LoraSlice& sl = lin.slices[s->slice];
    const TargetShapes::Target& shape = index_.shapes().linears[s->target];
    expect_shape(key, W, {shape.slices[s->slice].size, shape.in}, "replacement weight of " + module);
    Tensor d = W.clone();  // [out_size, in]
    if (!whole) {
      deltas_.push_back({s->target, s->slice, d});
      return;
    }
    const float* base = lin.host_weight().f32() + sl.out_offset * lin.in_features();
    for (int64_t i = 0; i < d.numel(); ++i) d.f32()[i] -= base[i];
    if (nonzero(d)) deltas_.push_back({s->target, s->slice, d});
  }

  // Stacks the pieces of each slice along the rank (a block-structured B when they cover different rows).
  void assemble(NormalizedAdapter& out) {
    std::map<std::tuple<int, int32_t, int32_t>, std::vector<const Piece*>> by_slice;
    for (auto& pc : pieces_) by_slice[{pc.kind, pc.target, pc.slice}].push_back(&pc);
    for (auto& [k, list] : by_slice) {
      const auto kind = static_cast<Piece::Kind>(std::get<0>(k));
      const int32_t target = std::get<1>(k), slice = std::get<2>(k);
      int64_t in, out_size, E = 1;
      std::string module;
      if (kind == Piece::kLinear) {
        const TargetShapes::Target& l = index_.shapes().linears[target];
        in = l.in, out_size = l.slices[slice].size, module = index_.targets().linears[target]->slices[slice].module;
      } else if (kind == Piece::kExpert) {
        const TargetShapes::Target& l = index_.shapes().experts[target];
        in = l.in, out_size = l.slices[slice].size, module = index_.targets().experts[target]->slices[slice].module,
        E = l.experts;
      } else {
        in = index_.shapes().vocab, out_size = index_.shapes().hidden, module = index_.targets().embedding->module;
      }
      // Rank columns per expert (non-expert targets: one "expert"). Pieces with the same A (a shared A split over
      // rows, e.g. in_proj_q/k/v of one in_proj_qkv LoRA) share their columns; different A's are stacked.
      struct Placed {
        const Piece* piece;
        int64_t e, col;
      };
      std::vector<Placed> placed;
      std::vector<int64_t> rank_e(E, 0);
      auto a_of = [&](const Piece* pc, int64_t e) {
        const bool stacked = kind == Piece::kExpert && pc->expert < 0;  // [E, r, in]
        return pc->A.f32() + (stacked ? e * pc->rank * in : 0);
      };
      for (auto* pc : list)
        for (int64_t e = 0; e < E; ++e) {
          if (!(pc->expert < 0 || pc->expert == e)) continue;
          int64_t col = -1;
          for (auto& q : placed)
            if (q.e == e && q.piece->rank == pc->rank &&
                std::equal(a_of(pc, e), a_of(pc, e) + pc->rank * in, a_of(q.piece, e)))
              col = q.col;
          if (col < 0) {
            col = rank_e[e];
            rank_e[e] += pc->rank;
          }
          placed.push_back({pc, e, col});
        }
      const int64_t R = *std::max_element(rank_e.begin(), rank_e.end());
      if (R > max_rank_) {
        std::string keys;
        for (auto* pc : list) keys += (keys.empty() ? "" : ", ") + pc->key;
        fail(who(), ": slice ", module, " gets rank ", R, " from stacking ", keys, " (different lora_A), above "
             "--max-lora-rank ", max_rank_, "; restart with --max-lora-rank ", R, " or more");
      }
      Tensor A = Tensor::zeros({E, R, in});        // [E, R, in]
      Tensor B = Tensor::zeros({E, out_size, R});  // [E, out_size, R]
      for (auto& q : placed) {
        const Piece* pc = q.piece;
        const bool stacked = kind == Piece::kExpert && pc->expert < 0;  // B [E, rows, r]
        const int64_t r = pc->rank, rows = stacked ? pc->B.dim(1) : pc->B.dim(0);
        const float* b = pc->B.f32() + (stacked ? q.e * rows * r : 0);
        std::copy_n(a_of(pc, q.e), r * in, A.f32() + (q.e * R + q.col) * in);
        for (int64_t o = 0; o < rows; ++o)
          for (int64_t j = 0; j < r; ++j) B.f32()[(q.e * out_size + pc->row_offset + o) * R + q.col + j] += b[o * r + j];
      }
      NormalizedSlice ns{target, slice, R, A, B};
      if (kind == Piece::kExpert) {
        out.experts.push_back(ns);
      } else {
        ns.A = A.reshape({R, in});
        ns.B = B.reshape({out_size, R});
        (kind == Piece::kLinear ? out.linears : out.embedding).push_back(ns);
      }
    }
  }

  std::string name_, dir_;
  const TargetIndex& index_;
  int64_t max_rank_;
  AdapterConfig cfg_;
  Checkpoint ckpt_;
  std::map<std::string, Pair> pairs_;
  std::vector<std::pair<std::string, std::string>> replacements_;  // (tensor key, canonical module)
  std::vector<Piece> pieces_;
  std::vector<DenseDelta> deltas_;
  Tensor embedding_delta_;
  size_t skipped_ = 0;
  std::string skipped_example_;
};

}  // namespace

TargetShapes TargetShapes::of(const LoraTargets& t) {
  TargetShapes s;
  auto slices_of = [](const std::vector<LoraSlice>& v) {
    std::vector<Slice> out;
    for (const LoraSlice& k : v) out.push_back({k.out_offset, k.out_size});
    return out;
  };
  for (const Linear* l : t.linears) s.linears.push_back({l->in_features(), l->out_features(), 1, slices_of(l->slices)});
  for (const ExpertLinear* e : t.experts)
    s.experts.push_back({e->in_features(), e->out_features(), e->num_experts(), slices_of(e->slices)});
  if (t.embedding) s.vocab = t.embedding->table.dim(0), s.hidden = t.embedding->table.dim(1);
  return s;
}

TargetIndex::TargetIndex(const Model& model, TargetShapes whole) : TargetIndex(model) {
  const LoraTargets& t = model.lora_targets();
  HYLORA_CHECK(whole.linears.size() == t.linears.size() && whole.experts.size() == t.experts.size(),
               "internal: the whole shapes have ", whole.linears.size(), " + ", whole.experts.size(),
               " targets, the shard model ", t.linears.size(), " + ", t.experts.size());
  for (size_t i = 0; i < t.linears.size(); ++i)
    HYLORA_CHECK(whole.linears[i].slices.size() == t.linears[i]->slices.size(), "internal: ", t.linears[i]->name,
                 " has ", t.linears[i]->slices.size(), " slices, its whole shape ", whole.linears[i].slices.size());
  for (size_t i = 0; i < t.experts.size(); ++i)
    HYLORA_CHECK(whole.experts[i].slices.size() == t.experts[i]->slices.size(), "internal: ", t.experts[i]->name,
                 " has ", t.experts[i]->slices.size(), " slices, its whole shape ", whole.experts[i].slices.size());
  shapes_ = std::move(whole);
  whole_weights_ = false;
}

TargetIndex::TargetIndex(const Model& model) : model_(model), shapes_(TargetShapes::of(model.lora_targets())) {
  const LoraTargets& t = model.lora_targets();
  for (int32_t i = 0; i < static_cast<int32_t>(t.linears.size()); ++i) {
    HYLORA_CHECK(t.linears[i]->lora_id == i, "internal: ", t.linears[i]->name, " has lora_id ",
                 t.linears[i]->lora_id, " but is LoRA linear target ", i);
    for (int32_t k = 0; k < static_cast<int32_t>(t.linears[i]->slices.size()); ++k)
      linear_slices_[t.linears[i]->slices[k].module] = {i, k};
  }
  for (int32_t i = 0; i < static_cast<int32_t>(t.experts.size()); ++i) {
    const ExpertLinear& e = *t.experts[i];
    HYLORA_CHECK(e.lora_id == i, "internal: ", e.name, " has lora_id ", e.lora_id, " but is LoRA expert target ", i);
    experts_by_owner_[parent_of(e.name)].push_back(i);
    for (int32_t k = 0; k < static_cast<int32_t>(e.slices.size()); ++k) expert_slices_[e.slices[k].module] = {i, k};
  }
}

const TargetIndex::SliceRef* TargetIndex::linear_slice(const std::string& module) const {
  auto it = linear_slices_.find(module);
  return it == linear_slices_.end() ? nullptr : &it->second;
}
const TargetIndex::SliceRef* TargetIndex::expert_slice(const std::string& module) const {
  auto it = expert_slices_.find(module);
  return it == expert_slices_.end() ? nullptr : &it->second;
}
const std::vector<int32_t>* TargetIndex::experts_of(const std::string& owner) const {
  auto it = experts_by_owner_.find(owner);
  return it == experts_by_owner_.end() ? nullptr : &it->second;
}

std::shared_ptr<NormalizedAdapter> load_adapter(const std::string& name, const std::string& dir,
                                                const TargetIndex& index, int64_t max_lora_rank) {
  return Loader(name, dir, index, max_lora_rank).run();
}

}  // namespace hylora::lora
