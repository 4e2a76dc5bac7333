#pragma once

#include <string>

namespace torgw::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction unless
// TORGW_KEEP_TMP is set (for post-mortems of failed integration runs).
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace torgw::testing
