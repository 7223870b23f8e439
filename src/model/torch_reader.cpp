// torch.save reader, both formats, written from torch/serialization.py (1.13) and the pickle
// protocol (PEP 307 / Lib/pickletools.py):
//   legacy: pickle(magic 0x1950a86a20f9469cfc6c), pickle(protocol 1001), pickle(sys_info),
//           pickle(object), pickle(storage keys), then per key: int64 element count + raw bytes.
//   zip:    <root>/data.pkl (the object) and <root>/data/<key> (raw bytes per storage), stored.
// In the object pickle, storages are persistent ids ('storage', torch.<T>Storage, key, location,
// numel[, view]) and tensors are torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
// ...).
//
// The pickle machine below implements only the opcodes torch.save emits (protocol 2, plus the
// protocol 4 framing ops) and never calls anything: a global is just a name, and only the few
// names above build values. Values live in an arena owned by the machine (no recursion, no
// reference cycles), and every op consumes input, so hostile input cannot loop or recurse.
#include <deque>
#include <map>
#include <optional>
#include <regex>
#include <unordered_map>

#include "common/files.h"
#include "model/byte_reader.h"
#include "model/model.h"

namespace gg::model {

namespace detail {
std::string hash_prefix_in_name(const std::string& file_name);
}

namespace {

using detail::ByteReader;

struct Storage {
  torch::ScalarType dtype = torch::kFloat32;
  int64_t numel = 0;
  std::string_view bytes;  // set once the storage data is located
  bool located = false;
};

struct Value {
  enum Kind {
    kNone,
    kBool,
    kInt,
    kBigInt,
    kFloat,
    kString,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kObject,
    kStorage,
    kTensor,
    kMark
  };
  Kind kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;              // string / bytes / global "module.name" / big int bytes
  std::vector<Value*> items;  // tuple, list
  std::vector<std::pair<Value*, Value*>> entries;  // dict
  // storage / tensor
  std::string storage_key;
  int64_t storage_offset = 0;  // elements (a legacy storage view's offset into its root)
  std::vector<int64_t> sizes, strides;
};

std::optional<torch::ScalarType> storage_dtype(const std::string& global) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool},
  };
  auto it = types.find(global);
  if (it == types.end()) return std::nullopt;
  return it->second;
}

class Unpickler {
 public:
  Unpickler(ByteReader& in, std::map<std::string, Storage>& storages)
      : in_(in), storages_(storages) {}

  Value* load();

 private:
  // Caps that keep hostile input from allocating far more than the file's size. A state_dict
  // pickle needs ~15 values per tensor (googlenet: ~5,000 in all).
  static constexpr size_t kMaxValues = size_t{1} << 20;

  Value* make(Value::Kind kind) {
    if (arena_.size() >= kMaxValues) fail("too many objects for a state_dict");
    arena_.emplace_back();
    arena_.back().kind = kind;
    return &arena_.back();
  }
  Value* make_int(int64_t v) {
    Value* x = make(Value::kInt);
    x->i = v;
    return x;
  }
  Value* make_string(std::string_view s) {
    Value* x = make(Value::kString);
    x->s = std::string(s);
    return x;
  }
  void push(Value* v) {
    if (stack_.size() >= kMaxValues) fail("pickle stack too deep");
    stack_.push_back(v);
  }
  void memo_put(uint64_t key, Value* v) {
    if (memo_.size() >= kMaxValues && !memo_.count(key)) fail("too many memo entries");
    memo_[key] = v;
  }
  Value* pop() {
    if (stack_.empty() || stack_.back()->kind == Value::kMark) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.empty() || stack_.back()->kind == Value::kMark) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Value*> pop_to_mark() {
    size_t m = stack_.size();
    while (m > 0 && stack_[m - 1]->kind != Value::kMark) --m;
    if (m == 0) fail("no MARK on the stack");
    std::vector<Value*> items(stack_.begin() + m, stack_.end());
    stack_.resize(m - 1);
    return items;
  }
  Value* tuple(std::vector<Value*> items) {
    Value* t = make(Value::kTuple);
    t->items = std::move(items);
    return t;
  }
  int64_t as_int(const Value* v, const char* what) {
    if (v->kind == Value::kInt || v->kind == Value::kBool) return v->i;
    fail(std::string(what) + " is not an integer");
  }
  Value* memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " not defined");
    return it->second;
  }
  void set_items(Value* dict, const std::vector<Value*>& kv) {
    if (dict->kind != Value::kDict) fail("SETITEMS on a non-dict");
    if (kv.size() % 2) fail("odd number of items for a dict");
    for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
  }
  Value* long_from_bytes(std::string_view b);
  Value* persistent_load(Value* pid);
  Value* reduce(Value* callable, Value* args);
  [[noreturn]] void fail(const std::string& what) const {
    in_.fail("pickle: " + what + " (near offset " + std::to_string(in_.pos()) + ")");
  }

  ByteReader& in_;
  std::map<std::string, Storage>& storages_;
  std::deque<Value> arena_;  // owns every value; pointers into a deque stay valid
  std::vector<Value*> stack_;
  std::unordered_map<uint64_t, Value*> memo_;
};

Value* Unpickler::long_from_bytes(std::string_view b) {
  if (b.size() <= 8) {
    uint64_t v = 0;
    for (size_t i = 0; i < b.size(); ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
    if (!b.empty() && b.size() < 8 && (static_cast<uint8_t>(b.back()) & 0x80))
      v |= ~uint64_t{0} << (8 * b.size());
    return make_int(static_cast<int64_t>(v));
  }
  Value* x = make(Value::kBigInt);
  x->s = std::string(b);
  return x;
}

Value* Unpickler::persistent_load(Value* pid) {
  if (pid->kind != Value::kTuple || pid->items.size() < 5 ||
      pid->items[0]->kind != Value::kString || pid->items[0]->s != "storage") {
    fail("unsupported persistent id (only storages are)");
  }
  Value* type = pid->items[1];
  Value* key = pid->items[2];
  if (type->kind != Value::kGlobal || key->kind != Value::kString) fail("malformed storage id");
  auto dtype = storage_dtype(type->s);
  if (!dtype) fail("unsupported storage type " + type->s);
  const int64_t numel = as_int(pid->items[4], "storage size");
  if (numel < 0 || numel > (int64_t{1} << 40)) fail("bad storage size");
  auto [it, inserted] = storages_.try_emplace(key->s);
  if (inserted) {
    it->second.dtype = *dtype;
    it->second.numel = numel;
  } else if (it->second.dtype != *dtype) {
    fail("storage " + key->s + " used with two types");
  }
  Value* s = make(Value::kStorage);
  s->storage_key = key->s;
  // Legacy views: (view_key, offset, view_size) into the root storage.
  if (pid->items.size() >= 6 && pid->items[5]->kind == Value::kTuple) {
    const auto& view = pid->items[5]->items;
    if (view.size() != 3) fail("malformed storage view");
    s->storage_offset = as_int(view[1], "storage view offset");
    if (s->storage_offset < 0 || s->storage_offset > numel) fail("bad storage view offset");
  }
  return s;
}

Value* Unpickler::reduce(Value* callable, Value* args) {
  if (callable->kind != Value::kGlobal || args->kind != Value::kTuple) {
    Value* obj = make(Value::kObject);
    return obj;
  }
  const std::string& name = callable->s;
  const auto& a = args->items;
  if (name == "collections.OrderedDict" || name == "builtins.dict") {
    return make(Value::kDict);
  }
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    if (a.size() < 4 || a[0]->kind != Value::kStorage || a[2]->kind != Value::kTuple ||
        a[3]->kind != Value::kTuple) {
      fail("malformed tensor");
    }
    Value* t = make(Value::kTensor);
    t->storage_key = a[0]->storage_key;
    const int64_t offset = as_int(a[1], "storage offset");
    if (offset < 0 || offset > (int64_t{1} << 40)) fail("bad storage offset");
    t->storage_offset = a[0]->storage_offset + offset;
    for (Value* d : a[2]->items) t->sizes.push_back(as_int(d, "tensor size"));
    for (Value* d : a[3]->items) t->strides.push_back(as_int(d, "tensor stride"));
    if (t->sizes.size() != t->strides.size() || t->sizes.size() > 16)
      fail("tensor size/stride mismatch");
    return t;
  }
  if (name == "torch._utils._rebuild_parameter") {
    if (a.empty() || a[0]->kind != Value::kTensor) fail("malformed parameter");
    return a[0];
  }
  if (name == "_codecs.encode" && !a.empty() && a[0]->kind == Value::kString) {
    return make_string(a[0]->s);  // bytes pickled by protocol 2 (latin-1 text)
  }
  return make(Value::kObject);  // anything else is kept opaque
}

Value* Unpickler::load() {
  while (true) {
    const uint8_t op = in_.u8();
    switch (op) {
      case 0x80:
        in_.u8();
        break;  // PROTO
      case 0x95:
        in_.u64();
        break;     // FRAME (protocol 4): framing only
      case '.': {  // STOP
        Value* v = pop();
        return v;
      }
      case '(':
        push(make(Value::kMark));
        break;  // MARK
      case '0':
        pop();
        break;  // POP
      case '1':
        pop_to_mark();
        break;  // POP_MARK
      case '2':
        push(top());
        break;  // DUP
      case 'N':
        push(make(Value::kNone));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        Value* b = make(Value::kBool);
        b->i = op == 0x88;
        push(b);
        break;
      }
      case 'J':
        push(make_int(in_.i32()));
        break;  // BININT
      case 'K':
        push(make_int(in_.u8()));
        break;  // BININT1
      case 'M':
        push(make_int(in_.u16()));
        break;  // BININT2
      case 0x8a:
        push(long_from_bytes(in_.bytes(in_.u8())));
        break;      // LONG1
      case 0x8b: {  // LONG4
        const int32_t n = in_.i32();
        if (n < 0) fail("negative length");
        push(long_from_bytes(in_.bytes(static_cast<uint64_t>(n))));
        break;
      }
      case 'I':
      case 'L': {  // INT / LONG (text)
        std::string text(in_.line(64));
        if (!text.empty() && text.back() == 'L') text.pop_back();
        if (op == 'I' && (text == "00" || text == "01")) {
          Value* b = make(Value::kBool);
          b->i = text == "01";
          push(b);
          break;
        }
        try {
          push(make_int(std::stoll(text)));
        } catch (const std::exception&) {
          fail("bad integer literal");
        }
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        auto b = in_.bytes(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | static_cast<uint8_t>(b[i]);
        Value* x = make(Value::kFloat);
        std::memcpy(&x->f, &bits, 8);
        push(x);
        break;
      }
      case 'X':
      case 'T':
      case 'B':
        push(make_string(in_.bytes(in_.u32())));
        break;  // 4-byte length
      case 0x8c:
      case 'U':
      case 'C':
        push(make_string(in_.bytes(in_.u8())));
        break;  // 1-byte length
      case 0x8d:
      case 0x8e:
        push(make_string(in_.bytes(in_.u64())));
        break;  // 8-byte length
      case ')':
        push(make(Value::kTuple));
        break;
      case 't':
        push(tuple(pop_to_mark()));
        break;
      case 0x85: {
        Value* a = pop();
        push(tuple({a}));
        break;
      }
      case 0x86: {
        Value* b = pop();
        Value* a = pop();
        push(tuple({a, b}));
        break;
      }
      case 0x87: {
        Value* c = pop();
        Value* b = pop();
        Value* a = pop();
        push(tuple({a, b, c}));
        break;
      }
      case ']':
        push(make(Value::kList));
        break;
      case 'l': {
        Value* l = make(Value::kList);
        l->items = pop_to_mark();
        push(l);
        break;
      }
      case 0x8f:
        push(make(Value::kList));
        break;     // EMPTY_SET (kept as a list)
      case 'a': {  // APPEND
        Value* v = pop();
        Value* l = top();
        if (l->kind != Value::kList) fail("APPEND to a non-list");
        l->items.push_back(v);
        break;
      }
      case 'e':
      case 0x90: {  // APPENDS / ADDITEMS
        auto items = pop_to_mark();
        Value* l = top();
        if (l->kind != Value::kList) fail("APPENDS to a non-list");
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case 0x91: {
        Value* l = make(Value::kList);
        l->items = pop_to_mark();
        push(l);
        break;
      }  // FROZENSET
      case '}':
        push(make(Value::kDict));
        break;
      case 'd': {
        Value* d = make(Value::kDict);
        set_items(d, pop_to_mark());
        push(d);
        break;
      }
      case 's': {
        Value* v = pop();
        Value* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': {
        auto kv = pop_to_mark();
        set_items(top(), kv);
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        Value* g = make(Value::kGlobal);
        g->s = std::string(in_.line());
        g->s += "." + std::string(in_.line());
        push(g);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop();
        Value* module = pop();
        if (name->kind != Value::kString || module->kind != Value::kString)
          fail("STACK_GLOBAL needs strings");
        Value* g = make(Value::kGlobal);
        g->s = module->s + "." + name->s;
        push(g);
        break;
      }
      case 'R': {
        Value* args = pop();
        Value* f = pop();
        push(reduce(f, args));
        break;
      }  // REDUCE
      case 0x81: {
        Value* args = pop();
        Value* cls = pop();
        push(reduce(cls, args));
        break;
      }  // NEWOBJ
      case 0x92: {
        pop();
        Value* args = pop();
        Value* cls = pop();
        push(reduce(cls, args));
        break;
      }
      case 'b':
        pop();
        top();
        break;  // BUILD: object state is not needed (_metadata)
      case 'q':
        memo_put(in_.u8(), top());
        break;  // BINPUT
      case 'r':
        memo_put(in_.u32(), top());
        break;  // LONG_BINPUT
      case 0x94:
        memo_put(memo_.size(), top());
        break;     // MEMOIZE
      case 'p': {  // PUT (text)
        try {
          memo_put(std::stoull(std::string(in_.line(32))), top());
        } catch (const std::logic_error&) {
          fail("bad PUT");
        }
        break;
      }
      case 'h':
        push(memo_get(in_.u8()));
        break;  // BINGET
      case 'j':
        push(memo_get(in_.u32()));
        break;     // LONG_BINGET
      case 'g': {  // GET (text)
        uint64_t key = 0;
        try {
          key = std::stoull(std::string(in_.line(32)));
        } catch (const std::logic_error&) {
          fail("bad GET");
        }
        push(memo_get(key));
        break;
      }
      case 'Q':
        push(persistent_load(pop()));
        break;  // BINPERSID
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported opcode ") + hex);
      }
    }
  }
}

// Builds the tensors of the top-level dict (or of its "state_dict"/"model" entry).
StateDict collect_tensors(const Value* root, const std::map<std::string, Storage>& storages,
                          const ByteReader& in) {
  const Value* dict = root;
  if (dict->kind == Value::kDict) {
    for (const auto& [k, v] : dict->entries) {
      if (k->kind == Value::kString && (k->s == "state_dict" || k->s == "model") &&
          v->kind == Value::kDict)
        dict = v;
    }
  }
  if (dict->kind != Value::kDict)
    in.fail("the saved object is not a dict of tensors (a state_dict)");
  StateDict state;
  std::map<std::string, torch::Tensor> flat_storages;
  // Views may overlap or broadcast (stride 0), so the tensors could be far larger than the file:
  // a state_dict's tensors hold at most about the file's bytes.
  const uint64_t max_total_bytes = 2 * static_cast<uint64_t>(in.size()) + (uint64_t{1} << 20);
  uint64_t total_bytes = 0;
  for (const auto& [k, v] : dict->entries) {
    if (k->kind != Value::kString) in.fail("a state_dict key is not a string");
    if (v->kind != Value::kTensor) in.fail("entry '" + k->s + "' is not a tensor");
    const Storage& st = storages.at(v->storage_key);
    if (!st.located) in.fail("storage " + v->storage_key + " of '" + k->s + "' has no data");
    // Highest element index the view touches must lie inside the storage.
    int64_t last = v->storage_offset, numel = 1;
    bool empty = false;
    for (size_t d = 0; d < v->sizes.size(); ++d) {
      const int64_t size = v->sizes[d], stride = v->strides[d];
      if (size < 0 || stride < 0 || size > (int64_t{1} << 40) || stride > (int64_t{1} << 40)) {
        in.fail("tensor '" + k->s + "' has a bad size or stride");
      }
      if (size == 0) empty = true;
      numel *= size;
      if (numel > (int64_t{1} << 40)) in.fail("tensor '" + k->s + "' is too large");
      // (size-1)*stride is checked against the storage before it is formed: no overflow.
      if (size > 1 && stride > 0 && size - 1 > st.numel / stride)
        last = st.numel;
      else if (size > 0)
        last += (size - 1) * stride;
      if (last > st.numel) last = st.numel;
    }
    if (!empty && last >= st.numel)
      in.fail("tensor '" + k->s + "' reaches past the end of its storage");
    total_bytes += static_cast<uint64_t>(numel) * c10::elementSize(st.dtype);
    if (total_bytes > max_total_bytes)
      in.fail("tensors are larger than the file could hold (at '" + k->s + "')");
    const auto opts = torch::TensorOptions().dtype(st.dtype);
    torch::Tensor tensor;
    if (empty) {
      tensor = torch::empty(v->sizes, opts);
    } else {
      // Each storage is copied once into aligned memory (raw data in the file may be unaligned).
      auto [it, inserted] = flat_storages.try_emplace(v->storage_key);
      if (inserted) {
        it->second = torch::empty({st.numel}, opts);
        std::memcpy(it->second.data_ptr(), st.bytes.data(), st.bytes.size());
      }
      tensor = it->second.as_strided(v->sizes, v->strides, v->storage_offset)
                   .clone(torch::MemoryFormat::Contiguous);
    }
    state.emplace_back(k->s, tensor);
  }
  return state;
}

void locate(Storage& st, std::string_view bytes, const ByteReader& in, const std::string& key) {
  const uint64_t element = c10::elementSize(st.dtype);
  if (bytes.size() != static_cast<uint64_t>(st.numel) * element) {
    in.fail("storage " + key + " has " + std::to_string(bytes.size()) + " bytes, expected " +
            std::to_string(static_cast<uint64_t>(st.numel) * element));
  }
  st.bytes = bytes;
  st.located = true;
}

StateDict read_legacy(const std::string& bytes, const std::string& file) {
  ByteReader in(bytes, file, "torch.save (legacy) file");
  std::map<std::string, Storage> storages;
  {
    Unpickler magic(in, storages);
    Value* m = magic.load();
    static const char kMagic[] =
        "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";  // 0x1950a86a20f9469cfc6c LE
    if (m->kind != Value::kBigInt || m->s != std::string(kMagic, 10)) in.fail("bad magic number");
  }
  {
    Unpickler version(in, storages);
    Value* v = version.load();
    if (v->kind != Value::kInt || v->i != 1001) in.fail("unsupported protocol version");
  }
  {
    Unpickler sys_info(in, storages);
    Value* info = sys_info.load();
    if (info->kind == Value::kDict) {
      for (const auto& [k, v] : info->entries) {
        if (k->kind == Value::kString && k->s == "little_endian" && v->kind == Value::kBool &&
            !v->i) {
          in.fail("big-endian files are not supported");
        }
      }
    }
  }
  Unpickler object(in, storages);
  Value* root = object.load();
  Unpickler keys_pickle(in, storages);
  Value* keys = keys_pickle.load();
  if (keys->kind != Value::kList) in.fail("storage key list missing");
  for (Value* key : keys->items) {
    if (key->kind != Value::kString) in.fail("storage key is not a string");
    auto it = storages.find(key->s);
    if (it == storages.end()) in.fail("storage " + key->s + " is not used by any tensor");
    if (it->second.located) in.fail("storage " + key->s + " listed twice");
    const int64_t count = in.i64();
    if (count != it->second.numel) in.fail("storage " + key->s + " size differs from its header");
    const uint64_t element = c10::elementSize(it->second.dtype);
    if (count < 0 || static_cast<uint64_t>(count) > in.remaining() / element) {
      in.fail("storage " + key->s + " is truncated");
    }
    locate(it->second, in.bytes(static_cast<uint64_t>(count) * element), in, key->s);
  }
  return collect_tensors(root, storages, in);
}

// Minimal zip reader for torch's archives: central directory (zip64 aware), stored entries only.
std::map<std::string, std::string_view> zip_entries(const std::string& bytes, ByteReader& in) {
  const size_t kEocdSize = 22;
  if (bytes.size() < kEocdSize) in.fail("too short for a zip archive");
  size_t eocd = std::string::npos;
  const size_t lowest = bytes.size() > kEocdSize + 65535 ? bytes.size() - kEocdSize - 65535 : 0;
  for (size_t p = bytes.size() - kEocdSize + 1; p-- > lowest;) {
    if (std::memcmp(bytes.data() + p, "PK\x05\x06", 4) == 0) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::string::npos)
    in.fail("zip end-of-central-directory record not found (truncated?)");
  in.seek(eocd + 10);
  uint64_t count = in.u16();
  in.u32();  // central directory size
  uint64_t cd_offset = in.u32();
  if (cd_offset == 0xffffffffu || count == 0xffff) {  // zip64
    if (eocd < 20) in.fail("zip64 locator missing");
    in.seek(eocd - 20);
    if (in.u32() != 0x07064b50) in.fail("zip64 locator missing");
    in.u32();
    in.seek(in.u64());
    if (in.u32() != 0x06064b50) in.fail("zip64 end record missing");
    in.skip(20);
    count = in.u64();
    in.u64();
    cd_offset = in.u64();
  }
  if (count > bytes.size() / 46) in.fail("zip entry count is impossible for the file size");
  in.seek(cd_offset);
  std::map<std::string, std::string_view> entries;
  for (uint64_t i = 0; i < count; ++i) {
    if (in.u32() != 0x02014b50) in.fail("bad zip central directory entry");
    in.skip(6);
    const uint16_t method = in.u16();
    in.skip(8);
    uint64_t compressed = in.u32(), uncompressed = in.u32();
    const uint16_t name_len = in.u16(), extra_len = in.u16(), comment_len = in.u16();
    in.skip(8);
    uint64_t local = in.u32();
    std::string name(in.bytes(name_len));
    ByteReader extra(in.bytes(extra_len), in.file(), "zip extra field");
    in.skip(comment_len);
    while (extra.remaining() >= 4) {
      const uint16_t id = extra.u16(), len = extra.u16();
      ByteReader field(extra.bytes(len), in.file(), "zip64 extra field");
      if (id != 0x0001) continue;
      if (uncompressed == 0xffffffffu) uncompressed = field.u64();
      if (compressed == 0xffffffffu) compressed = field.u64();
      if (local == 0xffffffffu) local = field.u64();
    }
    if (method != 0 || compressed != uncompressed)
      in.fail("entry " + name + " is compressed (torch.save stores entries)");
    const size_t saved = in.pos();
    in.seek(local);
    if (in.u32() != 0x04034b50) in.fail("bad zip local header for " + name);
    in.skip(22);
    const uint16_t local_name = in.u16(), local_extra = in.u16();
    in.skip(uint64_t{local_name} + local_extra);
    entries[name] = in.bytes(compressed);
    in.seek(saved);
  }
  return entries;
}

StateDict read_zip(const std::string& bytes, const std::string& file) {
  ByteReader in(bytes, file, "torch.save (zip) file");
  const auto entries = zip_entries(bytes, in);
  std::string root;
  for (const auto& [name, data] : entries) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0)
      root = name.substr(0, slash);
  }
  if (root.empty()) in.fail("no <archive>/data.pkl entry (not a torch.save file?)");
  if (auto it = entries.find(root + "/byteorder"); it != entries.end() && it->second != "little") {
    in.fail("big-endian files are not supported");
  }
  std::map<std::string, Storage> storages;
  ByteReader pickle(entries.at(root + "/data.pkl"), file, "torch.save (zip) data.pkl");
  Unpickler object(pickle, storages);
  Value* value = object.load();
  for (auto& [key, st] : storages) {
    auto it = entries.find(root + "/data/" + key);
    if (it == entries.end()) in.fail("storage record data/" + key + " missing");
    locate(st, it->second, in, key);
  }
  return collect_tensors(value, storages, in);
}

}  // namespace

StateDict read_torch_checkpoint(const fs::path& path) {
  const std::string bytes = read_file(path);
  const std::string prefix = detail::hash_prefix_in_name(path.filename().string());
  if (!prefix.empty() && sha256_hex(bytes).compare(0, prefix.size(), prefix) != 0) {
    throw_bad_input(
        path.string(),
        "sha256 does not start with " + prefix + " as the file name says (corrupted download?)",
        "download the file again");
  }
  if (bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04") == 0)
    return read_zip(bytes, path.string());
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x80)
    return read_legacy(bytes, path.string());
  throw_bad_input(path.string(), "not a torch.save file (neither zip nor legacy pickle)",
                  "give a .pth/.pt written by torch.save");
}

}  // namespace gg::model
