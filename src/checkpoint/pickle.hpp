#pragma once
// A small pickle virtual machine for what `torch.save` writes (internal to libneurobolt).
//
// Python objects become `pickle::Value`s owned by a `pickle::Context` (an arena: values point at
// each other with plain pointers, so cycles and deep nesting cost nothing on destruction).
// Containers and the classes torch checkpoints use are understood; every other class becomes an
// opaque `object` that records its dotted class name, constructor arguments and BUILD state.
// Tensors are not read here: a tensor value records its storage, offset, sizes and strides, and
// the caller reads only the storages it needs.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace neurobolt::pickle {

// The element types a checkpoint's tensors may have and this reader returns (torch-free; the
// LibTorch side maps them onto c10::ScalarType).
enum class DType { float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, boolean, complex64, complex128 };

// "float32", "int64", ... as torch names them (without "torch.").
const char* dtype_name(DType dtype);
int64_t element_size(DType dtype);

enum class Kind {
  none,
  boolean,
  integer,      // fits int64: `i`
  big_integer,  // does not fit int64: `s` holds the minimal little-endian two's complement bytes
  floating,
  str,    // UTF-8 in `s`
  bytes,  // raw bytes in `s`
  list,   // `items`
  tuple,  // `items`
  set,    // `items` (set or frozenset)
  dict,   // `entries`, in insertion order; `ordered` for collections.OrderedDict
  global,   // a class or function referenced by name: `s` = "module.name"
  object,   // an instance of another class: `s` = dotted class name, `args`, `state`, items/entries
  storage,  // a torch storage (persistent id): `storage`
  tensor,   // a torch tensor: `tensor`
};

struct Value;

struct StorageInfo {
  std::string key;        // archive key ("0" for data/0) or legacy root key
  std::string type_name;  // e.g. "torch.FloatStorage"
  std::optional<DType> dtype;  // nullopt: a storage type this reader does not support
  int64_t element_size = 1;
  int64_t numel = 0;        // declared element count
  int64_t view_offset = 0;  // legacy storage views: offset into the root storage, in elements
  bool is_view = false;
  std::string invalid;  // non-empty: the persistent id was malformed, and how
};

struct TensorInfo {
  Value* storage = nullptr;
  int64_t offset = 0;  // in elements of `dtype`
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  std::optional<DType> dtype;  // nullopt: unsupported (dtype_name says which)
  std::string dtype_name;
  bool parameter = false;
  std::string invalid;  // non-empty: the rebuild call was malformed, and how
};

struct Value {
  explicit Value(Kind k) : kind(k) {}
  Kind kind;
  bool flag = false;  // boolean: the value; dict: ordered (OrderedDict); set: frozen
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<Value*> items;
  std::vector<std::pair<Value*, Value*>> entries;
  std::unique_ptr<std::unordered_map<std::string, std::size_t>> index;  // dict: key -> entry
  Value* args = nullptr;   // object: constructor arguments (a tuple)
  Value* state = nullptr;  // object or dict: what BUILD gave
  std::unique_ptr<StorageInfo> storage;
  std::unique_ptr<TensorInfo> tensor;
};

// Owns every value of one file's pickles, and the storages they reference by key.
// Bounds on what one file's pickles may build (a crafted pickle of a few MB could otherwise
// build tens of GB of objects); real checkpoints stay orders of magnitude below them.
constexpr std::size_t kMaxValues = 2'000'000;
constexpr std::size_t kMaxStack = 8'000'000;
constexpr std::size_t kMaxMemo = 2'000'000;
constexpr std::size_t kMaxItems = 16'000'000;

class Context {
 public:
  Value* make(Kind kind);
  // Storages by key (roots) and legacy views by view key.
  std::map<std::string, Value*> storages;
  std::map<std::string, Value*> storage_views;

 private:
  std::deque<Value> values_;
};

// Runs the pickle that starts at `data[pos]` up to its STOP and returns the object it built;
// `pos` is left just after STOP. Offsets in messages are indices into `data`. Throws
// FormatError ("pickle opcode 0x.. at offset N unknown", "pickle truncated ...").
Value* unpickle(Context& context, const uint8_t* data, std::size_t size, std::size_t& pos);

// The Python type name of a value, as a user would recognise it: "dict", "int", "NoneType",
// "collections.OrderedDict", "argparse.Namespace", "torch.Tensor", "torch.dtype", ...
std::string type_name(const Value* value);

// A dict key as text: strings as they are, numbers in decimal, others as "<type>".
std::string key_text(const Value* key);

// Adds or replaces `key` in a dict (or an object's dict items), keeping insertion order.
void dict_set(Value* dict, Value* key, Value* value);

// The value stored under a string key of a dict, or nullptr.
Value* dict_get(const Value* dict, const std::string& key);

// Storage type ("torch.FloatStorage", "torch.cuda.HalfStorage", "torch.UntypedStorage") and
// dtype ("torch.float32", "torch.half") names.
struct TypeEntry {
  std::optional<DType> dtype;
  int64_t element_size;
};
std::optional<TypeEntry> storage_type(const std::string& dotted_name);
std::optional<TypeEntry> dtype_global(const std::string& dotted_name);

}  // namespace neurobolt::pickle
