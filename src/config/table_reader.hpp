// The machinery under the configuration tables (config.cpp): a section is a table of Fields, each a key, what
// it must be and where it goes in Config. From that one table come the allowed keys (any other key is an
// error) and the reading. A key whose value is wrong is recorded and the reading goes on, so one load reports
// every problem of the file, not only the first. Internal to src/config/.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

namespace ferry::config::detail {

// One problem of the file, printed "FILE:LINE: KEY: WHY" (": LINE" left out when unknown, KEY when empty).
struct Problem {
    toml::source_index line = 0;
    std::string key;
    std::string why;
};

// Thrown by a reader to give up on the key it reads; read_table records it and goes on with the next key.
struct KeyProblem {
    Problem problem;
};

// A value as it appears in messages: double-quoted, control characters escaped, so the message stays one line.
std::string quote_value(std::string_view s);
const char* type_name(toml::node_type t);
// A key as written in a dotted path: bare when TOML allows, quoted otherwise.
std::string join_key(const std::string& prefix, std::string_view key);

// What every reader shares: the file's name and folder, and the problems found so far. The typed readers check
// one value each and either return it or throw KeyProblem through fail().
class Reader {
public:
    Reader(std::string file_name, std::filesystem::path base) : file_(std::move(file_name)), base_(std::move(base)) {}

    [[noreturn]] void fail(toml::source_index line, std::string key, std::string why) const {
        throw KeyProblem{Problem{line, std::move(key), std::move(why)}};
    }
    [[noreturn]] void fail(const toml::node& node, std::string key, std::string why) const {
        fail(node.source().begin.line, std::move(key), std::move(why));
    }
    void record(Problem p) { problems_.push_back(std::move(p)); }
    std::size_t problem_count() const { return problems_.size(); }
    // All problems in file order (those without a line last), one line each.
    std::vector<std::string> report() const;

    // Paths in the file are relative to the file's folder.
    std::filesystem::path resolve(const std::string& p) const;

    const toml::table& table(const toml::node& node, const std::string& name) const;
    std::string text(const toml::node& node, const std::string& name) const;   // a string without NUL
    std::filesystem::path path(const toml::node& node, const std::string& name) const;   // non-empty, resolved
    bool flag(const toml::node& node, const std::string& name) const;
    // An integer in [min, max]; `what` describes the range for the message.
    std::int64_t integer(const toml::node& node, const std::string& name, std::int64_t min, std::int64_t max,
                         std::string_view what) const;
    std::size_t positive(const toml::node& node, const std::string& name, std::int64_t min = 1) const;
    // Octets, or a size string such as "64k", "50M", "1G" (parse_size); zero allowed.
    std::uint64_t size(const toml::node& node, const std::string& name) const;
    std::chrono::milliseconds duration(const toml::node& node, const std::string& name) const;   // > 0
    std::chrono::seconds whole_seconds(const toml::node& node, const std::string& name) const;

private:
    std::string file_;
    std::filesystem::path base_;
    std::vector<Problem> problems_;
};

// One key of a section: its name, how its value is checked and stored into the section's settings S (the
// default is the member's initializer in config.hpp), and, when `required` is set, the message for its absence.
template <class S>
struct Field {
    std::string_view key;
    std::function<void(Reader&, const toml::node&, const std::string& name, S&)> read;
    std::string_view required = {};
    // For a key that holds tables: the keys under it, as suffixes (".recipients", "[].address").
    std::function<std::vector<std::string>()> children = {};
};

// The keys `fields` allow, with the keys under them: "hostname", "limits", "limits.recipients", "listen[].address".
template <class S>
std::vector<std::string> keys_of(std::span<const Field<S>> fields, std::string_view separator) {
    std::vector<std::string> out;
    for (const Field<S>& f : fields) {
        out.push_back(std::string(separator) + std::string(f.key));
        if (f.children)
            for (const std::string& child : f.children()) out.push_back(out.back().substr(0, separator.size() + f.key.size()) + child);
    }
    return out;
}

// Checks across the keys of one table (two keys that go together, an order between two values), run after
// its fields; `fields_ok` is false when one of them was refused, so checks of values can stand back.
template <class S>
using TableCheck = std::function<void(Reader&, const toml::table&, const std::string& prefix, S&, bool fields_ok)>;

// Reads `table` into `out`: unknown keys, each field present (or missing when required), then `check`.
// Returns whether the table was read without a problem. `line` is where a missing key is reported (0: none).
template <class S>
bool read_table(Reader& r, const toml::table& table, const std::string& prefix, std::span<const Field<S>> fields,
                S& out, toml::source_index line, const TableCheck<S>& check = {}) {
    const std::size_t before = r.problem_count();
    auto guarded = [&](auto&& step) {
        try {
            step();
        } catch (const KeyProblem& p) {
            r.record(p.problem);
        }
    };
    for (auto&& [key, node] : table) {
        bool known = false;
        for (const Field<S>& f : fields) known = known || f.key == key.str();
        if (known) continue;
        const auto at = key.source().begin.line ? key.source().begin.line : node.source().begin.line;
        r.record(Problem{at, join_key(prefix, key.str()), "unknown key"});
    }
    for (const Field<S>& f : fields) {
        const std::string name = join_key(prefix, f.key);
        const toml::node* node = table.get(f.key);
        if (!node) {
            if (!f.required.empty()) r.record(Problem{line, name, std::string(f.required)});
            continue;
        }
        guarded([&] { f.read(r, *node, name, out); });
    }
    if (check) guarded([&] { check(r, table, prefix, out, r.problem_count() == before); });
    return r.problem_count() == before;
}

// ---------------------------------------------------------------------------------------------------------
// Fields of the common kinds, each stored into a member of S.

template <class S>
Field<S> text_field(std::string_view key, std::string S::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, S& s) { s.*member = r.text(n, name); }};
}

template <class S>
Field<S> path_field(std::string_view key, std::filesystem::path S::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, S& s) { s.*member = r.path(n, name); }};
}

template <class S>
Field<S> flag_field(std::string_view key, bool S::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, S& s) { s.*member = r.flag(n, name); }};
}

template <class S>
Field<S> positive_field(std::string_view key, std::size_t S::*member, std::int64_t min = 1) {
    return {key, [member, min](Reader& r, const toml::node& n, const std::string& name, S& s) {
                s.*member = r.positive(n, name, min);
            }};
}

// Unset unless given (then positive): a value that falls back to another key's.
template <class S>
Field<S> optional_positive_field(std::string_view key, std::optional<std::size_t> S::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, S& s) { s.*member = r.positive(n, name); }};
}

template <class S>
Field<S> duration_field(std::string_view key, std::chrono::milliseconds S::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, S& s) { s.*member = r.duration(n, name); }};
}

template <class S>
Field<S> seconds_field(std::string_view key, std::chrono::seconds S::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, S& s) {
                s.*member = r.whole_seconds(n, name);
            }};
}

// A string that must be one of `choices`; `refusal` follows the quoted value in the message.
template <class S, class T>
Field<S> choice_field(std::string_view key, T S::*member, std::vector<std::pair<std::string_view, T>> choices,
                      std::string_view refusal) {
    return {key, [member, choices = std::move(choices), refusal](Reader& r, const toml::node& n, const std::string& name, S& s) {
                const std::string v = r.text(n, name);
                for (const auto& [word, value] : choices)
                    if (v == word) {
                        s.*member = value;
                        return;
                    }
                r.fail(n, name, quote_value(v) + " " + std::string(refusal));
            }};
}

}  // namespace ferry::config::detail
