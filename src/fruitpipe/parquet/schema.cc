#include "fruitpipe/parquet/schema.h"

#include "fruitpipe/common/error.h"

namespace fruitpipe::parquet {

using format::ConvertedType;
using format::LogicalKind;
using format::Repetition;
using format::SchemaElement;
using format::Type;

namespace {

// Real schemas nest a few levels; the bound keeps a hostile one from exhausting the stack.
constexpr int kMaxSchemaDepth = 64;

struct Node {
  const SchemaElement* element = nullptr;
  std::vector<Node> children;
  std::size_t num_leaves = 0;
};

class TreeBuilder {
 public:
  TreeBuilder(const std::vector<SchemaElement>& schema, std::string_view what)
      : schema_(schema), what_(what) {}

  Node Build() {
    if (schema_.empty()) Fail("empty schema");
    const SchemaElement& root = schema_[0];
    if (root.type) Fail("the schema root is a primitive column");
    Node node = Parse(0);
    if (pos_ != schema_.size()) Fail("schema has elements outside the tree");
    return node;
  }

 private:
  [[noreturn]] void Fail(const std::string& cause) const {
    throw CorruptionError(std::string(what_) + ": corrupt schema: " + cause);
  }

  Node Parse(int depth) {
    if (depth > kMaxSchemaDepth) Fail("nested too deeply");
    if (pos_ >= schema_.size()) Fail("a group has more children than elements left");
    Node node;
    node.element = &schema_[pos_++];
    const SchemaElement& e = *node.element;
    if (depth > 0 && !e.repetition_type) Fail("field '" + e.name + "' has no repetition type");
    if (e.repetition_type && (static_cast<int>(*e.repetition_type) < 0 || static_cast<int>(*e.repetition_type) > 2)) {
      Fail("field '" + e.name + "' has an unknown repetition type");
    }
    if (e.type) {
      if (e.num_children && *e.num_children != 0) Fail("primitive field '" + e.name + "' has children");
      node.num_leaves = 1;
      return node;
    }
    if (!e.num_children || *e.num_children < 0) Fail("group '" + e.name + "' has no child count");
    const auto n = static_cast<std::size_t>(*e.num_children);
    if (n > schema_.size() - pos_) Fail("group '" + e.name + "' has more children than elements left");
    node.children.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      node.children.push_back(Parse(depth + 1));
      node.num_leaves += node.children.back().num_leaves;
    }
    return node;
  }

  const std::vector<SchemaElement>& schema_;
  std::string_view what_;
  std::size_t pos_ = 0;
};

bool Is(const SchemaElement& e, Repetition r) { return e.repetition_type && *e.repetition_type == r; }

bool IsStringLike(const SchemaElement& e) {
  if (e.logical_type && e.logical_type->raw_id != 0) {
    const LogicalKind k = e.logical_type->kind;
    return k == LogicalKind::kString || k == LogicalKind::kEnum || k == LogicalKind::kJson;
  }
  if (e.converted_type) {
    const ConvertedType c = *e.converted_type;
    return c == ConvertedType::kUtf8 || c == ConvertedType::kEnum || c == ConvertedType::kJson;
  }
  return true;  // plain BYTE_ARRAY: bytes, which std::string holds as they are
}

// Signed integers of at most `bits` bits that need no conversion.
bool IsPlainSignedInt(const SchemaElement& e, int bits) {
  if (e.logical_type && e.logical_type->raw_id != 0) {
    return e.logical_type->kind == LogicalKind::kInteger && e.logical_type->int_signed &&
           e.logical_type->int_bit_width <= bits;
  }
  if (e.converted_type) {
    const ConvertedType c = *e.converted_type;
    if (bits == 32) return c == ConvertedType::kInt8 || c == ConvertedType::kInt16 || c == ConvertedType::kInt32;
    return c == ConvertedType::kInt64;
  }
  return true;
}

bool IsListAnnotated(const SchemaElement& e) {
  return (e.converted_type && *e.converted_type == ConvertedType::kList) ||
         (e.logical_type && e.logical_type->kind == LogicalKind::kList);
}

std::string PhysicalName(Type t) {
  switch (t) {
    case Type::kBoolean: return "boolean";
    case Type::kInt32: return "int32";
    case Type::kInt64: return "int64";
    case Type::kInt96: return "int96";
    case Type::kFloat: return "float";
    case Type::kDouble: return "double";
    case Type::kByteArray: return "byte_array";
    case Type::kFixedLenByteArray: return "fixed_len_byte_array";
  }
  return "type " + std::to_string(static_cast<int>(t));
}

void Unsupported(ColumnSchema* c, const std::string& what) {
  c->kind = ColumnKind::kUnsupported;
  c->description = "unsupported (" + what + ")";
}

void ClassifyScalar(const SchemaElement& e, ColumnSchema* c) {
  if (Is(e, Repetition::kRepeated)) return Unsupported(c, "repeated " + PhysicalName(*e.type));
  c->optional = Is(e, Repetition::kOptional);
  c->max_def = c->optional ? 1 : 0;
  c->max_rep = 0;
  c->physical = *e.type;
  const std::string suffix = c->optional ? " (nullable)" : "";
  switch (*e.type) {
    case Type::kByteArray:
      if (!IsStringLike(e)) return Unsupported(c, "annotated byte_array");
      c->kind = ColumnKind::kString;
      c->description = "string" + suffix;
      return;
    case Type::kInt32:
      if (!IsPlainSignedInt(e, 32)) return Unsupported(c, "annotated int32");
      c->kind = ColumnKind::kInt32;
      c->description = "int32" + suffix;
      return;
    case Type::kInt64:
      if (!IsPlainSignedInt(e, 64)) return Unsupported(c, "annotated int64");
      c->kind = ColumnKind::kInt64;
      c->description = "int64" + suffix;
      return;
    case Type::kDouble:
      if (e.logical_type && e.logical_type->raw_id != 0) return Unsupported(c, "annotated double");
      c->kind = ColumnKind::kDouble;
      c->description = "double" + suffix;
      return;
    default:
      return Unsupported(c, PhysicalName(*e.type));
  }
}

// The LIST forms of LogicalTypes.md: a (LIST)-annotated group holding one repeated field,
// which is the element itself (2-level, legacy) or a group of exactly one element field
// (the standard 3-level form).
void ClassifyList(const Node& outer, ColumnSchema* c) {
  const SchemaElement& o = *outer.element;
  if (Is(o, Repetition::kRepeated)) return Unsupported(c, "repeated group");
  if (outer.children.size() != 1) return Unsupported(c, "list with " + std::to_string(outer.children.size()) + " fields");
  const Node& rep = outer.children[0];
  if (!Is(*rep.element, Repetition::kRepeated)) return Unsupported(c, "list without a repeated field");
  const Node* elem = &rep;
  bool elem_optional = false;
  if (!rep.element->type) {
    if (rep.children.size() != 1) return Unsupported(c, "list of structs");
    elem = &rep.children[0];
    if (Is(*elem->element, Repetition::kRepeated)) return Unsupported(c, "list of repeated fields");
    elem_optional = Is(*elem->element, Repetition::kOptional);
  }
  if (!elem->element->type) return Unsupported(c, "nested list");
  const Type t = *elem->element->type;
  if (t != Type::kFloat && t != Type::kDouble) return Unsupported(c, "list<" + PhysicalName(t) + ">");
  if (elem->element->logical_type && elem->element->logical_type->raw_id != 0) {
    return Unsupported(c, "list of annotated " + PhysicalName(t));
  }
  const int outer_optional = Is(o, Repetition::kOptional) ? 1 : 0;
  c->kind = t == Type::kFloat ? ColumnKind::kFloatList : ColumnKind::kDoubleList;
  c->description = t == Type::kFloat ? "list<float>" : "list<double>";
  c->physical = t;
  c->optional = outer_optional != 0;
  c->def_empty_list = outer_optional;
  c->max_def = outer_optional + 1 + (elem_optional ? 1 : 0);
  c->max_rep = 1;
  c->leaf_path.push_back(rep.element->name);
  if (elem != &rep) c->leaf_path.push_back(elem->element->name);
}

}  // namespace

FileSchema InterpretSchema(const std::vector<SchemaElement>& schema, std::string_view what) {
  const Node root = TreeBuilder(schema, what).Build();
  FileSchema fs;
  fs.num_leaves = root.num_leaves;
  std::size_t leaf = 0;
  for (const Node& field : root.children) {
    ColumnSchema c;
    c.name = field.element->name;
    c.first_leaf = leaf;
    c.num_leaves = field.num_leaves;
    c.leaf_path.push_back(c.name);
    leaf += field.num_leaves;
    if (field.element->type) {
      ClassifyScalar(*field.element, &c);
    } else if (IsListAnnotated(*field.element)) {
      ClassifyList(field, &c);
    } else {
      Unsupported(&c, field.num_leaves == 0 ? "empty group" : "group");
    }
    if (c.kind != ColumnKind::kUnsupported && c.num_leaves != 1) Unsupported(&c, "several leaves");
    fs.columns.push_back(std::move(c));
  }
  return fs;
}

}  // namespace fruitpipe::parquet
