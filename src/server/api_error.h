#pragma once
// An error that becomes an OpenAI-style JSON body: {"error": {"message", "type", "param", "code"}}.
#include <string>

#include "core/error.h"

namespace hylora::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::string param = {})
      : Error(message), status_(status), type_(std::move(type)), param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }

 private:
  int status_;
  std::string type_, param_;
};

inline ApiError bad_request(const std::string& message, const std::string& param = {}) {
  return ApiError(400, "invalid_request_error", message, param);
}

// The JSON text of an error body.
std::string error_body(int status, const std::string& type, const std::string& message, const std::string& param = {});

}  // namespace hylora::server
