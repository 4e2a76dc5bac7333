#!/usr/bin/env python3
"""Tests of scripts/check-modules: each rule fires on a small fake tree in a temporary
directory, the clean tree passes, exceptions work as practracker's do, and the
function-length heuristic measures what scripts/check-modules --help says it does.

Usage: check_modules_test.py [-v] [TestClass[.test]]   (unittest's own flags)
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from importlib.machinery import SourceFileLoader

sys.dont_write_bytecode = True
CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "check-modules")
cm = SourceFileLoader("check_modules", CHECKER).load_module()


def body(lines):
    return "".join(f"  x += {i};\n" for i in range(lines))


def function_of(total_lines, name="f"):
    """A function `name` exactly total_lines long, signature to closing brace."""
    assert total_lines >= 2
    return f"int {name}(int x) {{\n" + body(total_lines - 3) + "  return x;\n}\n"


class FakeTree:
    """A tree with modules a, b and cli (in that layer order) that passes every rule."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="check-modules-test.")
        self.root = self.tmp.name
        self.write("CMakeLists.txt", "project(x)\nset(TORGW_MODULES a b cli)\n")
        self.write("a/a.h", "// a/: the first layer. Parts: a/x.h\n#pragma once\n#include \"a/x.h\"\n")
        self.write("a/x.h", "#pragma once\nint x();\n")
        self.write("a/x.cpp", '#include "a/x.h"\n#include "a/secret_internal.h"\n#include "a/testing.h"\nint x() { return 1; }\n')
        self.write("a/secret_internal.h", "#pragma once\n")
        self.write("a/testing.h", "#pragma once\n")
        self.write("b/b.h", "// b/: the second layer.\n#pragma once\n#include \"a/a.h\"\n")
        self.write("b/b.cpp", '#include "b/b.h"\n#include "a/x.h"\n')
        self.write("b/tests/b_test.cpp", '#include "a/testing.h"\n#include "b/b.h"\n')
        self.write("cli/main.cpp", '#include "b/b.h"\n#include "cli/commands.h"\nint main() { return 0; }\n')
        self.write("cli/commands.h", "#pragma once\n")
        self.write("bench/bench.cpp", '#include "a/testing.h"\n#include "cli/commands.h"\n')
        self.exceptions = os.path.join(self.root, "exceptions.txt")
        self.write("exceptions.txt", "")

    def write(self, path, text):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)

    def run(self, *extra):
        p = subprocess.run([sys.executable, CHECKER, "--root", self.root, "--exceptions", self.exceptions, *extra],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr


class Rules(unittest.TestCase):
    def setUp(self):
        self.tree = FakeTree()
        self.addCleanup(self.tree.tmp.cleanup)

    def assertFails(self, rule, where):
        rc, out = self.tree.run()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{where}: {rule}", out)

    def test_clean_tree_passes(self):
        rc, out = self.tree.run()
        self.assertEqual(rc, 0, out)
        self.assertIn("check-modules: ok", out)

    def test_layer_later_module(self):
        self.tree.write("a/y.cpp", '#include "b/b.h"\n')
        self.assertFails("layer", "a/y.cpp")

    def test_layer_applies_to_module_tests(self):
        self.tree.write("a/tests/a_test.cpp", '#include "cli/commands.h"\n')
        self.assertFails("layer", "a/tests/a_test.cpp")

    def test_layer_order_comes_from_cmake(self):
        # Swap the order: b/b.h including a/a.h is now a later module.
        self.tree.write("CMakeLists.txt", "set(TORGW_MODULES b a cli)\n")
        self.assertFails("layer", "b/b.h")

    def test_internal_of_another_module(self):
        self.tree.write("b/c.cpp", '#include "a/secret_internal.h"\n')
        self.assertFails("internal", "b/c.cpp")

    def test_internal_folder_of_another_module(self):
        self.tree.write("b/c.cpp", '#include "a/internal/parts.h"\n')
        self.assertFails("internal", "b/c.cpp")

    def test_internal_from_tests_is_still_internal(self):
        self.tree.write("tests/support/t.cpp", '#include "a/secret_internal.h"\n')
        self.assertFails("internal", "tests/support/t.cpp")

    def test_testing_header_outside_tests(self):
        self.tree.write("b/c.cpp", '#include "a/testing.h"\n')
        self.assertFails("testing", "b/c.cpp")

    def test_missing_map_header(self):
        os.remove(os.path.join(self.tree.root, "b/b.h"))
        self.tree.write("b/b.cpp", '#include "a/x.h"\n')
        self.assertFails("map", "b/b.h")

    def test_map_header_must_name_every_public_header(self):
        self.tree.write("a/z.h", "#pragma once\n")
        self.assertFails("map", "a/a.h")

    def test_executable_module_needs_no_map_header(self):
        self.assertFalse(os.path.exists(os.path.join(self.tree.root, "cli/cli.h")))
        self.assertEqual(self.tree.run()[0], 0)

    def test_file_size(self):
        self.tree.write("b/big.cpp", "int v;\n" * 1001)
        self.assertFails("file-size", "b/big.cpp")
        self.tree.write("b/big.cpp", "int v;\n" * 1000)
        self.assertEqual(self.tree.run()[0], 0)

    def test_function_size(self):
        self.tree.write("b/long.cpp", function_of(101, "too_long"))
        self.assertFails("function-size", "b/long.cpp:too_long")
        self.tree.write("b/long.cpp", function_of(100, "too_long"))
        self.assertEqual(self.tree.run()[0], 0)

    def test_exception_allows_up_to_its_count(self):
        self.tree.write("b/long.cpp", function_of(120, "long_one") + "int v;\n" * 1000)
        self.tree.write("exceptions.txt", "problem function-size b/long.cpp:long_one 120\n"
                                          "problem file-size b/long.cpp 1120\n")
        self.assertEqual(self.tree.run()[0], 0)
        self.tree.write("b/long.cpp", function_of(121, "long_one") + "int v;\n" * 1000)
        self.assertFails("function-size", "b/long.cpp:long_one")
        rc, out = self.tree.run()
        self.assertIn("grew past its exception of 120", out)
        self.assertIn("b/long.cpp: file-size: 1121", out)

    def test_stale_exception_is_a_note(self):
        self.tree.write("exceptions.txt", "problem function-size b/gone.cpp:f 300\n")
        rc, out = self.tree.run()
        self.assertEqual(rc, 0, out)
        self.assertIn("stale exception", out)

    def test_bad_exceptions_line(self):
        self.tree.write("exceptions.txt", "function-size b/x.cpp:f\n")
        self.assertEqual(self.tree.run()[0], 2)

    def test_regenerate_writes_today(self):
        self.tree.write("b/long.cpp", "namespace b {\n" + function_of(130, "Foo::bar") + "}\n")
        rc, out = self.tree.run("--regenerate")
        self.assertEqual(rc, 0, out)
        with open(self.tree.exceptions, encoding="utf-8") as f:
            entries = [l.strip() for l in f if l.startswith("problem")]
        self.assertEqual(entries, ["problem function-size b/long.cpp:Foo::bar 130"])
        self.assertEqual(self.tree.run()[0], 0)

    def test_regenerate_never_excepts_the_contract(self):
        self.tree.write("a/y.cpp", '#include "b/b.h"\n')
        rc, out = self.tree.run("--regenerate")
        self.assertEqual(rc, 1, out)
        self.assertIn("a/y.cpp: layer", out)


class FunctionHeuristic(unittest.TestCase):
    def spans(self, src):
        return [(name, last - first + 1) for name, first, last in cm.functions(textwrap.dedent(src))]

    def test_free_function_in_namespace(self):
        self.assertEqual(self.spans("""\
            namespace torgw {
            namespace {
            int f(int x) {
              return x;
            }
            }  // namespace
            }  // namespace torgw
            """), [("f", 3)])

    def test_multiline_signature_counts(self):
        self.assertEqual(self.spans("""\
            Result<int> Relay::Impl::init(int a,
                                          int b) {
              return a + b;
            }
            """), [("Relay::Impl::init", 4)])

    def test_inline_member_function_and_class(self):
        self.assertEqual(self.spans("""\
            class C {
             public:
              int get() const { return v_; }
              struct Inner {
                void set(int v) {
                  v_ = v;
                }
              };
              int v_ = 0;
            };
            """), [("get", 1), ("set", 3)])

    def test_lambdas_blocks_and_local_classes_belong_to_the_function(self):
        self.assertEqual(self.spans("""\
            void run() {
              auto cb = [&](int x) {
                if (x) { return; }
              };
              struct Local { int y; };
              for (;;) {
                break;
              }
            }
            """), [("run", 9)])

    def test_initializers_are_not_functions(self):
        self.assertEqual(self.spans("""\
            const std::map<std::string, int> kTable = {
              {"a", f(1)},
              {"b", g(2)},
            };
            auto handler = [](int x) {
              return x;
            };
            enum class E { A, B };
            struct S { int a; };
            """), [])

    def test_braces_in_literals_comments_and_macros_do_not_count(self):
        self.assertEqual(self.spans("""\
            #define WRAP(x) \\
              do {          \\
                x;          \\
              } while (0)
            // a comment with { and (
            /* and a block one } */
            std::string f() {
              std::string s = "}{";
              char c = '{';
              auto r = R"x(})" {)x";
              return s + c + r;  // }
            }
            int n = 1'000;
            """), [("f", 6)])

    def test_test_case_names_carry_their_string(self):
        self.assertEqual(self.spans("""\
            TEST_CASE("first") {
              CHECK(1);
            }
            TEST_CASE("second", "[tag]") {
              CHECK(2);
            }
            """), [('TEST_CASE("first")', 3), ('TEST_CASE("second")', 3)])

    def test_constructor_with_initializer_list_and_operators(self):
        self.assertEqual(self.spans("""\
            Foo::Foo(int a) : a_(a), b_{a} {
              start();
            }
            bool operator==(const Foo& x, const Foo& y) {
              return x.a_ == y.a_;
            }
            Foo& Foo::operator=(Foo&& o) noexcept {
              return *this;
            }
            """), [("Foo::Foo", 3), ("operator==", 3), ("Foo::operator=", 3)])

    def test_repeated_names_are_numbered_by_the_checker(self):
        tree = FakeTree()
        self.addCleanup(tree.tmp.cleanup)
        tree.write("b/o.cpp", function_of(101, "over") + function_of(102, "over"))
        rc, out = tree.run()
        self.assertIn("b/o.cpp:over: function-size: 101", out)
        self.assertIn("b/o.cpp:over#2: function-size: 102", out)


if __name__ == "__main__":
    unittest.main()
