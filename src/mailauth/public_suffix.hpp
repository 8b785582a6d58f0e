// The Public Suffix List (publicsuffix.org, as Debian's `publicsuffix` package installs it) and the
// Organizational Domain of RFC 7489 3.2 that DMARC's relaxed alignment and policy discovery use. Pure: text in,
// names out (load() only reads the file).
//
// Both sections of the list are used, ICANN and PRIVATE. RFC 7489 3.2 asks for "a public suffix list" without
// choosing a part; the PRIVATE section names registries too (github.io, blogspot.com, ...) under which
// unrelated parties hold names. With it, alice.github.io and bob.github.io are different organizations, so a
// signature by one does not align with mail From: the other; without it both would have the organizational
// domain github.io.
//
// Names are compared in A-label form: rules written in UTF-8 (中国, 公司.cn) are converted with Punycode
// (RFC 3492) when the list is parsed, and so are UTF-8 labels of a domain asked about. Only ASCII letters are
// case-folded: a U-label must already be in the normalized form the list uses (IDNA2008 mapping is libidn2's
// job, done before a name reaches here).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ferry::mailauth {

// Where Debian's `publicsuffix` package installs the list.
inline constexpr const char* kDebianPublicSuffixList = "/usr/share/publicsuffix/public_suffix_list.dat";

// A list file larger than this is refused: the real one is about 250 KB.
inline constexpr std::size_t kMaxPublicSuffixListOctets = 16 * 1024 * 1024;

// The longest label a_label() converts: an A-label holds at most 63 octets (RFC 5890 2.3.2.1) and each code
// point of its U-label at most 4 octets of UTF-8 (RFC 3629 3). Longer labels are no names (and Punycode's
// cost grows with the square of a label's length).
inline constexpr std::size_t kMaxULabelOctets = 4 * 63;

class PublicSuffixList {
public:
    // Every rule of the text, ICANN and PRIVATE sections alike (see above). A line is read up to its first
    // whitespace; "//" comment lines and empty lines are skipped; a rule that cannot be used (a '*' other than
    // as the whole leftmost label, empty labels, invalid UTF-8) is skipped.
    static PublicSuffixList parse(std::string_view dat_text);

    // The list in `file`; nullopt with `error` set when it cannot be read, is larger than
    // kMaxPublicSuffixListOctets or holds no rule.
    static std::optional<PublicSuffixList> load(const std::filesystem::path& file, std::string& error);

    // The public suffix of `domain` by the list's algorithm (publicsuffix.org/list): the longest matching
    // rule, an exception rule ("!www.ck") winning over any other and counting one label less, "*" for a name
    // no rule matches. Lower-case, no trailing dot; "" for an empty or malformed name.
    std::string public_suffix(std::string_view domain) const;

    // RFC 7489 3.2: the public suffix of `domain` plus one label; the domain itself when it has no more labels
    // than its public suffix. Lower-case, no trailing dot. A name with an empty label ("a..b") is returned
    // lower-cased as it is: it has no organizational domain but itself.
    std::string organizational_domain(std::string_view domain) const;

    // The number of rules.
    std::size_t size() const { return normal_.size() + wildcard_.size() + exception_.size(); }

private:
    // How many of the rightmost labels of `labels` are its public suffix.
    std::size_t suffix_labels(const std::vector<std::string_view>& labels) const;

    // A-label forms. normal_: "co.uk"; wildcard_: the parent of a "*." rule ("ck" for "*.ck"); exception_:
    // the rule without '!' ("www.ck").
    std::unordered_set<std::string> normal_, wildcard_, exception_;
    std::size_t max_labels_ = 0;   // the most labels a rule has: no longer suffix can match
};

// The A-label of one label (RFC 5890 2.3.2.1): the label itself, ASCII lower-cased, when it is ASCII, else
// "xn--" and the Punycode (RFC 3492 6.3) of its code points. nullopt for invalid UTF-8, a label longer than
// kMaxULabelOctets, or Punycode overflow.
std::optional<std::string> a_label(std::string_view label);

}  // namespace ferry::mailauth
