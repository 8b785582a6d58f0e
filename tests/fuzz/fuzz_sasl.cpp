// SMTP AUTH payloads (accounts/sasl): strict base64, RFC 4616 PLAIN messages and the server side of the PLAIN
// and LOGIN exchanges, driven the way smtp::Session drives them. The input is what the client sends: lines end
// at LF (one CR before it is dropped, as the line reader does); the first line is the AUTH argument, "MECHANISM"
// or "MECHANISM initial-response", every later line answers a 334 challenge, and "*" cancels (RFC 4954 4).
//
// Checked: base64_decode agrees with an independent RFC 4648 decoder written here, on every response and on the
// whole input; base64_encode is canonical and decodes back; parse_plain accepts exactly the RFC 4616 form and a
// successful parse rebuilds the message octet for octet; each step is one of challenge, done or malformed and
// carries only what belongs to its kind; the exchange follows the mechanism (PLAIN: at most the empty challenge,
// then done; LOGIN: "Username:", "Password:", then done), and what it returns as credentials is exactly what the
// client encoded, within RFC 4616's limits. Each input runs a second time with every response taken as raw
// octets and base64-encoded here, so the field checks see NULs and any octet, not only lucky valid base64.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accounts/sasl.hpp"
#include "fuzz_check.hpp"
#include "reference_base64.hpp"

using namespace ferry;
using accounts::Credentials;
using accounts::SaslExchange;
using Kind = SaslExchange::Step::Kind;
using fuzz::RefDecoded;

namespace {

constexpr std::size_t kMaxField = 255;   // RFC 4616 2
constexpr std::string_view kUsernameChallenge = "VXNlcm5hbWU6";   // base64("Username:")
constexpr std::string_view kPasswordChallenge = "UGFzc3dvcmQ6";   // base64("Password:")

std::string plain_message(const Credentials& c) {
    std::string m = c.authzid;
    m += '\0';
    m += c.authcid;
    m += '\0';
    m += c.password;
    return m;
}

bool is_empty(const Credentials& c) { return c.authzid.empty() && c.authcid.empty() && c.password.empty(); }

bool valid_field(std::string_view f, bool may_be_empty) {
    return (may_be_empty || !f.empty()) && f.size() <= kMaxField && f.find('\0') == std::string_view::npos;
}

// base64_decode against the reference; returns the decoded octets.
std::optional<std::string> checked_decode(std::string_view text) {
    const std::optional<std::string> got = accounts::base64_decode(text);
    const std::optional<RefDecoded> want = fuzz::reference_base64_decode(text);
    FUZZ_CHECK(got.has_value() == want.has_value());
    if (!got) return std::nullopt;
    FUZZ_CHECK(*got == want->octets);
    FUZZ_CHECK(got->size() <= text.size() / 4 * 3);
    // Re-encoding gives the canonical form: the same text unless the input had non-zero pad bits.
    const std::string again = accounts::base64_encode(*got);
    FUZZ_CHECK(again.size() == text.size());
    if (want->canonical) FUZZ_CHECK(again == text);
    FUZZ_CHECK(accounts::base64_decode(again) == got);
    return got;
}

void check_encode(std::string_view data) {
    const std::string coded = accounts::base64_encode(data);
    FUZZ_CHECK(coded.size() == (data.size() + 2) / 3 * 4);
    const std::optional<RefDecoded> ref = fuzz::reference_base64_decode(coded);
    FUZZ_CHECK(ref.has_value() && ref->canonical && ref->octets == data);
    FUZZ_CHECK(accounts::base64_decode(coded) == std::string(data));
}

// RFC 4616 2: exactly two NULs; authcid and passwd not empty; no field over 255 octets.
bool plain_acceptable(std::string_view message) {
    std::size_t nuls = 0;
    for (char ch : message) nuls += ch == '\0';
    if (nuls != 2) return false;
    const std::size_t first = message.find('\0');
    const std::size_t second = message.find('\0', first + 1);
    return valid_field(message.substr(0, first), true) &&
           valid_field(message.substr(first + 1, second - first - 1), false) &&
           valid_field(message.substr(second + 1), false);
}

void check_parse_plain(std::string_view message) {
    const std::optional<Credentials> c = accounts::parse_plain(message);
    FUZZ_CHECK(c.has_value() == plain_acceptable(message));
    if (!c) return;
    FUZZ_CHECK(plain_message(*c) == message);   // a successful decode round-trips
    FUZZ_CHECK(message.substr(0, c->authzid.size()) == c->authzid && !c->authcid.empty() && !c->password.empty());
}

std::vector<std::string_view> split_lines(std::string_view input) {
    std::vector<std::string_view> lines;
    while (!input.empty() || lines.empty()) {
        const std::size_t lf = input.find('\n');
        std::string_view line = input.substr(0, lf);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        if (lf == std::string_view::npos) break;
        input.remove_prefix(lf + 1);
    }
    return lines;
}

// The steps a well-behaved exchange can take, tracked beside SaslExchange to check each of its answers.
struct Model {
    SaslExchange::Mechanism mechanism;
    std::size_t round = 0;
    std::optional<std::string> login_user;
};

// What a correct exchange answers next, from the model alone.
Kind expected_kind(const Model& m, std::size_t round, bool responded, const std::optional<std::string>& decoded) {
    if (responded && !decoded) return Kind::malformed;   // not base64
    if (!decoded) return round == 0 ? Kind::challenge : Kind::malformed;
    if (m.mechanism == SaslExchange::Mechanism::plain) return plain_acceptable(*decoded) ? Kind::done : Kind::malformed;
    if (!valid_field(*decoded, false)) return Kind::malformed;
    return m.login_user ? Kind::done : Kind::challenge;
}

void check_step(Model& m, std::optional<std::string_view> response, const SaslExchange::Step& step) {
    const std::size_t round = m.round++;
    // What the client encoded ("=" in the first round is the empty initial response).
    std::optional<std::string> decoded;
    if (response) {
        if (round == 0 && *response == "=") decoded = std::string();
        else decoded = checked_decode(*response);
    }
    FUZZ_CHECK(step.kind == expected_kind(m, round, response.has_value(), decoded));

    // Each kind carries only its own payload: never both success and error.
    switch (step.kind) {
    case Kind::challenge: FUZZ_CHECK(is_empty(step.credentials)); break;
    case Kind::done: FUZZ_CHECK(step.challenge.empty()); break;
    case Kind::malformed: FUZZ_CHECK(step.challenge.empty() && is_empty(step.credentials)); return;
    }

    if (m.mechanism == SaslExchange::Mechanism::plain) {
        if (step.kind == Kind::challenge) {
            FUZZ_CHECK(step.challenge.empty());   // RFC 4954 4: "334 " and nothing else
            return;
        }
        FUZZ_CHECK(plain_message(step.credentials) == *decoded);   // the credentials are what the client sent
        // A client sending exactly these credentials again gets exactly them back.
        std::optional<SaslExchange> again = SaslExchange::start("PLAIN");
        FUZZ_CHECK(again.has_value());
        const SaslExchange::Step replay = again->next(accounts::base64_encode(plain_message(step.credentials)));
        FUZZ_CHECK(replay.kind == Kind::done && plain_message(replay.credentials) == *decoded);
        return;
    }
    if (step.kind == Kind::challenge) {
        if (!decoded) {
            FUZZ_CHECK(step.challenge == kUsernameChallenge);
            return;
        }
        FUZZ_CHECK(step.challenge == kPasswordChallenge);
        m.login_user = *decoded;
        return;
    }
    FUZZ_CHECK(step.credentials.authzid.empty());
    FUZZ_CHECK(step.credentials.authcid == *m.login_user);
    FUZZ_CHECK(step.credentials.password == *decoded);
}

void run_exchange(const std::vector<std::string_view>& lines) {
    // Line 0 is the AUTH argument: the mechanism up to the first space, then the initial response.
    const std::string_view arg = lines.front();
    const std::size_t space = arg.find(' ');
    const std::string_view mechanism = arg.substr(0, space);
    std::optional<std::string_view> initial;
    if (space != std::string_view::npos) initial = arg.substr(space + 1);

    std::optional<SaslExchange> x = SaslExchange::start(mechanism);
    std::string lower(mechanism);
    for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    FUZZ_CHECK(x.has_value() == (lower == "plain" || lower == "login"));
    if (!x) return;
    FUZZ_CHECK((x->mechanism() == SaslExchange::Mechanism::plain) == (lower == "plain"));

    Model m{x->mechanism(), 0, std::nullopt};
    SaslExchange::Step step = x->next(initial);
    check_step(m, initial, step);
    for (std::size_t i = 1; i < lines.size() && step.kind == Kind::challenge; ++i) {
        if (lines[i] == "*") {   // the session cancels; the exchange itself would call "*" malformed
            SaslExchange copy = *x;
            FUZZ_CHECK(copy.next("*").kind == Kind::malformed);
            return;
        }
        step = x->next(lines[i]);
        check_step(m, lines[i], step);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = fuzz::as_text(data, size);

    // The codec and the PLAIN message parser on the raw input.
    checked_decode(input);
    check_encode(input);
    check_parse_plain(input);

    // The input as an AUTH exchange.
    const std::vector<std::string_view> lines = split_lines(input);
    run_exchange(lines);
    // The same exchange with each line's payload taken as raw octets and encoded for the client, so the
    // PLAIN and LOGIN field checks see every octet pattern, not only what happens to be valid base64.
    if (lines.size() >= 2 || lines.front().find(' ') != std::string_view::npos) {
        std::vector<std::string> encoded;
        const std::string_view arg = lines.front();
        const std::size_t space = arg.find(' ');
        encoded.emplace_back(arg.substr(0, space));
        if (space != std::string_view::npos) encoded.back() += " " + accounts::base64_encode(arg.substr(space + 1));
        for (std::size_t i = 1; i < lines.size(); ++i)
            encoded.push_back(lines[i] == "*" ? std::string("*") : accounts::base64_encode(lines[i]));
        std::vector<std::string_view> views(encoded.begin(), encoded.end());
        run_exchange(views);
    }
    return 0;
}
