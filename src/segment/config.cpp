// modelConfig.txt: DeepMedic's config is a Python file executed by its front end; CaPTk's uses only
// assignments of literals. We parse those literals (numbers, strings, True/False/None, nested
// lists) for the keys we need, never evaluating anything.
#include <cctype>
#include <cstring>
#include <optional>
#include <variant>

#include "common/error.h"
#include "common/files.h"
#include "segment/deepmedic.h"

namespace gg::segment {

namespace {

struct Value;
using List = std::vector<Value>;
struct Value {
  std::variant<std::monostate, double, std::string, bool, List> v;  // monostate: None
  bool is_number() const { return std::holds_alternative<double>(v); }
  bool is_list() const { return std::holds_alternative<List>(v); }
};

class Parser {
 public:
  Parser(const std::string& text, size_t pos, std::string source, std::string key)
      : s_(text), pos_(pos), source_(std::move(source)), key_(std::move(key)) {}

  Value value() {
    skip_space();
    if (pos_ >= s_.size()) fail("has no value");
    const char c = s_[pos_];
    if (c == '[' || c == '(') return list(c == '[' ? ']' : ')');
    if (c == '"' || c == '\'') return string(c);
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.')
      return number();
    for (const char* word : {"True", "False", "None"}) {
      if (s_.compare(pos_, std::strlen(word), word) == 0) {
        pos_ += std::strlen(word);
        if (word[0] == 'N') return Value{};
        return Value{word[0] == 'T'};
      }
    }
    fail("has a value that is not a literal (number, string, True/False or list)");
  }

 private:
  // Spaces, newlines (inside brackets a value may span lines) and comments.
  void skip_space() {
    while (pos_ < s_.size()) {
      if (std::isspace(static_cast<unsigned char>(s_[pos_]))) {
        ++pos_;
      } else if (s_[pos_] == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  Value list(char close) {
    ++pos_;
    List items;
    for (;;) {
      skip_space();
      if (pos_ >= s_.size()) fail("has an unclosed list");
      if (s_[pos_] == close) {
        ++pos_;
        return Value{std::move(items)};
      }
      items.push_back(value());
      skip_space();
      if (pos_ >= s_.size()) fail("has an unclosed list");
      if (pos_ < s_.size() && s_[pos_] == ',')
        ++pos_;
      else if (pos_ >= s_.size() || s_[pos_] != close)
        fail("has a malformed list");
    }
  }
  Value string(char quote) {
    const size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("has an unterminated string");
    Value v{s_.substr(pos_ + 1, end - pos_ - 1)};
    pos_ = end + 1;
    return v;
  }
  Value number() {
    const char* begin = s_.c_str() + pos_;
    char* end = nullptr;
    const double d = std::strtod(begin, &end);
    if (end == begin) fail("has a malformed number");
    pos_ += static_cast<size_t>(end - begin);
    return Value{d};
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw_bad_input(source_, "key '" + key_ + "' " + what, "fix modelConfig.txt");
  }

  const std::string& s_;
  size_t pos_;
  std::string source_, key_;
};

class Config {
 public:
  Config(const std::string& text, std::string source) : text_(text), source_(std::move(source)) {}

  // The value assigned to `key` at the start of a line (the last assignment wins, as in Python);
  // nullopt when absent or None.
  std::optional<Value> find(const std::string& key) const {
    std::optional<Value> found;
    size_t line = 0;
    while (line < text_.size()) {
      size_t p = line;
      while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t')) ++p;
      if (text_.compare(p, key.size(), key) == 0) {
        size_t q = p + key.size();
        while (q < text_.size() && (text_[q] == ' ' || text_[q] == '\t')) ++q;
        if (q < text_.size() && text_[q] == '=' && (q + 1 >= text_.size() || text_[q + 1] != '=')) {
          Value v = Parser(text_, q + 1, source_, key).value();
          found =
              std::holds_alternative<std::monostate>(v.v) ? std::nullopt : std::optional<Value>(v);
        }
      }
      const size_t nl = text_.find('\n', line);
      line = nl == std::string::npos ? text_.size() : nl + 1;
    }
    return found;
  }
  Value required(const std::string& key) const {
    auto v = find(key);
    if (!v) throw_bad_input(source_, "required key '" + key + "' is absent", "fix modelConfig.txt");
    return *v;
  }

  int to_int(const Value& v, const std::string& key) const {
    if (!v.is_number() || std::get<double>(v.v) != static_cast<int>(std::get<double>(v.v)))
      fail(key, "should be an integer");
    return static_cast<int>(std::get<double>(v.v));
  }
  double to_double(const Value& v, const std::string& key) const {
    if (!v.is_number()) fail(key, "should be a number");
    return std::get<double>(v.v);
  }
  const List& to_list(const Value& v, const std::string& key) const {
    if (!v.is_list()) fail(key, "should be a list");
    return std::get<List>(v.v);
  }
  std::vector<int> ints(const Value& v, const std::string& key) const {
    std::vector<int> out;
    for (const Value& e : to_list(v, key)) out.push_back(to_int(e, key));
    return out;
  }
  std::vector<double> doubles(const Value& v, const std::string& key) const {
    std::vector<double> out;
    for (const Value& e : to_list(v, key)) out.push_back(to_double(e, key));
    return out;
  }
  std::array<int, 3> triple(const Value& v, const std::string& key) const {
    const auto x = ints(v, key);
    if (x.size() != 3) fail(key, "should list 3 integers");
    for (int d : x)
      if (d <= 0) fail(key, "should hold positive integers");
    return {x[0], x[1], x[2]};
  }
  std::vector<std::array<int, 3>> triples(const Value& v, const std::string& key) const {
    std::vector<std::array<int, 3>> out;
    for (const Value& e : to_list(v, key)) out.push_back(triple(e, key));
    return out;
  }
  // A list of ints or of lists of ints (several subsampled pathways), as a list of lists.
  std::vector<Value> list_of_lists(const Value& v, const std::string& key) const {
    const List& l = to_list(v, key);
    bool all_lists = true, no_lists = true;
    for (const Value& e : l) (e.is_list() ? no_lists : all_lists) = false;
    if (!all_lists && !no_lists) fail(key, "mixes numbers and lists");
    if (no_lists) return {v};
    return l;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw_bad_input(source_, "key '" + key + "' " + what, "fix modelConfig.txt");
  }

 private:
  const std::string& text_;
  std::string source_;
};

std::vector<int> residual_indices(const Config& c, const std::vector<int>& numbers,
                                  const std::string& key, size_t layers) {
  std::vector<int> out;
  for (int n : numbers) {
    if (n < 2 || size_t(n) > layers)
      c.fail(key, "lists layer " + std::to_string(n) + ", not in 2.." + std::to_string(layers));
    out.push_back(n - 1);
  }
  return out;
}

std::array<int, 3> receptive_field_of(const std::vector<std::array<int, 3>>& kernels) {
  std::array<int, 3> rf{1, 1, 1};
  for (const auto& k : kernels)
    for (int d = 0; d < 3; ++d) rf[d] += k[d] - 1;
  return rf;
}

void reject_nonempty(const Config& c, const std::string& key) {
  if (auto v = c.find(key); v && !c.to_list(*v, key).empty())
    c.fail(key, "asks for low-rank layers, which this implementation does not support");
}

}  // namespace

std::array<int, 3> DeepMedicConfig::receptive_field() const {
  return receptive_field_of(normal.kernels);
}

DeepMedicConfig parse_deepmedic_config(const std::string& text, const std::string& source) {
  const Config c(text, source);
  DeepMedicConfig cfg;
  cfg.num_classes = c.to_int(c.required("numberOfOutputClasses"), "numberOfOutputClasses");
  cfg.num_channels = c.to_int(c.required("numberOfInputChannels"), "numberOfInputChannels");
  if (cfg.num_classes < 2) c.fail("numberOfOutputClasses", "should be at least 2");
  if (cfg.num_channels < 1) c.fail("numberOfInputChannels", "should be at least 1");

  cfg.normal.fms = c.ints(c.required("numberFMsPerLayerNormal"), "numberFMsPerLayerNormal");
  cfg.normal.kernels = c.triples(c.required("kernelDimPerLayerNormal"), "kernelDimPerLayerNormal");
  const size_t layers = cfg.normal.fms.size();
  if (layers == 0) c.fail("numberFMsPerLayerNormal", "is empty");
  if (cfg.normal.kernels.size() != layers)
    c.fail("kernelDimPerLayerNormal", "should have one kernel per layer of the normal pathway");
  auto ints_or = [&](const std::string& key, std::vector<int> fallback) {
    auto v = c.find(key);
    return v ? c.ints(*v, key) : fallback;
  };
  auto doubles_or = [&](const std::string& key, std::vector<double> fallback) {
    auto v = c.find(key);
    return v ? c.doubles(*v, key) : fallback;
  };
  const std::vector<int> res_normal = ints_or("layersWithResidualConnNormal", {});
  cfg.normal.residual_layers =
      residual_indices(c, res_normal, "layersWithResidualConnNormal", layers);
  cfg.normal.dropout = doubles_or("dropoutRatesNormal", {});
  reject_nonempty(c, "lowerRankLayersNormal");

  const auto use_sub = c.find("useSubsampledPathway");
  if (use_sub && !std::holds_alternative<bool>(use_sub->v))
    c.fail("useSubsampledPathway", "should be True or False");
  if (use_sub && std::get<bool>(use_sub->v)) {
    std::vector<std::vector<int>> fms;
    if (auto v = c.find("numberFMsPerLayerSubsampled")) {
      for (const Value& l : c.list_of_lists(*v, "numberFMsPerLayerSubsampled"))
        fms.push_back(c.ints(l, "numberFMsPerLayerSubsampled"));
    } else {
      fms.push_back(cfg.normal.fms);
    }
    std::vector<std::array<int, 3>> factors;
    if (auto v = c.find("subsampleFactor")) {
      for (const Value& l : c.list_of_lists(*v, "subsampleFactor"))
        factors.push_back(c.triple(l, "subsampleFactor"));
    } else {
      factors.push_back({3, 3, 3});
    }
    // modelParams.py: as many pathways as the longer list; the shorter is extended by repeating
    // the last FMs, or the last factor + 2.
    while (fms.size() < factors.size()) fms.push_back(fms.back());
    while (factors.size() < fms.size())
      factors.push_back({factors.back()[0] + 2, factors.back()[1] + 2, factors.back()[2] + 2});
    const size_t sub_layers = fms[0].size();
    for (const auto& f : fms)
      if (f.size() != sub_layers || f.empty())
        c.fail("numberFMsPerLayerSubsampled",
               "should give every pathway the same number of layers");
    std::vector<std::array<int, 3>> kernels = cfg.normal.kernels;
    if (auto v = c.find("kernelDimPerLayerSubsampled"))
      kernels = c.triples(*v, "kernelDimPerLayerSubsampled");
    if (kernels.size() != sub_layers)
      c.fail("kernelDimPerLayerSubsampled", "should have one kernel per subsampled layer");
    if (receptive_field_of(kernels) != cfg.receptive_field())
      c.fail("kernelDimPerLayerSubsampled",
             "gives a receptive field other than the normal pathway's (DeepMedic requires equal)");
    const auto res = residual_indices(c, ints_or("layersWithResidualConnSubsampled", res_normal),
                                      "layersWithResidualConnSubsampled", sub_layers);
    const auto drop = doubles_or("dropoutRatesSubsampled", {});
    reject_nonempty(c, "lowerRankLayersSubsampled");
    for (size_t p = 0; p < fms.size(); ++p)
      cfg.subsampled.push_back(PathwayConfig{fms[p], kernels, res, drop});
    cfg.subsample_factors = factors;
  }

  cfg.fc.fms = ints_or("numberFMsPerLayerFC", {});
  cfg.fc.fms.push_back(cfg.num_classes);
  std::array<int, 3> first_fc{1, 1, 1};
  if (auto v = c.find("kernelDimFor1stFcLayer")) first_fc = c.triple(*v, "kernelDimFor1stFcLayer");
  cfg.fc.kernels.assign(cfg.fc.fms.size(), {1, 1, 1});
  cfg.fc.kernels[0] = first_fc;
  cfg.fc.residual_layers = residual_indices(c, ints_or("layersWithResidualConnFC", {}),
                                            "layersWithResidualConnFC", cfg.fc.fms.size());
  // Default: no dropout into the first FC layer, 0.5 into the others (modelParams.py).
  std::vector<double> default_fc_drop(cfg.fc.fms.size(), 0.5);
  if (cfg.fc.fms.size() > 1) default_fc_drop[0] = 0.0;
  cfg.fc.dropout = doubles_or("dropoutRatesFc", default_fc_drop);

  for (const auto* p : {&cfg.normal, &cfg.fc}) {
    if (!p->dropout.empty() && p->dropout.size() != p->fms.size())
      c.fail(p == &cfg.fc ? "dropoutRatesFc" : "dropoutRatesNormal",
             "should have one rate per layer (or be empty)");
  }
  for (const auto& p : cfg.subsampled)
    if (!p.dropout.empty() && p.dropout.size() != p.fms.size())
      c.fail("dropoutRatesSubsampled", "should have one rate per layer (or be empty)");

  const auto seg_train = c.required("segmentsDimTrain");
  cfg.segment_inference = c.triple(seg_train, "segmentsDimTrain");
  if (auto v = c.find("segmentsDimInference"))
    cfg.segment_inference = c.triple(*v, "segmentsDimInference");
  for (int d = 0; d < 3; ++d)
    if (cfg.segment_inference[d] < cfg.receptive_field()[d])
      c.fail("segmentsDimInference", "is smaller than the receptive field");

  // Tiling here assumes cubes: DeepMedic allows anisotropic kernels, factors and segments.
  auto cubic = [](const std::array<int, 3>& a) { return a[0] == a[1] && a[1] == a[2]; };
  if (!cubic(cfg.receptive_field()))
    c.fail("kernelDimPerLayerNormal", "gives an anisotropic receptive field (not supported)");
  if (!cubic(cfg.segment_inference))
    c.fail("segmentsDimInference", "is not a cube (not supported)");
  for (const auto& f : cfg.subsample_factors)
    if (!cubic(f)) c.fail("subsampleFactor", "is anisotropic (not supported)");

  if (auto v = c.find("activationFunction")) {
    if (!std::holds_alternative<std::string>(v->v))
      c.fail("activationFunction", "should be a string");
    cfg.activation = std::get<std::string>(v->v);
  }
  if (cfg.activation != "prelu" && cfg.activation != "relu" && cfg.activation != "linear")
    c.fail("activationFunction", "is '" + cfg.activation + "'; supported: prelu, relu, linear");
  if (auto v = c.find("rollAverageForBNOverThatManyBatches"))
    cfg.bn_rolling_batches = c.to_int(*v, "rollAverageForBNOverThatManyBatches");
  if (cfg.bn_rolling_batches <= 0)
    c.fail("rollAverageForBNOverThatManyBatches", "should be > 0 (models without BN: unsupported)");
  return cfg;
}

DeepMedicConfig read_deepmedic_config(const fs::path& path) {
  return parse_deepmedic_config(read_file(path), path.string());
}

}  // namespace gg::segment
