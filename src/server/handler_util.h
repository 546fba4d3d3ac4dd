#pragma once
// Shared by the HTTP handlers: every handler's errors become OpenAI-style JSON bodies with the right status.
#include <httplib.h>

#include "lora/adapter_registry.h"
#include "server/api_error.h"

namespace hylora::server {

inline void send_error(httplib::Response& res, int status, const std::string& type, const std::string& message,
                       const std::string& param = {}) {
  res.status = status;
  res.set_content(error_body(status, type, message, param), "application/json");
}

inline int adapter_status(lora::AdapterError::Kind k) {
  switch (k) {
    case lora::AdapterError::Kind::kNotFound:
    case lora::AdapterError::Kind::kUnloading: return 404;
    case lora::AdapterError::Kind::kExists: return 409;
    default: return 400;
  }
}

// Every handler's errors become JSON bodies: a bad request never escapes as an exception.
template <typename F>
void guarded(httplib::Response& res, F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    send_error(res, e.status(), e.type(), e.what(), e.param());
  } catch (const lora::AdapterError& e) {
    send_error(res, adapter_status(e.kind()), e.kind() == lora::AdapterError::Kind::kNotFound ? "not_found_error"
                                                                                              : "invalid_request_error",
               e.what());
  } catch (const Error& e) {
    send_error(res, 400, "invalid_request_error", e.what());
  } catch (const std::exception& e) {
    send_error(res, 500, "server_error", e.what());
  }
}

}  // namespace hylora::server
