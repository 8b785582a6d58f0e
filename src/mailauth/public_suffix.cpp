#include "mailauth/public_suffix.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <vector>

#include "util/ascii.hpp"
#include "util/utf8.hpp"

namespace ferry::mailauth {
namespace {

// RFC 3492 5: the Punycode parameters of IDNA.
constexpr std::uint32_t kBase = 36, kTMin = 1, kTMax = 26, kSkew = 38, kDamp = 700;
constexpr std::uint32_t kInitialBias = 72, kInitialN = 0x80;

// UTF-8 to code points; util::utf8_sequence_length refuses overlong forms, surrogates and anything past U+10FFFF.
std::optional<std::u32string> decode_utf8(std::string_view s) {
    std::u32string out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = util::utf8_sequence_length(s, i);
        if (len == 0) return std::nullopt;
        const auto lead = static_cast<unsigned char>(s[i]);
        std::uint32_t cp = len == 1 ? lead : lead & (0x7FU >> len);   // the lead octet's payload bits
        for (std::size_t k = 1; k < len; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3FU);
        out.push_back(cp);
        i += len;
    }
    return out;
}

// RFC 3492 6.1.
std::uint32_t adapt(std::uint32_t delta, std::uint32_t num_points, bool first_time) {
    delta = first_time ? delta / kDamp : delta / 2;
    delta += delta / num_points;
    std::uint32_t k = 0;
    while (delta > ((kBase - kTMin) * kTMax) / 2) {
        delta /= kBase - kTMin;
        k += kBase;
    }
    return k + (kBase - kTMin + 1) * delta / (delta + kSkew);
}

char encode_digit(std::uint32_t d) { return static_cast<char>(d < 26 ? 'a' + d : '0' + (d - 26)); }

// RFC 3492 6.3, with the overflow checks of its 6.4.
std::optional<std::string> punycode(const std::u32string& input) {
    constexpr std::uint32_t kMax = 0xFFFFFFFF;
    std::string out;
    for (const char32_t c : input)
        if (c < 0x80) out.push_back(static_cast<char>(c));
    const auto basic = static_cast<std::uint32_t>(out.size());
    std::uint32_t h = basic;
    if (basic > 0) out.push_back('-');
    std::uint32_t n = kInitialN, delta = 0, bias = kInitialBias;
    while (h < input.size()) {
        std::uint32_t m = kMax;
        for (const char32_t c : input)
            if (c >= n && c < m) m = c;
        if ((m - n) > (kMax - delta) / (h + 1)) return std::nullopt;
        delta += (m - n) * (h + 1);
        n = m;
        for (const char32_t c : input) {
            if (c < n && ++delta == 0) return std::nullopt;
            if (c != n) continue;
            std::uint32_t q = delta;
            for (std::uint32_t k = kBase;; k += kBase) {
                const std::uint32_t t = k <= bias ? kTMin : k >= bias + kTMax ? kTMax : k - bias;
                if (q < t) break;
                out.push_back(encode_digit(t + (q - t) % (kBase - t)));
                q = (q - t) / (kBase - t);
            }
            out.push_back(encode_digit(q));
            bias = adapt(delta, h + 1, h == basic);
            delta = 0;
            ++h;
        }
        ++delta;
        ++n;
    }
    return out;
}

std::vector<std::string_view> split_labels(std::string_view name) {
    std::vector<std::string_view> labels;
    std::size_t at = 0;
    for (;;) {
        const std::size_t dot = name.find('.', at);
        if (dot == std::string_view::npos) {
            labels.push_back(name.substr(at));
            return labels;
        }
        labels.push_back(name.substr(at, dot - at));
        at = dot + 1;
    }
}

std::string join_lower(const std::vector<std::string_view>& labels, std::size_t from) {
    std::string out;
    for (std::size_t i = from; i < labels.size(); ++i) {
        if (i > from) out.push_back('.');
        out.append(labels[i]);
    }
    return util::ascii_lower(out);
}

// The name without one trailing dot, split into labels; empty when the name is empty or has an empty label.
std::vector<std::string_view> domain_labels(std::string_view domain) {
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    if (domain.empty()) return {};
    auto labels = split_labels(domain);
    if (std::any_of(labels.begin(), labels.end(), [](std::string_view l) { return l.empty(); })) return {};
    return labels;
}

}  // namespace

std::optional<std::string> a_label(std::string_view label) {
    if (label.size() > kMaxULabelOctets) return std::nullopt;
    const std::string lower = util::ascii_lower(label);
    if (util::is_ascii(lower)) return lower;
    const auto code_points = decode_utf8(lower);
    if (!code_points) return std::nullopt;
    const auto encoded = punycode(*code_points);
    if (!encoded) return std::nullopt;
    return "xn--" + *encoded;
}

PublicSuffixList PublicSuffixList::parse(std::string_view text) {
    PublicSuffixList list;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t eol = text.find('\n', at);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view line = text.substr(at, eol - at);
        at = eol + 1;
        // publicsuffix.org/list: "Each line is only read up to the first whitespace".
        const std::size_t ws = line.find_first_of(" \t\r\f\v");
        if (ws != std::string_view::npos) line = line.substr(0, ws);
        if (line.empty() || line.starts_with("//")) continue;
        const bool exception = line.front() == '!';
        if (exception) line.remove_prefix(1);
        if (line.empty()) continue;
        const auto labels = split_labels(line);
        const bool wildcard = labels.front() == "*";
        if ((wildcard && (exception || labels.size() < 2))) continue;
        std::string rule;
        bool usable = true;
        for (std::size_t i = wildcard ? 1 : 0; i < labels.size() && usable; ++i) {
            const auto a = labels[i].empty() || labels[i].find('*') != std::string_view::npos
                               ? std::nullopt
                               : a_label(labels[i]);
            if (!a) usable = false;
            else rule += (rule.empty() ? "" : ".") + *a;
        }
        if (!usable) continue;
        (exception ? list.exception_ : wildcard ? list.wildcard_ : list.normal_).insert(std::move(rule));
        list.max_labels_ = std::max(list.max_labels_, labels.size());
    }
    return list;
}

std::optional<PublicSuffixList> PublicSuffixList::load(const std::filesystem::path& file, std::string& error) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        error = "cannot open " + file.string();
        return std::nullopt;
    }
    std::string text;
    char buffer[64 * 1024];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
        text.append(buffer, static_cast<std::size_t>(in.gcount()));
        if (text.size() > kMaxPublicSuffixListOctets) {
            error = file.string() + " is larger than " + std::to_string(kMaxPublicSuffixListOctets) + " octets";
            return std::nullopt;
        }
    }
    if (in.bad()) {
        error = "cannot read " + file.string();
        return std::nullopt;
    }
    auto list = parse(text);
    if (list.size() == 0) {
        error = file.string() + " holds no public suffix rule";
        return std::nullopt;
    }
    return list;
}

std::size_t PublicSuffixList::suffix_labels(const std::vector<std::string_view>& labels) const {
    const std::size_t n = labels.size();
    std::size_t longest = 1;   // the implicit "*" rule
    std::optional<std::size_t> exception;
    // Only as many labels as the longest rule has can match; the A-labels are built from the right.
    std::vector<std::string> suffix;   // suffix[k - 1]: the rightmost k labels in A-label form
    for (std::size_t k = 1; k <= std::min(n, max_labels_); ++k) {
        const auto a = a_label(labels[n - k]);
        if (!a) break;   // a label that is not UTF-8 matches no rule
        suffix.push_back(k == 1 ? *a : *a + "." + suffix.back());
        if (exception_.count(suffix.back())) exception = k - 1;   // an exception rule prevails, one label less
        if (normal_.count(suffix.back())) longest = k;
        if (k >= 2 && wildcard_.count(suffix[k - 2])) longest = k;
    }
    return exception ? *exception : longest;
}

std::string PublicSuffixList::public_suffix(std::string_view domain) const {
    const auto labels = domain_labels(domain);
    if (labels.empty()) return "";
    const std::size_t k = std::min(suffix_labels(labels), labels.size());
    return join_lower(labels, labels.size() - k);
}

std::string PublicSuffixList::organizational_domain(std::string_view domain) const {
    const auto labels = domain_labels(domain);
    if (labels.empty()) {
        if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
        return util::ascii_lower(domain);
    }
    const std::size_t k = suffix_labels(labels) + 1;
    return join_lower(labels, labels.size() > k ? labels.size() - k : 0);
}

}  // namespace ferry::mailauth
