#include "mailauth/dkim_sign.hpp"

#include <algorithm>
#include <unordered_map>

#include "util/ascii.hpp"

namespace ferry::mailauth {
namespace {

bool never_signed(std::string_view lower_name) {
    return lower_name == "received" || lower_name == "return-path" || lower_name == "dkim-signature" ||
           lower_name == "authentication-results";
}

// Builds a folded field: words are separated by a space, or by CRLF and a space where the line would get too
// long. The folds are FWS, which the tag-list syntax allows between tags, around h='s colons and inside base64.
class Folder {
public:
    explicit Folder(std::string_view start) : out_(start), column_(start.size()) {}

    void word(std::string_view w, bool space_before) {
        const std::size_t need = w.size() + (space_before ? 1 : 0);
        if (column_ + need > kMaxSignatureLine && column_ > 1) {
            out_ += "\r\n ";
            column_ = 1;
        } else if (space_before) {
            out_ += ' ';
            ++column_;
        }
        out_ += w;
        column_ += w.size();
    }

    // Text that may be cut anywhere (base64): fills each line to the limit.
    void breakable(std::string_view text) {
        while (!text.empty()) {
            if (column_ >= kMaxSignatureLine) {
                out_ += "\r\n ";
                column_ = 1;
            }
            const std::size_t n = std::min(text.size(), kMaxSignatureLine - column_);
            out_.append(text.substr(0, n));
            column_ += n;
            text.remove_prefix(n);
        }
    }

    const std::string& text() const { return out_; }

private:
    std::string out_;
    std::size_t column_;
};

}  // namespace

std::vector<std::string> signed_header_names(const std::vector<mime::RawField>& fields,
                                             const std::vector<std::string>& names) {
    std::unordered_map<std::string, std::size_t> count;
    for (const auto& f : fields)
        if (!f.name.empty()) ++count[util::ascii_lower(f.name)];
    std::vector<std::string> wanted;
    for (const auto& n : names) {
        std::string lower = util::ascii_lower(n);
        if (!lower.empty() && !never_signed(lower) && std::find(wanted.begin(), wanted.end(), lower) == wanted.end())
            wanted.push_back(std::move(lower));
    }
    if (std::find(wanted.begin(), wanted.end(), "from") == wanted.end()) wanted.insert(wanted.begin(), "from");
    std::vector<std::string> out;
    for (const auto& n : wanted) {
        const auto it = count.find(n);
        const std::size_t times = (it == count.end() ? 0 : it->second) + (n == "from" ? 1 : 0);
        out.insert(out.end(), times, n);
    }
    return out;
}

DkimSigner::DkimSigner(std::vector<DkimSigningKey> keys, DkimSignOptions options, std::string_view header_section)
    : keys_(std::move(keys)), options_(std::move(options)), header_(header_section),
      body_(options_.body_canon, std::nullopt) {
    signed_names_ = signed_header_names(mime::header_fields(header_),
                                        options_.headers.empty() ? default_signed_headers() : options_.headers);
}

void DkimSigner::feed_body(std::string_view octets) { body_.feed(octets); }

std::string DkimSigner::finish(std::time_t now) {
    body_.finish();
    const std::string body_hash = base64_encode(body_.digest());
    const auto fields = mime::header_fields(header_);
    std::string out;
    for (const DkimSigningKey& key : keys_) {
        Folder f("DKIM-Signature:");
        f.word("v=1;", true);
        f.word("a=" + std::string(to_string(key.algorithm)) + ";", true);
        f.word("c=" + std::string(to_string(options_.header_canon)) + "/" +
                   std::string(to_string(options_.body_canon)) + ";",
               true);
        f.word("d=" + key.domain + ";", true);
        f.word("s=" + key.selector + ";", true);
        f.word("t=" + std::to_string(static_cast<long long>(now)) + ";", true);
        for (std::size_t i = 0; i < signed_names_.size(); ++i) {
            const bool last = i + 1 == signed_names_.size();
            f.word((i == 0 ? "h=" : "") + signed_names_[i] + (last ? ";" : ":"), i == 0);
        }
        f.word("bh=" + body_hash + ";", true);
        f.word("b=", true);
        // What is signed ends here: the field with an empty b= (3.7), the same text a verifier gets back by
        // deleting the b= value from the finished field.
        const std::string digest =
            sha256(signed_header_data(options_.header_canon, fields, signed_names_, f.text()));
        const auto signature = sign_digest(key.key.get(), key.algorithm, digest);
        if (!signature) continue;
        f.breakable(base64_encode(*signature));
        out += f.text() + "\r\n";
    }
    return out;
}

}  // namespace ferry::mailauth
