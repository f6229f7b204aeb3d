#include "checkpoint/pickle.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "core/plural.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::pickle {
namespace {

// Opcodes, as Python's pickle module names them.
namespace op {
constexpr uint8_t MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F',
                  INT = 'I', BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N',
                  PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R', STRING = 'S', BINSTRING = 'T',
                  SHORT_BINSTRING = 'U', UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b',
                  GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h',
                  INST = 'i', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p',
                  BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')',
                  SETITEMS = 'u', BINFLOAT = 'G', BINBYTES = 'B', SHORT_BINBYTES = 'C';
constexpr uint8_t PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85,
                  TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a,
                  LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e,
                  EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92,
                  STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96,
                  NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98;
}  // namespace op

const char* opcode_name(uint8_t code) {
  switch (code) {
    case op::MARK: return "MARK";
    case op::STOP: return "STOP";
    case op::POP: return "POP";
    case op::POP_MARK: return "POP_MARK";
    case op::DUP: return "DUP";
    case op::FLOAT: return "FLOAT";
    case op::INT: return "INT";
    case op::BININT: return "BININT";
    case op::BININT1: return "BININT1";
    case op::LONG: return "LONG";
    case op::BININT2: return "BININT2";
    case op::NONE: return "NONE";
    case op::PERSID: return "PERSID";
    case op::BINPERSID: return "BINPERSID";
    case op::REDUCE: return "REDUCE";
    case op::STRING: return "STRING";
    case op::BINSTRING: return "BINSTRING";
    case op::SHORT_BINSTRING: return "SHORT_BINSTRING";
    case op::UNICODE: return "UNICODE";
    case op::BINUNICODE: return "BINUNICODE";
    case op::APPEND: return "APPEND";
    case op::BUILD: return "BUILD";
    case op::GLOBAL: return "GLOBAL";
    case op::DICT: return "DICT";
    case op::EMPTY_DICT: return "EMPTY_DICT";
    case op::APPENDS: return "APPENDS";
    case op::GET: return "GET";
    case op::BINGET: return "BINGET";
    case op::INST: return "INST";
    case op::LONG_BINGET: return "LONG_BINGET";
    case op::LIST: return "LIST";
    case op::EMPTY_LIST: return "EMPTY_LIST";
    case op::OBJ: return "OBJ";
    case op::PUT: return "PUT";
    case op::BINPUT: return "BINPUT";
    case op::LONG_BINPUT: return "LONG_BINPUT";
    case op::SETITEM: return "SETITEM";
    case op::TUPLE: return "TUPLE";
    case op::EMPTY_TUPLE: return "EMPTY_TUPLE";
    case op::SETITEMS: return "SETITEMS";
    case op::BINFLOAT: return "BINFLOAT";
    case op::BINBYTES: return "BINBYTES";
    case op::SHORT_BINBYTES: return "SHORT_BINBYTES";
    case op::PROTO: return "PROTO";
    case op::NEWOBJ: return "NEWOBJ";
    case op::EXT1: return "EXT1";
    case op::EXT2: return "EXT2";
    case op::EXT4: return "EXT4";
    case op::TUPLE1: return "TUPLE1";
    case op::TUPLE2: return "TUPLE2";
    case op::TUPLE3: return "TUPLE3";
    case op::NEWTRUE: return "NEWTRUE";
    case op::NEWFALSE: return "NEWFALSE";
    case op::LONG1: return "LONG1";
    case op::LONG4: return "LONG4";
    case op::SHORT_BINUNICODE: return "SHORT_BINUNICODE";
    case op::BINUNICODE8: return "BINUNICODE8";
    case op::BINBYTES8: return "BINBYTES8";
    case op::EMPTY_SET: return "EMPTY_SET";
    case op::ADDITEMS: return "ADDITEMS";
    case op::FROZENSET: return "FROZENSET";
    case op::NEWOBJ_EX: return "NEWOBJ_EX";
    case op::STACK_GLOBAL: return "STACK_GLOBAL";
    case op::MEMOIZE: return "MEMOIZE";
    case op::FRAME: return "FRAME";
    case op::BYTEARRAY8: return "BYTEARRAY8";
    case op::NEXT_BUFFER: return "NEXT_BUFFER";
    case op::READONLY_BUFFER: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

// Python 2 module names that Python 3 maps on load (the ones torch files use).
std::string normalize_module(const std::string& module) {
  if (module == "__builtin__") return "builtins";
  if (module == "copy_reg") return "copyreg";
  return module;
}

// A canonical text for hashable keys, so that d[k] = v replaces an existing entry as Python
// does. Returns false for keys without value equality (objects compare by identity).
bool hash_key(const Value* v, std::string& out, int depth) {
  switch (v->kind) {
    case Kind::none: out += 'N'; return true;
    case Kind::boolean: out += v->flag ? "i1;" : "i0;"; return true;
    case Kind::integer: out += fmt::format("i{};", v->i); return true;
    case Kind::big_integer: out += fmt::format("I{}:", v->s.size()); out += v->s; return true;
    case Kind::floating:
      if (std::isfinite(v->f) && v->f == std::trunc(v->f) && std::fabs(v->f) < 9.0e18) {
        out += fmt::format("i{};", static_cast<int64_t>(v->f));  // 1.0 == 1 in Python
      } else {
        uint64_t bits;
        std::memcpy(&bits, &v->f, sizeof bits);
        out += fmt::format("f{:x};", bits);
      }
      return true;
    case Kind::str: out += fmt::format("s{}:", v->s.size()); out += v->s; return true;
    case Kind::bytes: out += fmt::format("b{}:", v->s.size()); out += v->s; return true;
    case Kind::global: out += fmt::format("g{}:", v->s.size()); out += v->s; return true;
    case Kind::tuple:
      if (depth > 16) return false;
      out += fmt::format("t{}(", v->items.size());
      for (const Value* item : v->items) {
        if (!hash_key(item, out, depth + 1)) return false;
      }
      out += ')';
      return true;
    default: return false;
  }
}

const std::unordered_map<std::string, TypeEntry>& storage_types() {
  static const std::unordered_map<std::string, TypeEntry> table = {
      {"DoubleStorage", {DType::float64, 8}},
      {"FloatStorage", {DType::float32, 4}},
      {"HalfStorage", {DType::float16, 2}},
      {"BFloat16Storage", {DType::bfloat16, 2}},
      {"LongStorage", {DType::int64, 8}},
      {"IntStorage", {DType::int32, 4}},
      {"ShortStorage", {DType::int16, 2}},
      {"CharStorage", {DType::int8, 1}},
      {"ByteStorage", {DType::uint8, 1}},
      {"BoolStorage", {DType::boolean, 1}},
      {"ComplexFloatStorage", {DType::complex64, 8}},
      {"ComplexDoubleStorage", {DType::complex128, 16}},
      {"UntypedStorage", {DType::uint8, 1}},
      {"_UntypedStorage", {DType::uint8, 1}},
      // Quantized storages: known sizes (so a legacy file can be walked past them), no dtype.
      {"QUInt8Storage", {std::nullopt, 1}},
      {"QInt8Storage", {std::nullopt, 1}},
      {"QInt32Storage", {std::nullopt, 4}},
      {"QUInt4x2Storage", {std::nullopt, 1}},
      {"QUInt2x4Storage", {std::nullopt, 1}},
  };
  return table;
}

const std::unordered_map<std::string, TypeEntry>& dtype_names() {
  static const std::unordered_map<std::string, TypeEntry> table = {
      {"float32", {DType::float32, 4}},
      {"float", {DType::float32, 4}},
      {"float64", {DType::float64, 8}},
      {"double", {DType::float64, 8}},
      {"float16", {DType::float16, 2}},
      {"half", {DType::float16, 2}},
      {"bfloat16", {DType::bfloat16, 2}},
      {"int64", {DType::int64, 8}},
      {"long", {DType::int64, 8}},
      {"int32", {DType::int32, 4}},
      {"int", {DType::int32, 4}},
      {"int16", {DType::int16, 2}},
      {"short", {DType::int16, 2}},
      {"int8", {DType::int8, 1}},
      {"uint8", {DType::uint8, 1}},
      {"bool", {DType::boolean, 1}},
      {"complex64", {DType::complex64, 8}},
      {"cfloat", {DType::complex64, 8}},
      {"complex128", {DType::complex128, 16}},
      {"cdouble", {DType::complex128, 16}},
      // dtypes of newer torch versions (or without a LibTorch 1.13 counterpart).
      {"complex32", {std::nullopt, 4}},
      {"chalf", {std::nullopt, 4}},
      {"uint16", {std::nullopt, 2}},
      {"uint32", {std::nullopt, 4}},
      {"uint64", {std::nullopt, 8}},
      {"float8_e4m3fn", {std::nullopt, 1}},
      {"float8_e5m2", {std::nullopt, 1}},
      {"float8_e4m3fnuz", {std::nullopt, 1}},
      {"float8_e5m2fnuz", {std::nullopt, 1}},
      {"qint8", {std::nullopt, 1}},
      {"quint8", {std::nullopt, 1}},
      {"qint32", {std::nullopt, 4}},
      {"quint4x2", {std::nullopt, 1}},
      {"quint2x4", {std::nullopt, 1}},
  };
  return table;
}

// "torch.FloatStorage" -> ("torch", "FloatStorage").
std::pair<std::string, std::string> split_dotted(const std::string& dotted) {
  auto dot = dotted.rfind('.');
  if (dot == std::string::npos) return {"", dotted};
  return {dotted.substr(0, dot), dotted.substr(dot + 1)};
}

// Python 2 `str` pickled by Python 3 as `_codecs.encode(text, 'latin1')`: back to bytes.
std::optional<std::string> utf8_to_latin1(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t k = 0; k < text.size(); ++k) {
    auto c = static_cast<uint8_t>(text[k]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c & 0xe0) == 0xc0 && k + 1 < text.size()) {
      auto c2 = static_cast<uint8_t>(text[k + 1]);
      unsigned cp = ((c & 0x1fu) << 6) | (c2 & 0x3fu);
      if ((c2 & 0xc0) != 0x80 || cp > 0xff) return std::nullopt;
      out += static_cast<char>(cp);
      ++k;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

// The globals a checkpoint's pickle may name. This reader never calls anything: a global only
// becomes a value (a container, a tensor, a dtype) or an opaque record of its name and arguments.
// Even so, a pickle that names anything else (os.system, builtins.eval, a class of the training
// script) is refused, as torch.load(weights_only=True) refuses it: such a file is either not a
// plain checkpoint or was crafted to run code in Python.
bool allowed_global(const std::string& dotted) {
  static const std::unordered_set<std::string> names = {
      // Python containers and scalars.
      "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set", "builtins.frozenset",
      "builtins.bytes", "builtins.bytearray", "builtins.int", "builtins.float", "builtins.complex",
      "builtins.bool", "builtins.str", "builtins.slice", "builtins.range", "builtins.object",
      "collections.OrderedDict", "collections.defaultdict", "collections.Counter", "collections.deque",
      "_codecs.encode", "copyreg._reconstructor",
      // Data classes training scripts put next to the weights.
      "argparse.Namespace", "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePath",
      "pathlib.PurePosixPath", "pathlib.PureWindowsPath", "datetime.datetime", "datetime.date", "datetime.time",
      "datetime.timedelta", "datetime.timezone",
      "numpy.dtype", "numpy.ndarray", "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
      "numpy._core.multiarray.scalar", "numpy._core.multiarray._reconstruct",
      // Tensors and their parts.
      "torch.Size", "torch.device", "torch.Tensor", "torch.nn.parameter.Parameter",
      "torch.nn.parameter.Buffer", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
      "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_qtensor",
      "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_meta_tensor_no_storage",
      "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_device_tensor_from_numpy",
      "torch._utils._rebuild_nested_tensor", "torch._tensor._rebuild_from_type_v2",
      "torch.storage.TypedStorage", "torch.storage.UntypedStorage", "torch.storage._load_from_bytes",
      "torch.strided", "torch.sparse_coo", "torch.sparse_csr", "torch.contiguous_format",
      "torch.channels_last", "torch.channels_last_3d", "torch.preserve_format", "torch.per_tensor_affine",
      "torch.per_channel_affine", "torch.per_tensor_symmetric", "torch.per_channel_symmetric",
  };
  if (names.count(dotted) != 0) return true;
  if (dotted.rfind("numpy.dtypes.", 0) == 0) return true;  // numpy 2's dtype classes (Float32DType ...)
  return storage_type(dotted).has_value() || dtype_global(dotted).has_value();
}

class Machine {
 public:
  Machine(Context& context, const uint8_t* data, std::size_t size, std::size_t pos)
      : ctx_(context), data_(data), size_(size), pos_(pos) {}

  Value* run();
  std::size_t position() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const char* name = opcode_name(op_);
    throw FormatError(fmt::format("pickle invalid at offset {} (opcode {}): {}", op_pos_,
                                  name ? name : fmt::format("0x{:02x}", op_), what));
  }

  const uint8_t* take(std::size_t count) {
    if (count > size_ - pos_) {
      const char* name = opcode_name(op_);
      throw FormatError(fmt::format(
          "pickle truncated: opcode {} at offset {} needs {} more, only {} left", name ? name : "?", op_pos_,
          count_of(static_cast<int64_t>(count), "byte"), size_ - pos_));
    }
    const uint8_t* p = data_ + pos_;
    pos_ += count;
    return p;
  }
  uint64_t read_le(std::size_t count) {
    const uint8_t* p = take(count);
    uint64_t v = 0;
    for (std::size_t k = 0; k < count; ++k) v |= static_cast<uint64_t>(p[k]) << (8 * k);
    return v;
  }
  std::string read_string(std::size_t count) {
    const uint8_t* p = take(count);
    return std::string(reinterpret_cast<const char*>(p), count);
  }
  // A length field, checked against what is left before anything is allocated.
  std::size_t read_length(std::size_t field_bytes) {
    uint64_t n = read_le(field_bytes);
    if (n > size_ - pos_) {
      throw FormatError(fmt::format(
          "pickle truncated: opcode {} at offset {} announces {} bytes, only {} left",
          opcode_name(op_), op_pos_, n, size_ - pos_));
    }
    return static_cast<std::size_t>(n);
  }
  std::string read_line() {
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (nl == nullptr) {
      throw FormatError(fmt::format("pickle truncated: opcode {} at offset {} has no end of line",
                                    opcode_name(op_), op_pos_));
    }
    auto end = static_cast<std::size_t>(static_cast<const uint8_t*>(nl) - data_);
    std::string line(reinterpret_cast<const char*>(data_ + pos_), end - pos_);
    pos_ = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  int64_t parse_decimal(std::string text) {
    if (!text.empty() && text.back() == 'L') text.pop_back();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) {
      fail(fmt::format("'{}' is not an integer this reader supports", text));
    }
    return v;
  }

  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value* v) {
    if (stack_.size() >= kMaxStack) fail(fmt::format("the stack grows past {} entries", kMaxStack));
    stack_.push_back(v);
  }
  void memo_put(uint64_t key, Value* v) {
    if (memo_.size() >= kMaxMemo && memo_.count(key) == 0) fail(fmt::format("the memo grows past {} entries", kMaxMemo));
    memo_[key] = v;
  }
  // Container items: every APPEND(S)/SETITEM(S) counts, so that reused containers stay bounded too.
  void count_items(std::size_t n) {
    items_ += n;
    if (items_ > kMaxItems) fail(fmt::format("containers hold more than {} items", kMaxItems));
  }
  Value* pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    std::size_t at = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(at), stack_.end());
    stack_.resize(at);
    return items;
  }
  Value* memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail(fmt::format("memo key {} missing", key));
    return it->second;
  }

  Value* make(Kind kind) { return ctx_.make(kind); }
  Value* make_int(int64_t v) {
    Value* r = make(Kind::integer);
    r->i = v;
    return r;
  }
  Value* make_str(std::string s, Kind kind = Kind::str) {
    Value* r = make(kind);
    r->s = std::move(s);
    return r;
  }
  Value* make_seq(Kind kind, std::vector<Value*> items) {
    Value* r = make(kind);
    r->items = std::move(items);
    return r;
  }
  Value* make_long(const uint8_t* p, std::size_t n);
  Value* make_global(const std::string& module, const std::string& name) {
    std::string dotted = normalize_module(module) + "." + name;
    if (!allowed_global(dotted)) {
      throw FormatError(fmt::format(
          "refused: the pickle names the global '{}' (opcode {} at offset {}), which is not on the list of data "
          "classes a checkpoint may hold; nothing in the file was run (this reader executes no code). If it is "
          "your own checkpoint, save the weights alone: torch.save(model.state_dict(), PATH)",
          io::printable(dotted, 120), opcode_name(op_), op_pos_));
    }
    return make_str(std::move(dotted), Kind::global);
  }

  void set_items(Value* target, const std::vector<Value*>& kv);
  void append_items(Value* target, const std::vector<Value*>& items);
  Value* apply(Value* callable, Value* args, int depth);
  Value* rebuild_tensor(const std::vector<Value*>& a, int dtype_arg);
  Value* persistent_load(Value* pid);
  Value* load_storage(const std::vector<Value*>& pid);

  Context& ctx_;
  const uint8_t* data_;
  std::size_t size_;
  std::size_t pos_;
  std::size_t op_pos_ = 0;
  uint8_t op_ = 0;
  std::vector<Value*> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::size_t items_ = 0;
};

Value* Machine::make_long(const uint8_t* p, std::size_t n) {
  // Drop redundant sign-extension bytes, then keep it as int64 when it fits.
  while (n > 1) {
    uint8_t last = p[n - 1];
    bool next_negative = (p[n - 2] & 0x80) != 0;
    if ((last == 0x00 && !next_negative) || (last == 0xff && next_negative)) {
      --n;
    } else {
      break;
    }
  }
  if (n == 0) return make_int(0);
  if (n <= 8) {
    uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(p[k]) << (8 * k);
    if (n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);
    return make_int(static_cast<int64_t>(v));
  }
  return make_str(std::string(reinterpret_cast<const char*>(p), n), Kind::big_integer);
}

void Machine::set_items(Value* target, const std::vector<Value*>& kv) {
  if (target->kind != Kind::dict && target->kind != Kind::object) {
    fail(fmt::format("cannot set items on a {}", type_name(target)));
  }
  if (kv.size() % 2 != 0) fail("odd number of values for key/value pairs");
  count_items(kv.size() / 2);
  for (std::size_t k = 0; k < kv.size(); k += 2) dict_set(target, kv[k], kv[k + 1]);
}

void Machine::append_items(Value* target, const std::vector<Value*>& items) {
  if (target->kind != Kind::list && target->kind != Kind::object && target->kind != Kind::set) {
    fail(fmt::format("cannot append to a {}", type_name(target)));
  }
  count_items(items.size());
  target->items.insert(target->items.end(), items.begin(), items.end());
}

std::optional<std::vector<int64_t>> int_sequence(const Value* v) {
  if (v->kind != Kind::tuple && v->kind != Kind::list) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(v->items.size());
  for (const Value* item : v->items) {
    if (item->kind != Kind::integer) return std::nullopt;
    out.push_back(item->i);
  }
  return out;
}

Value* Machine::rebuild_tensor(const std::vector<Value*>& a, int dtype_arg) {
  Value* t = make(Kind::tensor);
  t->tensor = std::make_unique<TensorInfo>();
  TensorInfo& info = *t->tensor;
  std::size_t needed = dtype_arg >= 0 ? static_cast<std::size_t>(dtype_arg) + 1 : 4;
  if (a.size() < needed) {
    info.invalid = fmt::format("rebuild call has {} arguments, expected at least {}", a.size(), needed);
    return t;
  }
  if (a[0]->kind != Kind::storage) {
    info.invalid = fmt::format("rebuild call's storage argument is a {}", type_name(a[0]));
    return t;
  }
  info.storage = a[0];
  if (a[1]->kind != Kind::integer) {
    info.invalid = fmt::format("storage offset is a {}, not an int", type_name(a[1]));
    return t;
  }
  info.offset = a[1]->i;
  auto sizes = int_sequence(a[2]);
  auto strides = int_sequence(a[3]);
  if (!sizes || !strides) {
    info.invalid = fmt::format("size/stride are a {} and a {}, not tuples of ints", type_name(a[2]),
                               type_name(a[3]));
    return t;
  }
  if (sizes->size() != strides->size()) {
    info.invalid = fmt::format("size has {} dimensions but stride has {}", sizes->size(), strides->size());
    return t;
  }
  info.sizes = std::move(*sizes);
  info.strides = std::move(*strides);
  if (dtype_arg >= 0) {
    const Value* d = a[static_cast<std::size_t>(dtype_arg)];
    auto entry = d->kind == Kind::global ? dtype_global(d->s) : std::nullopt;
    if (!entry) {
      info.invalid = fmt::format("dtype argument is a {}", d->kind == Kind::global ? d->s : type_name(d));
      return t;
    }
    info.dtype = entry->dtype;
    info.dtype_name = d->s;
  } else {
    info.dtype = info.storage->storage->dtype;
    info.dtype_name = info.storage->storage->type_name;
  }
  return t;
}

Value* Machine::apply(Value* callable, Value* args, int depth) {
  const std::vector<Value*>& a = args->items;
  auto opaque = [&](std::string class_name) {
    Value* r = make(Kind::object);
    r->s = std::move(class_name);
    r->args = args;
    return r;
  };
  if (callable->kind != Kind::global) return opaque(type_name(callable));
  const std::string& name = callable->s;

  if (name == "collections.OrderedDict" || name == "builtins.dict") {
    Value* d = make(Kind::dict);
    d->flag = name == "collections.OrderedDict";
    if (a.size() == 1 && a[0]->kind == Kind::dict) {
      for (auto& [k, v] : a[0]->entries) dict_set(d, k, v);
    } else if (a.size() == 1 && (a[0]->kind == Kind::list || a[0]->kind == Kind::tuple)) {
      for (Value* pair : a[0]->items) {
        if ((pair->kind == Kind::tuple || pair->kind == Kind::list) && pair->items.size() == 2) {
          dict_set(d, pair->items[0], pair->items[1]);
        }
      }
    }
    return d;
  }
  if (name == "builtins.list" || name == "builtins.tuple" || name == "builtins.set" ||
      name == "builtins.frozenset") {
    Kind kind = name == "builtins.list" ? Kind::list : name == "builtins.tuple" ? Kind::tuple : Kind::set;
    Value* r = make(kind);
    r->flag = name == "builtins.frozenset";
    if (a.size() == 1 &&
        (a[0]->kind == Kind::list || a[0]->kind == Kind::tuple || a[0]->kind == Kind::set)) {
      r->items = a[0]->items;
    }
    return r;
  }
  if ((name == "builtins.bytes" || name == "builtins.bytearray") && a.empty()) {
    return make_str("", Kind::bytes);
  }
  if (name == "_codecs.encode" && a.size() == 2 && a[0]->kind == Kind::str && a[1]->kind == Kind::str &&
      (a[1]->s == "latin1" || a[1]->s == "latin-1")) {
    if (auto bytes = utf8_to_latin1(a[0]->s)) return make_str(std::move(*bytes), Kind::bytes);
    return opaque(name);
  }
  if (name == "torch.Size" && a.size() == 1 && (a[0]->kind == Kind::tuple || a[0]->kind == Kind::list)) {
    return make_seq(Kind::tuple, a[0]->items);
  }
  if (name == "torch._utils._rebuild_tensor" || name == "torch._utils._rebuild_tensor_v2") {
    return rebuild_tensor(a, -1);
  }
  if (name == "torch._utils._rebuild_tensor_v3") return rebuild_tensor(a, 6);
  if ((name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") &&
      !a.empty() && a[0]->kind == Kind::tensor) {
    Value* p = make(Kind::tensor);
    p->tensor = std::make_unique<TensorInfo>(*a[0]->tensor);
    p->tensor->parameter = true;
    return p;
  }
  if (name == "torch._tensor._rebuild_from_type_v2" && a.size() >= 3 && a[2]->kind == Kind::tuple &&
      depth < 8) {
    // (func, new_type, args, state): a tensor subclass, or a tensor with Python attributes.
    Value* r = apply(a[0], a[2], depth + 1);
    if (r->kind == Kind::tensor && a[1]->kind == Kind::global &&
        a[1]->s == "torch.nn.parameter.Parameter") {
      r->tensor->parameter = true;
    }
    return r;
  }
  if (name == "copyreg._reconstructor" && !a.empty() && depth < 8) {
    // (cls, base, state): protocol 0/1 instances.
    return apply(a[0], make(Kind::tuple), depth + 1);
  }
  return opaque(name);
}

Value* Machine::load_storage(const std::vector<Value*>& pid) {
  auto invalid = [&](std::string why) {
    Value* v = make(Kind::storage);
    v->storage = std::make_unique<StorageInfo>();
    v->storage->invalid = std::move(why);
    return v;
  };
  // Zip: ('storage', type, key, location, numel); legacy: the same + view_metadata.
  if (pid.size() != 5 && pid.size() != 6) {
    return invalid(fmt::format("storage persistent id has {} fields, expected 5 or 6", pid.size()));
  }
  if (pid[1]->kind != Kind::global) {
    return invalid(fmt::format("storage type is a {}", type_name(pid[1])));
  }
  std::string key;
  if (pid[2]->kind == Kind::str) {
    key = pid[2]->s;
  } else if (pid[2]->kind == Kind::integer) {
    key = std::to_string(pid[2]->i);
  } else {
    return invalid(fmt::format("storage key is a {}", type_name(pid[2])));
  }
  if (pid[4]->kind != Kind::integer || pid[4]->i < 0) {
    return invalid(fmt::format("storage '{}' has an invalid element count", key));
  }
  Value*& root = ctx_.storages[key];
  if (root == nullptr) {
    root = make(Kind::storage);
    root->storage = std::make_unique<StorageInfo>();
    StorageInfo& info = *root->storage;
    info.key = key;
    info.type_name = pid[1]->s;
    info.numel = pid[4]->i;
    if (auto entry = storage_type(info.type_name)) {
      info.dtype = entry->dtype;
      info.element_size = entry->element_size;
    } else {
      info.element_size = 0;  // unknown: the storage cannot be read (nor walked past)
    }
  }
  if (pid.size() == 6 && pid[5]->kind == Kind::tuple) {
    // Legacy storage view: (view_key, offset, size) in elements of the root storage.
    const auto& view = pid[5]->items;
    if (view.size() != 3 || view[0]->kind != Kind::str || view[1]->kind != Kind::integer ||
        view[2]->kind != Kind::integer || view[1]->i < 0 || view[2]->i < 0) {
      return invalid(fmt::format("storage '{}' has malformed view metadata", key));
    }
    Value*& v = ctx_.storage_views[view[0]->s];
    if (v == nullptr) {
      v = make(Kind::storage);
      v->storage = std::make_unique<StorageInfo>(*root->storage);
      v->storage->is_view = true;
      v->storage->view_offset = view[1]->i;
      v->storage->numel = view[2]->i;
    }
    return v;
  }
  return root;
}

Value* Machine::persistent_load(Value* pid) {
  if (pid->kind == Kind::tuple && !pid->items.empty() && pid->items[0]->kind == Kind::str) {
    const std::string& tag = pid->items[0]->s;
    if (tag == "storage") return load_storage(pid->items);
    if (tag == "module" && pid->items.size() >= 2) return pid->items[1];  // legacy whole-module save
  }
  Value* r = make(Kind::object);
  r->s = "persistent_id";
  r->args = pid;
  return r;
}

Value* Machine::run() {
  while (true) {
    if (pos_ >= size_) {
      throw FormatError(fmt::format("pickle truncated: data ends at offset {} before STOP", pos_));
    }
    op_pos_ = pos_;
    op_ = data_[pos_++];
    switch (op_) {
      case op::PROTO: {
        uint8_t protocol = take(1)[0];
        if (protocol > 5) fail(fmt::format("protocol {} is newer than 5", protocol));
        break;
      }
      case op::FRAME: read_le(8); break;  // frames only group bytes; the opcodes follow inline
      case op::STOP: {
        Value* result = pop();
        return result;
      }
      case op::MARK: marks_.push_back(stack_.size()); break;
      case op::POP:
        if (stack_.size() > floor()) {
          stack_.pop_back();
        } else {
          pop_mark();
        }
        break;
      case op::POP_MARK: pop_mark(); break;
      case op::DUP: push(top()); break;

      case op::NONE: push(make(Kind::none)); break;
      case op::NEWTRUE:
      case op::NEWFALSE: {
        Value* b = make(Kind::boolean);
        b->flag = op_ == op::NEWTRUE;
        push(b);
        break;
      }
      case op::BININT: push(make_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4))))); break;
      case op::BININT1: push(make_int(static_cast<int64_t>(read_le(1)))); break;
      case op::BININT2: push(make_int(static_cast<int64_t>(read_le(2)))); break;
      case op::LONG1: {
        std::size_t n = read_length(1);
        push(make_long(take(n), n));
        break;
      }
      case op::LONG4: {
        std::size_t n = read_length(4);
        push(make_long(take(n), n));
        break;
      }
      case op::INT: {
        std::string text = read_line();
        if (text == "00" || text == "01") {
          Value* b = make(Kind::boolean);
          b->flag = text == "01";
          push(b);
        } else {
          push(make_int(parse_decimal(text)));
        }
        break;
      }
      case op::LONG: push(make_int(parse_decimal(read_line()))); break;
      case op::BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];  // big-endian
        Value* f = make(Kind::floating);
        std::memcpy(&f->f, &bits, sizeof bits);
        push(f);
        break;
      }
      case op::FLOAT: {
        std::string text = read_line();
        Value* f = make(Kind::floating);
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), f->f);
        if (ec != std::errc() || end != text.data() + text.size()) fail(fmt::format("'{}' is not a float", text));
        push(f);
        break;
      }

      case op::SHORT_BINUNICODE: push(make_str(read_string(read_length(1)))); break;
      case op::BINUNICODE: push(make_str(read_string(read_length(4)))); break;
      case op::BINUNICODE8: push(make_str(read_string(read_length(8)))); break;
      // Python 2 str: torch.load decodes them as text.
      case op::SHORT_BINSTRING: push(make_str(read_string(read_length(1)))); break;
      case op::BINSTRING: push(make_str(read_string(read_length(4)))); break;
      case op::SHORT_BINBYTES: push(make_str(read_string(read_length(1)), Kind::bytes)); break;
      case op::BINBYTES: push(make_str(read_string(read_length(4)), Kind::bytes)); break;
      case op::BINBYTES8:
      case op::BYTEARRAY8: push(make_str(read_string(read_length(8)), Kind::bytes)); break;

      case op::EMPTY_LIST: push(make(Kind::list)); break;
      case op::EMPTY_TUPLE: push(make(Kind::tuple)); break;
      case op::EMPTY_DICT: push(make(Kind::dict)); break;
      case op::EMPTY_SET: push(make(Kind::set)); break;
      case op::LIST: push(make_seq(Kind::list, pop_mark())); break;
      case op::TUPLE: push(make_seq(Kind::tuple, pop_mark())); break;
      case op::FROZENSET: {
        Value* s = make_seq(Kind::set, pop_mark());
        s->flag = true;
        push(s);
        break;
      }
      case op::DICT: {
        std::vector<Value*> kv = pop_mark();
        Value* d = make(Kind::dict);
        set_items(d, kv);
        push(d);
        break;
      }
      case op::TUPLE1:
      case op::TUPLE2:
      case op::TUPLE3: {
        std::size_t n = op_ - op::TUPLE1 + 1u;
        std::vector<Value*> items(n);
        for (std::size_t k = n; k-- > 0;) items[k] = pop();
        push(make_seq(Kind::tuple, std::move(items)));
        break;
      }
      case op::APPEND: {
        Value* v = pop();
        append_items(top(), {v});
        break;
      }
      case op::APPENDS:
      case op::ADDITEMS: {
        std::vector<Value*> items = pop_mark();
        append_items(top(), items);
        break;
      }
      case op::SETITEM: {
        Value* v = pop();
        Value* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case op::SETITEMS: {
        std::vector<Value*> kv = pop_mark();
        set_items(top(), kv);
        break;
      }

      case op::BINPUT: memo_put(read_le(1), top()); break;
      case op::LONG_BINPUT: memo_put(read_le(4), top()); break;
      case op::PUT: memo_put(static_cast<uint64_t>(parse_decimal(read_line())), top()); break;
      case op::MEMOIZE: {
        Value* v = top();
        uint64_t key = memo_.size();
        memo_put(key, v);
        break;
      }
      case op::BINGET: push(memo_get(read_le(1))); break;
      case op::LONG_BINGET: push(memo_get(read_le(4))); break;
      case op::GET: push(memo_get(static_cast<uint64_t>(parse_decimal(read_line())))); break;

      case op::GLOBAL: {
        std::string module = read_line();
        std::string name = read_line();
        push(make_global(module, name));
        break;
      }
      case op::STACK_GLOBAL: {
        Value* name = pop();
        Value* module = pop();
        if (module->kind != Kind::str || name->kind != Kind::str) fail("module and name must be strings");
        push(make_global(module->s, name->s));
        break;
      }
      case op::REDUCE: {
        Value* args = pop();
        Value* callable = pop();
        if (args->kind != Kind::tuple) fail(fmt::format("arguments are a {}, not a tuple", type_name(args)));
        push(apply(callable, args, 0));
        break;
      }
      case op::NEWOBJ: {
        Value* args = pop();
        Value* cls = pop();
        if (args->kind != Kind::tuple) fail(fmt::format("arguments are a {}, not a tuple", type_name(args)));
        push(apply(cls, args, 0));
        break;
      }
      case op::NEWOBJ_EX: {
        pop();  // keyword arguments
        Value* args = pop();
        Value* cls = pop();
        if (args->kind != Kind::tuple) fail(fmt::format("arguments are a {}, not a tuple", type_name(args)));
        push(apply(cls, args, 0));
        break;
      }
      case op::OBJ: {
        std::vector<Value*> items = pop_mark();
        if (items.empty()) fail("no class to instantiate");
        Value* cls = items.front();
        push(apply(cls, make_seq(Kind::tuple, std::vector<Value*>(items.begin() + 1, items.end())), 0));
        break;
      }
      case op::INST: {
        std::string module = read_line();
        std::string name = read_line();
        Value* cls = make_global(module, name);
        push(apply(cls, make_seq(Kind::tuple, pop_mark()), 0));
        break;
      }
      case op::BUILD: {
        Value* state = pop();
        Value* target = top();
        // Tensors' and containers' BUILD (e.g. OrderedDict's _metadata) carries nothing we use.
        if (target->kind == Kind::object || target->kind == Kind::dict) target->state = state;
        break;
      }
      case op::BINPERSID: {
        Value* pid = pop();
        push(persistent_load(pid));
        break;
      }
      case op::PERSID: push(persistent_load(make_str(read_line()))); break;

      case op::STRING:
      case op::UNICODE:
      case op::EXT1:
      case op::EXT2:
      case op::EXT4:
      case op::NEXT_BUFFER:
      case op::READONLY_BUFFER:
        throw FormatError(fmt::format("pickle opcode 0x{:02x} ({}) at offset {} not supported", op_,
                                      opcode_name(op_), op_pos_));
      default:
        throw FormatError(fmt::format("pickle opcode 0x{:02x} at offset {} unknown", op_, op_pos_));
    }
  }
}

}  // namespace

Value* Context::make(Kind kind) {
  if (values_.size() >= kMaxValues) {
    throw FormatError(fmt::format("the pickle builds more than {} objects; a checkpoint's pickle holds far fewer "
                                  "(its tensors' data are stored apart)",
                                  kMaxValues));
  }
  return &values_.emplace_back(kind);
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::int64: return "int64";
    case DType::int32: return "int32";
    case DType::int16: return "int16";
    case DType::int8: return "int8";
    case DType::uint8: return "uint8";
    case DType::boolean: return "bool";
    case DType::complex64: return "complex64";
    case DType::complex128: return "complex128";
  }
  return "?";
}

int64_t element_size(DType dtype) {
  switch (dtype) {
    case DType::float64:
    case DType::int64:
    case DType::complex64: return 8;
    case DType::float32:
    case DType::int32: return 4;
    case DType::float16:
    case DType::bfloat16:
    case DType::int16: return 2;
    case DType::int8:
    case DType::uint8:
    case DType::boolean: return 1;
    case DType::complex128: return 16;
  }
  return 1;
}

Value* unpickle(Context& context, const uint8_t* data, std::size_t size, std::size_t& pos) {
  if (pos > size) throw FormatError(fmt::format("pickle starts at offset {}, past the end ({})", pos, size));
  Machine machine(context, data, size, pos);
  Value* result = machine.run();
  pos = machine.position();
  return result;
}

std::string type_name(const Value* v) {
  switch (v->kind) {
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer:
    case Kind::big_integer: return "int";
    case Kind::floating: return "float";
    case Kind::str: return "str";
    case Kind::bytes: return "bytes";
    case Kind::list: return "list";
    case Kind::tuple: return "tuple";
    case Kind::set: return v->flag ? "frozenset" : "set";
    case Kind::dict: return v->flag ? "collections.OrderedDict" : "dict";
    case Kind::global: return dtype_global(v->s) ? "torch.dtype" : "type";
    case Kind::object: return v->s;
    case Kind::storage: return v->storage->type_name.empty() ? "storage" : v->storage->type_name;
    case Kind::tensor: return v->tensor->parameter ? "torch.nn.parameter.Parameter" : "torch.Tensor";
  }
  return "?";
}

std::string key_text(const Value* key) {
  switch (key->kind) {
    case Kind::str: return key->s;
    case Kind::integer: return std::to_string(key->i);
    case Kind::boolean: return key->flag ? "True" : "False";
    case Kind::none: return "None";
    case Kind::floating: return fmt::format("{}", key->f);
    default: return "<" + type_name(key) + ">";
  }
}

void dict_set(Value* dict, Value* key, Value* value) {
  std::string canonical;
  if (!hash_key(key, canonical, 0)) {
    dict->entries.emplace_back(key, value);
    return;
  }
  if (!dict->index) dict->index = std::make_unique<std::unordered_map<std::string, std::size_t>>();
  auto [it, inserted] = dict->index->emplace(std::move(canonical), dict->entries.size());
  if (inserted) {
    dict->entries.emplace_back(key, value);
  } else {
    dict->entries[it->second].second = value;  // Python keeps the first key and its position
  }
}

Value* dict_get(const Value* dict, const std::string& key) {
  if (!dict->index) return nullptr;
  auto it = dict->index->find(fmt::format("s{}:", key.size()) + key);
  return it == dict->index->end() ? nullptr : dict->entries[it->second].second;
}

std::optional<TypeEntry> storage_type(const std::string& dotted_name) {
  auto [module, name] = split_dotted(dotted_name);
  if (module != "torch" && module != "torch.cuda" && module != "torch.storage") return std::nullopt;
  const auto& table = storage_types();
  auto it = table.find(name);
  if (it == table.end()) return std::nullopt;
  return it->second;
}

std::optional<TypeEntry> dtype_global(const std::string& dotted_name) {
  auto [module, name] = split_dotted(dotted_name);
  if (module != "torch") return std::nullopt;
  const auto& table = dtype_names();
  auto it = table.find(name);
  if (it == table.end()) return std::nullopt;
  return it->second;
}

}  // namespace neurobolt::pickle
