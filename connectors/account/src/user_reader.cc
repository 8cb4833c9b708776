#include "user_reader.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace idsync::account::wire {
namespace {

using mapping::AccountRecord;
using mapping::AccountUser;
using nlohmann::json;

// Receives nlohmann::json's SAX events. Containers are tracked on a stack
// of frames; a key names what the next value is for.
class UserReader {
 public:
  enum class Root : std::uint8_t { kPage, kUser };

  UserReader(Root root, const UserSink& sink) : root_(root), sink_(sink) {}

  Status Finish(std::optional<std::string>* next_cursor) {
    if (!error_.ok()) return error_;
    if (root_ == Root::kPage && !users_seen_) return InternalError("missing \"users\" array");
    if (next_cursor != nullptr) *next_cursor = std::move(cursor_);
    return Status::Ok();
  }

  // --- the SAX interface ---
  bool null() { return Value(Kind::kNull, nullptr); }
  bool boolean(bool) { return Value(Kind::kOther, nullptr); }
  bool number_integer(json::number_integer_t) { return Value(Kind::kOther, nullptr); }
  bool number_unsigned(json::number_unsigned_t) { return Value(Kind::kOther, nullptr); }
  bool number_float(json::number_float_t, const std::string&) {
    return Value(Kind::kOther, nullptr);
  }
  bool string(std::string& text) { return Value(Kind::kString, &text); }
  bool binary(json::binary_t&) { return Value(Kind::kOther, nullptr); }
  bool start_object(std::size_t) { return Value(Kind::kObject, nullptr); }
  bool start_array(std::size_t) { return Value(Kind::kArray, nullptr); }
  bool end_object() { return End(); }
  bool end_array() { return End(); }
  bool key(std::string& name);
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    if (error_.ok()) error_ = InternalError("answer is not JSON");
    return false;
  }

 private:
  enum class Kind : std::uint8_t { kNull, kString, kObject, kArray, kOther };
  enum class Frame : std::uint8_t { kPage, kUsers, kUser, kPermissions, kProjects, kSkip };
  enum class Field : std::uint8_t {
    kIgnore,
    kUsers,
    kCursor,
    kId,
    kEmail,
    kName,
    kRole,
    kStatus,
    kCreatedAt,
    kUpdatedAt,
    kPermissions,
    kProjects,
  };

  // The members of a User object idsync reads; others are skipped.
  struct UserField {
    std::string_view name;
    Field field;
  };
  static constexpr UserField kUserFields[] = {
      {"id", Field::kId},
      {"email", Field::kEmail},
      {"name", Field::kName},
      {"role", Field::kRole},
      {"status", Field::kStatus},
      {"permissions", Field::kPermissions},
      {"projects", Field::kProjects},
      {"created_at", Field::kCreatedAt},
      {"updated_at", Field::kUpdatedAt},
  };

  // A string member of a user: its text and whether it was given (null is
  // not given).
  struct Text {
    std::string value;
    bool given = false;
  };

  bool Value(Kind kind, std::string* text);
  bool UserValue(Kind kind, std::string* text);
  bool PermissionValue(Kind kind, std::string* text);
  bool End();
  void BeginUser();
  bool FinishUser();
  Text* TextField(Field field);
  bool Fail(std::string message) {
    if (error_.ok()) error_ = InternalError(std::move(message));
    return false;
  }
  // Steps over a value nobody asked for.
  bool Skip(Kind kind) {
    if (kind == Kind::kObject || kind == Kind::kArray) frames_.push_back(Frame::kSkip);
    return true;
  }
  // A problem to be named with the user's id, known only once the user ends.
  void Defer(std::string problem) {
    if (deferred_.empty()) deferred_ = std::move(problem);
  }

  const Root root_;
  const UserSink sink_;
  Status error_;
  std::vector<Frame> frames_;
  Field field_ = Field::kIgnore;
  bool users_seen_ = false;
  std::optional<std::string> cursor_;

  // The user being read.
  Text id_, email_, name_, role_, status_, created_at_, updated_at_;
  std::vector<std::string> projects_;
  std::string deferred_;
  // Its permission map: keys in a pool reused from user to user, so that
  // the compact form costs no allocation per key.
  std::vector<std::string> permission_keys_;
  std::vector<mapping::Level> permission_levels_;
  std::size_t permissions_ = 0;
  std::size_t permission_key_ = 0;  // the key the next level is for
  std::vector<std::pair<std::string_view, mapping::Level>> expand_;
};

bool UserReader::key(std::string& name) {
  if (frames_.empty()) return true;
  switch (frames_.back()) {
    case Frame::kPage:
      field_ = name == "users"         ? Field::kUsers
               : name == "next_cursor" ? Field::kCursor
                                       : Field::kIgnore;
      return true;
    case Frame::kUser:
      field_ = Field::kIgnore;
      for (const UserField& f : kUserFields) {
        if (f.name == name) field_ = f.field;
      }
      return true;
    case Frame::kPermissions:
      // A key given twice is applied twice, the last level winning, as a
      // map would keep it.
      if (permissions_ == permission_keys_.size()) {
        permission_keys_.emplace_back();
        permission_levels_.emplace_back();
      }
      permission_keys_[permissions_].assign(name);
      permission_levels_[permissions_] = mapping::Level::kNone;
      permission_key_ = permissions_++;
      return true;
    default:
      return true;
  }
}

bool UserReader::Value(Kind kind, std::string* text) {
  if (frames_.empty()) {
    if (kind != Kind::kObject) return Fail("answer is not a JSON object");
    frames_.push_back(root_ == Root::kPage ? Frame::kPage : Frame::kUser);
    if (root_ == Root::kUser) BeginUser();
    return true;
  }
  switch (frames_.back()) {
    case Frame::kSkip:
      return Skip(kind);
    case Frame::kPage:
      if (field_ == Field::kUsers) {
        if (kind != Kind::kArray) return Fail("missing \"users\" array");
        if (users_seen_) return Fail("\"users\" is given twice");
        users_seen_ = true;
        frames_.push_back(Frame::kUsers);
        return true;
      }
      if (field_ == Field::kCursor) {
        if (kind == Kind::kNull) {
          cursor_.reset();
        } else if (kind == Kind::kString) {
          cursor_ = *text;
        } else {
          return Fail("\"next_cursor\" is not a string");
        }
        return true;
      }
      return Skip(kind);
    case Frame::kUsers:
      if (kind != Kind::kObject) return Fail("a user is not a JSON object");
      frames_.push_back(Frame::kUser);
      BeginUser();
      return true;
    case Frame::kUser:
      return UserValue(kind, text);
    case Frame::kPermissions:
      return PermissionValue(kind, text);
    case Frame::kProjects:
      if (kind != Kind::kString) return Fail("\"projects\" holds a non-string");
      projects_.push_back(*text);
      return true;
  }
  return true;
}

UserReader::Text* UserReader::TextField(Field field) {
  switch (field) {
    case Field::kId:
      return &id_;
    case Field::kEmail:
      return &email_;
    case Field::kName:
      return &name_;
    case Field::kRole:
      return &role_;
    case Field::kStatus:
      return &status_;
    case Field::kCreatedAt:
      return &created_at_;
    case Field::kUpdatedAt:
      return &updated_at_;
    default:
      return nullptr;
  }
}

bool UserReader::UserValue(Kind kind, std::string* text) {
  if (Text* field = TextField(field_)) {
    if (kind == Kind::kNull) {
      field->value.clear();
      field->given = false;
      return true;
    }
    if (kind != Kind::kString) {
      std::string_view name;
      for (const UserField& f : kUserFields) {
        if (f.field == field_) name = f.name;
      }
      return Fail("\"" + std::string(name) + "\" is not a string");
    }
    field->value.assign(*text);
    field->given = true;
    return true;
  }
  switch (field_) {
    case Field::kPermissions:
      if (kind == Kind::kNull) return true;
      if (kind != Kind::kObject) {
        Defer("permissions not an object");
        return Skip(kind);
      }
      // As a document would: a second map replaces the first.
      permissions_ = 0;
      frames_.push_back(Frame::kPermissions);
      return true;
    case Field::kProjects:
      projects_.clear();
      if (kind == Kind::kNull) return true;
      if (kind != Kind::kArray) return Fail("\"projects\" is not an array");
      frames_.push_back(Frame::kProjects);
      return true;
    default:
      return Skip(kind);
  }
}

bool UserReader::PermissionValue(Kind kind, std::string* text) {
  std::optional<mapping::Level> level;
  if (kind == Kind::kString) level = mapping::ParseLevel(*text);
  if (!level) {
    Defer("bad level for \"" + permission_keys_[permission_key_] + "\"");
    return Skip(kind);
  }
  permission_levels_[permission_key_] = *level;
  return true;
}

bool UserReader::End() {
  if (frames_.empty()) return true;
  const Frame frame = frames_.back();
  frames_.pop_back();
  if (frame == Frame::kUser) return FinishUser();
  return true;
}

void UserReader::BeginUser() {
  for (Text* t : {&id_, &email_, &name_, &role_, &status_, &created_at_, &updated_at_}) {
    t->value.clear();
    t->given = false;
  }
  projects_.clear();
  deferred_.clear();
  permissions_ = 0;
}

bool UserReader::FinishUser() {
  // The checks, and their order, of the account contract's User.
  if (!id_.given) return Fail("missing \"id\"");
  if (id_.value.empty()) return Fail("a user has an empty \"id\"");
  if (!email_.given) return Fail("missing \"email\"");
  if (!role_.given) return Fail("missing \"role\"");
  mapping::Role role;
  if (role_.value == "admin") {
    role = mapping::Role::kAdmin;
  } else if (role_.value == "member") {
    role = mapping::Role::kMember;
  } else {
    return Fail("user " + id_.value + " has unknown role \"" + role_.value + "\"");
  }
  AccountUser::Status status;
  if (status_.value == "active") {
    status = AccountUser::Status::kActive;
  } else if (status_.value == "invited" || status_.value.empty()) {
    status = AccountUser::Status::kInvited;
  } else {
    return Fail("user " + id_.value + " has unknown status \"" + status_.value + "\"");
  }
  if (!deferred_.empty()) return Fail("user " + id_.value + ": " + deferred_);

  if (sink_.compact != nullptr) {
    AccountUser user;
    user.id = std::move(id_.value);
    user.email = std::move(email_.value);
    user.name = std::move(name_.value);
    user.role = role;
    user.status = status;
    expand_.clear();
    for (std::size_t i = 0; i < permissions_; ++i) {
      expand_.emplace_back(permission_keys_[i], permission_levels_[i]);
    }
    user.levels = sink_.catalog->ExpandLenientKeys(expand_);
    std::sort(projects_.begin(), projects_.end());
    projects_.erase(std::unique(projects_.begin(), projects_.end()), projects_.end());
    user.projects = std::move(projects_);
    sink_.compact->push_back(std::move(user));
  } else {
    AccountRecord record;
    record.id = std::move(id_.value);
    record.email = std::move(email_.value);
    record.name = std::move(name_.value);
    record.role = role;
    record.status = status;
    for (std::size_t i = 0; i < permissions_; ++i) {
      record.permissions[permission_keys_[i]] = permission_levels_[i];
    }
    record.projects = std::move(projects_);
    record.created_at = std::move(created_at_.value);
    record.updated_at = std::move(updated_at_.value);
    sink_.records->push_back(std::move(record));
  }
  projects_ = {};
  return true;
}

}  // namespace

Status ReadUserPage(std::string_view body, const UserSink& sink,
                    std::optional<std::string>* next_cursor) {
  UserReader reader(UserReader::Root::kPage, sink);
  json::sax_parse(body.begin(), body.end(), &reader);
  return reader.Finish(next_cursor);
}

Result<mapping::AccountRecord> ReadUser(std::string_view body) {
  std::vector<AccountRecord> records;
  UserSink sink;
  sink.records = &records;
  UserReader reader(UserReader::Root::kUser, sink);
  json::sax_parse(body.begin(), body.end(), &reader);
  RETURN_IF_ERROR(reader.Finish(nullptr));
  if (records.size() != 1) return InternalError("answer is not a JSON object");
  return std::move(records.front());
}

}  // namespace idsync::account::wire
