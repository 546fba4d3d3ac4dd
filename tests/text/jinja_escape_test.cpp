// Escaping in chat templates, as Jinja2 3.x renders it in transformers' environment: the `escape`/`e` filter
// (markupsafe: & < > " ' -> &amp; &lt; &gt; &#34; &#39;), string-literal escapes, and `tojson` (json.dumps:
// quotes, backslashes and control characters escaped). The real Qwen3 template exercises few of these; a template
// that prints user text through `|e` or `|tojson` must not be able to change its structure.
#include <gtest/gtest.h>

#include "text/jinja/template.h"

namespace hylora::text::jinja {
namespace {

std::string render(const std::string& source, Object vars = {}) { return Template(source).render(vars); }

TEST(JinjaEscape, EscapeFilterEscapesAllFiveMarkupCharacters) {
  EXPECT_EQ(render(R"({{ '<a href="x">O\'Neil & co</a>' | e }})"),
            "&lt;a href=&#34;x&#34;&gt;O&#39;Neil &amp; co&lt;/a&gt;");
  EXPECT_EQ(render(R"({{ '1 < 2 > 0' | escape }})"), "1 &lt; 2 &gt; 0");
  EXPECT_EQ(render(R"({{ 'plain text' | e }})"), "plain text");
}

TEST(JinjaEscape, StringLiteralEscapes) {
  EXPECT_EQ(render(R"({{ 'a\nb\tc\\d\'e' }})"), "a\nb\tc\\d'e");
  EXPECT_EQ(render(R"({{ "q\"r" }})"), "q\"r");
  EXPECT_EQ(render(R"({{ '\x41\u00e9' }})"), "A\xc3\xa9");
}

TEST(JinjaEscape, ToJsonEscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(render(R"({{ 'q"b\\c' | tojson }})"), R"("q\"b\\c")");
  EXPECT_EQ(render(R"({{ 'x\ny\tz' | tojson }})"), R"("x\ny\tz")");
}

}  // namespace
}  // namespace hylora::text::jinja
