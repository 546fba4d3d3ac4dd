// HTTP body parsing (issue 11): a body is parsed under the same depth and size limits as every outside JSON
// (core/json_limits.h), and each refusal is a 400 whose message names the limit; the server keeps serving.
#include <gtest/gtest.h>

#include <string>

#include "core/json_limits.h"
#include "server/api_error.h"
#include "server/json_body.h"

namespace hylora::server {
namespace {

// The ApiError a body gets, as "status: message"; "ok" when it parses.
std::string refusal(const std::string& body, std::size_t max_bytes = 1u << 20) {
  try {
    parse_json_body(body, max_bytes);
    return "ok";
  } catch (const ApiError& e) {
    return std::to_string(e.status()) + ": " + e.what();
  }
}

std::string nested(int depth) { return "{\"x\":" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}"; }

TEST(JsonBody, NestingPastTheLimitIsA400NamingIt) {
  const int limit = json_limits::kMaxDepth;
  EXPECT_EQ(refusal(nested(limit)), "ok");
  const std::string r = refusal(nested(limit + 1));
  EXPECT_EQ(r.rfind("400: request body: JSON nesting depth is over the limit of 64", 0), 0u) << r;
  // 100k deep: refused by the linear scan, never handed to the parser (it was a stack overflow before issue 11).
  EXPECT_EQ(refusal(nested(100000)).rfind("400: request body: JSON nesting depth", 0), 0u);
}

TEST(JsonBody, BodyOverTheSizeLimitIsA400NamingIt) {
  const std::string body = R"({"input_ids": [1, 2, 3], "pad": ")" + std::string(200, 'x') + "\"}";
  EXPECT_EQ(refusal(body, body.size()), "ok");
  const std::string r = refusal(body, body.size() - 1);
  EXPECT_NE(r.find("400: request body: " + std::to_string(body.size()) + " bytes is over the JSON size limit of " +
                   std::to_string(body.size() - 1)),
            std::string::npos)
      << r;
}

TEST(JsonBody, InvalidJsonAndNonObjectsAre400s) {
  EXPECT_EQ(refusal(R"({"input_ids": [1, 2)").rfind("400: request body: not valid JSON", 0), 0u);
  EXPECT_EQ(refusal("{\"text\": \"b\xff\"}").rfind("400: request body: not valid JSON", 0), 0u);
  EXPECT_EQ(refusal("[1, 2, 3]"), "400: request body must be a JSON object");
  EXPECT_EQ(refusal("").rfind("400: request body: not valid JSON", 0), 0u);
}

}  // namespace
}  // namespace hylora::server
