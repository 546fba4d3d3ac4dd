// Jinja behaviour that @huggingface/jinja does not share with Python's Jinja2 (which transformers uses), or
// does not support: expected values here are what Jinja2 3.x renders in transformers' environment. Also the
// load-time rejection of unsupported constructs.
#include <gtest/gtest.h>

#include "core/error.h"
#include "text/jinja/template.h"

namespace hylora::text::jinja {
namespace {

std::string render(const std::string& source, Object vars = {}) { return Template(source).render(vars); }

std::string load_error(const std::string& source) {
  try {
    Template t(source);
  } catch (const hylora::Error& e) {
    return e.what();
  }
  return "";
}

TEST(JinjaPython, PrintsValuesLikePythonStr) {
  EXPECT_EQ(render("{{ true }} {{ false }} {{ none }} {{ undefined_name }}|"), "True False None |");
  EXPECT_EQ(render("{{ [1, 'a', none, true] }} {{ {'k': 'v'} }}"), "[1, 'a', None, True] {'k': 'v'}");
  EXPECT_EQ(render("{{ 4 / 2 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 1.5e-7 }}"), "2.0 1e+20 0.30000000000000004 1.5e-07");
  EXPECT_EQ(render("{{ \"it's\" }} {{ [\"it's\"] }}"), "it's [\"it's\"]");
}

TEST(JinjaPython, OperatorsFollowPython) {
  EXPECT_EQ(render("{{ -7 % 3 }} {{ 7 % -3 }} {{ -7 // 2 }} {{ 2 ** 3 ** 2 }}"), "2 -2 -4 64");
  EXPECT_EQ(render("{{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ 1 == 1.0 }} {{ 'a' < 'b' }}"),
            "True True True True");
  EXPECT_EQ(render("{{ 'ab' * 2 }} {{ [1] + [2] }}"), "abab [1, 2]");
}

TEST(JinjaPython, StringMethods) {
  EXPECT_EQ(render("{{ 'xxhixx'.strip('x') }} {{ 'a-b-c'.rsplit('-', 1) }} {{ 'hello'.find('l') }} "
                   "{{ 'hello'.rfind('l') }} {{ 'héllo'.find('l') }} {{ 'banana'.count('a') }} {{ '-'.join(['a', 'b']) }}"),
            "hi ['a-b', 'c'] 2 3 2 3 a-b");
  EXPECT_EQ(render("{{ 'a\\nb\\r\\nc'.splitlines() }} {{ '  a b  '.split() }} {{ 'a,b'.split(',', 0) }}"),
            "['a', 'b', 'c'] ['a', 'b'] ['a,b']");
}

TEST(JinjaPython, FiltersAndTestsMissingFromTheJsReference) {
  EXPECT_EQ(render("{{ [3, 1, 2] | sum }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ 'a b  c' | wordcount }}"),
            "6 1 3 3");
  EXPECT_EQ(render("{{ [0, 1, 2, none, 'a'] | select | list }} {{ [1, 2, 3, 4] | reject('even') | list }}"),
            "[1, 2, 'a'] [1, 3]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | dictsort | map('first') | join }} {{ ['a', 'B'] | map('upper') | list }}"),
            "ab ['A', 'B']");
  EXPECT_EQ(render("{{ 1.5 is float }} {{ 9 is divisibleby(3) }} {{ 9 is divisibleby 4 }} {{ 'a' is in ['a'] }} "
                   "{{ 5 is gt(3) }} {{ 1 is eq(1) }}"),
            "True True False True True True");
  EXPECT_EQ(render("{{ {'a': 1} | tojson(indent=2) }}|{{ 'é\"' | tojson }}|{{ [1.0, 2] | tojson }}"),
            "{\n  \"a\": 1\n}|\"é\\\"\"|[1.0, 2]");
}

TEST(JinjaPython, WhitespaceControl) {
  // trim_blocks + lstrip_blocks, '+' disables them, '-' strips all whitespace, one trailing newline dropped.
  EXPECT_EQ(render("a\n  {% if true %}\nb\n  {% endif %}\nc\n"), "a\nb\nc");
  EXPECT_EQ(render("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
  EXPECT_EQ(render("{% if true +%}\nb{% endif %}"), "\nb");
  EXPECT_EQ(render("a  {{- ' b ' -}}  c"), "a b c");
  EXPECT_EQ(render("x {# comment #}\ny"), "x y");
  EXPECT_EQ(render("a\r\nb\n\n"), "a\nb\n");
}

TEST(JinjaPython, ScopingAndMacros) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  EXPECT_EQ(render("{% macro f(a, b='B') %}{{ a }}{{ b }}{{ outer }}{% endmacro %}{{ f(1) }} {{ f(1, b=2) }}",
                   Object{{{"outer", Value("!")}}}),
            "1B! 12!");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}"), "-2;1-3;2-;");
  EXPECT_EQ(render("{% for x in ['a', 'b'] %}{% set x = x ~ '!' %}{{ x }}{% endfor %}"), "a!b!");
}

TEST(JinjaPython, RuntimeErrors) {
  try {
    render("line1\n{{ raise_exception('bad role: ' ~ role) }}", Object{{{"role", Value("robot")}}});
    FAIL() << "expected an error";
  } catch (const hylora::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("bad role: robot"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  }
  // Jinja2's default Undefined: reading an attribute of an undefined value is an error...
  EXPECT_THROW(render("{{ missing.attr }}"), hylora::Error);
  // ...but a missing key of a dict is just undefined.
  EXPECT_EQ(render("{{ m.missing is defined }}", Object{{{"m", Value::object()}}}), "False");
}

TEST(JinjaLoad, UnsupportedConstructsFailWhenLoaded) {
  EXPECT_NE(load_error("{% include 'x.jinja' %}").find("unsupported statement '{% include %}'"), std::string::npos);
  EXPECT_NE(load_error("{% call f() %}x{% endcall %}").find("unsupported statement"), std::string::npos);
  EXPECT_NE(load_error("{% with a = 1 %}{% endwith %}").find("unsupported statement"), std::string::npos);
  EXPECT_NE(load_error("{{ x | frobnicate }}").find("unsupported filter 'frobnicate'"), std::string::npos);
  EXPECT_NE(load_error("{{ x is prime }}").find("unsupported test 'prime'"), std::string::npos);
  EXPECT_NE(load_error("{{ x.zfill(3) }}").find("unsupported method 'zfill()'"), std::string::npos);
  EXPECT_NE(load_error("{{ cycler('a') }}").find("unsupported function 'cycler()'"), std::string::npos);
  EXPECT_NE(load_error("{% if x %}never closed").find("unclosed"), std::string::npos);
  EXPECT_NE(load_error("a\n{{ x + }}").find("line 2"), std::string::npos);
  EXPECT_NE(load_error("{% break %}").find("outside of a for loop"), std::string::npos);
  EXPECT_NE(load_error("{% for x in xs recursive %}{% endfor %}").find("recursive"), std::string::npos);
  // A macro defined in the template may be called.
  EXPECT_EQ(load_error("{% macro m() %}{% endmacro %}{{ m() }}"), "");
}

}  // namespace
}  // namespace hylora::text::jinja
