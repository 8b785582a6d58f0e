#include "server/client_policy.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ctime>

#include "dns/resolver.hpp"
#include "dns/wire.hpp"
#include "mailauth/spf.hpp"
#include "policy/dnsbl.hpp"
#include "policy/mail_policy.hpp"
#include "util/ascii.hpp"

namespace ferry::server {

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// The greylist table is written at most this often (and at stop): a crash loses at most this much of it, which
// costs a sender one more retry, never a message.
constexpr auto kGreylistSaveInterval = std::chrono::seconds(30);
// A list's TXT reason is quoted in our reply; it is cut to this and to printable ASCII.
constexpr std::size_t kMaxReason = 200;

std::chrono::seconds rounded_up_seconds(std::chrono::milliseconds ms) {
    return std::chrono::ceil<std::chrono::seconds>(ms);
}

// The A records of an answer, as IPv4 addresses in host order (what classify_dnsbl_answer reads).
std::vector<std::uint32_t> a_records(const dns::Answer& answer) {
    std::vector<std::uint32_t> out;
    if (answer.status != dns::Answer::Status::data) return out;
    for (const std::string& rdata : answer.rdata) {
        if (rdata.size() != 4) continue;
        const auto* p = reinterpret_cast<const unsigned char*>(rdata.data());
        out.push_back(std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3]);
    }
    return out;
}

std::string addresses_text(const std::vector<std::uint32_t>& answers) {
    std::string out;
    for (const std::uint32_t a : answers)
        out += fmt::format("{}{}.{}.{}.{}", out.empty() ? "" : ",", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    return out.empty() ? "none" : out;
}

std::string one_line(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (out.size() >= kMaxReason) break;
        out += (c >= 0x20 && c < 0x7f) ? c : ' ';
    }
    return out;
}

std::vector<std::shared_ptr<DnsblList>> make_lists(const config::Config& cfg) {
    std::vector<std::shared_ptr<DnsblList>> lists;
    for (const auto& settings : cfg.dnsbls) lists.push_back(std::make_shared<DnsblList>(DnsblList{settings}));
    return lists;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// ClientPolicy

ClientPolicy::ClientPolicy(asio::any_io_executor executor, dns::Lookup& dns, const config::Config& cfg)
    : executor_(executor),
      dns_(dns),
      greylist_file_(cfg.data_dir / "greylist"),
      rates_(cfg.rate_limit),
      lists_(make_lists(cfg)),
      greylist_(cfg.greylist.table()),
      connections_(cfg.rate_limit.connections, cfg.rate_limit.max_clients),
      messages_(cfg.rate_limit.messages, cfg.rate_limit.max_clients),
      recipients_(cfg.rate_limit.recipients, cfg.rate_limit.max_clients),
      user_messages_(cfg.rate_limit.user_messages, cfg.rate_limit.max_clients),
      user_recipients_(cfg.rate_limit.user_recipients, cfg.rate_limit.max_clients),
      save_timer_(executor) {}

void ClientPolicy::start() {
    // The table is read even when greylisting is off now, so turning it on by a reload finds what it knew.
    std::string error;
    if (!greylist_.load(greylist_file_, std::chrono::system_clock::now(), error))
        spdlog::error("policy=greylist cannot read {} ({}); starting with the {} entries read", greylist_file_.string(),
                      error, greylist_.size());
    else if (greylist_.size() > 0)
        spdlog::info("policy=greylist loaded entries={} from {}", greylist_.size(), greylist_file_.string());
    if (!lists_.empty()) asio::co_spawn(executor_, test_lists(lists_), asio::detached);
    asio::co_spawn(executor_, save_loop(), asio::detached);
}

void ClientPolicy::stop() {
    stopped_ = true;
    save_timer_.cancel();
    save();
    writer_.join();   // the last snapshot is on disk before the server goes on stopping
}

void ClientPolicy::reconfigure(const config::Config& cfg) {
    rates_ = cfg.rate_limit;
    connections_.set_rate(rates_.connections, rates_.max_clients);
    messages_.set_rate(rates_.messages, rates_.max_clients);
    recipients_.set_rate(rates_.recipients, rates_.max_clients);
    user_messages_.set_rate(rates_.user_messages, rates_.max_clients);
    user_recipients_.set_rate(rates_.user_recipients, rates_.max_clients);
    greylist_.set_settings(cfg.greylist.table());
    // Sessions under way keep the lists they started with (each holds its own).
    lists_ = make_lists(cfg);
    if (!lists_.empty()) asio::co_spawn(executor_, test_lists(lists_), asio::detached);
}

asio::awaitable<void> ClientPolicy::test_lists(std::vector<std::shared_ptr<DnsblList>> lists) {
    // RFC 5782 5: every list must list 127.0.0.2 and must not list 127.0.0.1. A list that fails (a zone that is
    // gone, a resolver the list refuses, a typo in `responses`) would refuse everybody or nobody: it is switched
    // off with one error line instead. A list that cannot be asked now (DNS trouble) stays on.
    for (const auto& list : lists) {
        const std::string& zone = list->settings.zone;
        const auto listed = co_await dns_.query("2.0.0.127." + zone, dns::kTypeA);
        const auto clean = co_await dns_.query("1.0.0.127." + zone, dns::kTypeA);
        if (listed.status == dns::Answer::Status::temporary || clean.status == dns::Answer::Status::temporary) {
            spdlog::warn("policy=dnsbl zone={} test points not answered ({}); the list stays on", zone,
                         listed.status == dns::Answer::Status::temporary ? listed.why : clean.why);
            continue;
        }
        const auto listed_a = a_records(listed), clean_a = a_records(clean);
        const auto listed_says = policy::classify_dnsbl_answer(listed_a, list->settings.responses);
        const auto clean_says = policy::classify_dnsbl_answer(clean_a, list->settings.responses);
        std::string why;
        if (listed_says != policy::DnsblAnswer::listed)
            why = fmt::format("127.0.0.2 is not listed (answer {})", addresses_text(listed_a));
        else if (clean_says != policy::DnsblAnswer::not_listed)
            why = fmt::format("127.0.0.1 is listed (answer {})", addresses_text(clean_a));
        if (!why.empty()) {
            list->disabled = true;
            spdlog::error("policy=dnsbl zone={} disabled: fails the RFC 5782 test points: {}", zone, why);
        } else {
            spdlog::info("policy=dnsbl zone={} weight={} test points ok", zone, list->settings.weight);
        }
    }
}

asio::awaitable<void> ClientPolicy::save_loop() {
    while (!stopped_) {
        save_timer_.expires_after(kGreylistSaveInterval);
        co_await save_timer_.async_wait(kNoThrow);
        if (stopped_) break;
        save();
    }
}

void ClientPolicy::save() {
    if (!greylist_.dirty()) return;
    // The snapshot here (the table is the I/O thread's), the file on the writer thread.
    asio::post(writer_, [file = greylist_file_, content = greylist_.snapshot(std::chrono::system_clock::now())] {
        std::string error;
        if (!policy::Greylist::write_file(file, content, error))
            spdlog::error("policy=greylist cannot save {}: {} (the next save tries again)", file.string(), error);
    });
}

std::string ClientPolicy::client_key(const policy::IpAddress& client) const {
    return policy::network_of(client, rates_.ipv4_prefix, rates_.ipv6_prefix).key();
}

bool ClientPolicy::take_connection(const policy::IpAddress& client) {
    return connections_.take(client_key(client), policy::RateLimiter::Clock::now()).allowed;
}
bool ClientPolicy::take_message(const policy::IpAddress& client) {
    return messages_.take(client_key(client), policy::RateLimiter::Clock::now()).allowed;
}
bool ClientPolicy::take_recipient(const policy::IpAddress& client) {
    return recipients_.take(client_key(client), policy::RateLimiter::Clock::now()).allowed;
}
bool ClientPolicy::take_user_message(const std::string& user) {
    return user_messages_.take(user, policy::RateLimiter::Clock::now()).allowed;
}
bool ClientPolicy::take_user_recipient(const std::string& user) {
    return user_recipients_.take(user, policy::RateLimiter::Clock::now()).allowed;
}

policy::GreylistDecision ClientPolicy::greylist(std::string_view source, std::string_view sender,
                                                std::string_view recipient) {
    return greylist_.check(source, sender, recipient, std::chrono::system_clock::now());
}

// ---------------------------------------------------------------------------------------------------------
// SessionPolicy

// The lists' answers for one client, asked in parallel while the session greets. `done` never expires by itself:
// it is cancelled when the last answer is in, which wakes whoever waits for the verdict.
struct SessionPolicy::Lookups {
    struct Entry {
        std::shared_ptr<DnsblList> list;
        std::string name;   // the question: the client's address in the list's zone (RFC 5782 2.1, 2.4)
        policy::DnsblAnswer answer = policy::DnsblAnswer::not_listed;
        std::string reason;
    };
    explicit Lookups(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
    std::vector<Entry> entries;
    std::size_t pending = 0;
    asio::steady_timer done;
    DnsblFindings findings;

    void finish() {
        // In configuration order, whatever order the answers came in: the reply names the first listing zone.
        std::vector<policy::ListResult> results;
        for (const Entry& e : entries) {
            results.push_back({e.answer, e.list->settings.weight});
            if (e.answer != policy::DnsblAnswer::listed) continue;
            if (e.list->settings.weight < 0) {
                findings.allow_listed = true;
            } else if (findings.reason.empty()) {
                findings.reason = e.reason;
            }
            findings.zones += (findings.zones.empty() ? "" : ",") + e.list->settings.zone;
        }
        findings.score = policy::dnsbl_score(results);
        done.cancel();
    }
};

SessionPolicy::SessionPolicy(ClientPolicy& shared, const config::Config& cfg, bool mx, std::string client_ip,
                             std::string client)
    : shared_(shared), cfg_(cfg), mx_(mx), client_ip_(std::move(client_ip)), client_(std::move(client)),
      address_(policy::parse_ip(client_ip_)) {
    allow_listed_network_ = address_ && policy::in_any(cfg_.policy.allow_networks, *address_);
}

std::optional<smtp::Reply> SessionPolicy::on_connect() {
    if (!address_ || allow_listed_network_) return std::nullopt;
    if (!shared_.take_connection(*address_)) {
        spdlog::warn("policy=rate client={} limit=connections action=refuse", client_);
        return smtp::Reply(421, "4.7.0", fmt::format("{} Error: too many connections from {}", cfg_.hostname, client_ip_));
    }
    if (!mx_) return std::nullopt;
    // The lists are asked now, in parallel with the greeting (and the early-talker wait): the verdict is needed
    // only at the first RCPT (or for the greeting with dnsbl_reject = "connect").
    std::vector<Lookups::Entry> entries;
    for (const auto& list : shared_.lists()) {
        if (list->disabled) continue;
        if (auto name = policy::dnsbl_query_name(*address_, list->settings.zone))
            entries.push_back(Lookups::Entry{list, std::move(*name), policy::DnsblAnswer::not_listed, {}});
    }
    if (entries.empty()) return std::nullopt;   // no list to ask: nothing allocated for this session
    auto lookups = std::make_shared<Lookups>(shared_.executor());
    lookups->entries = std::move(entries);
    lookups->pending = lookups->entries.size();
    for (std::size_t i = 0; i < lookups->entries.size(); ++i) {
        asio::co_spawn(
            shared_.executor(),
            [lookups, i, &dns = shared_.dns(), client = client_]() -> asio::awaitable<void> {
                Lookups::Entry& e = lookups->entries[i];
                DnsblList& list = *e.list;
                const std::string& name = e.name;
                ++list.queries;
                const dns::Answer answer = co_await dns.query(name, dns::kTypeA);
                const auto addresses = a_records(answer);
                e.answer = policy::classify_dnsbl_answer(addresses, list.settings.responses);
                if (answer.status == dns::Answer::Status::temporary) {
                    ++list.errors;
                    spdlog::warn("policy=dnsbl zone={} client={} error=\"{}\" errors={} (not a listing)",
                                 list.settings.zone, client, answer.why, list.errors);
                } else if (e.answer == policy::DnsblAnswer::error) {
                    ++list.errors;
                    spdlog::warn("policy=dnsbl zone={} client={} error=refused answer={} errors={} (the list refused "
                                 "the query: not a listing)",
                                 list.settings.zone, client, addresses_text(addresses), list.errors);
                } else if (e.answer == policy::DnsblAnswer::listed) {
                    ++list.listings;
                    if (list.settings.weight > 0) {
                        // The reason the list gives (RFC 5782 2.1: a TXT record at the same name), for our reply.
                        const dns::Answer txt = co_await dns.query(name, dns::kTypeTxt);
                        if (txt.status == dns::Answer::Status::data && !txt.rdata.empty())
                            if (const auto text = dns::parse_txt(txt.rdata.front())) e.reason = one_line(*text);
                    }
                    spdlog::info("policy=dnsbl zone={} client={} listed answer={} weight={}", list.settings.zone,
                                 client, addresses_text(addresses), list.settings.weight);
                }
                if (--lookups->pending == 0) lookups->finish();
            },
            asio::detached);
    }
    lookups_ = std::move(lookups);
    return std::nullopt;
}

asio::awaitable<const DnsblFindings*> SessionPolicy::findings() {
    if (!lookups_) co_return nullptr;
    if (lookups_->pending > 0) co_await lookups_->done.async_wait(kNoThrow);
    const DnsblFindings& f = lookups_->findings;
    if (!dnsbl_logged_ && (!f.zones.empty() || f.allow_listed)) {
        dnsbl_logged_ = true;
        const int threshold = cfg_.policy.dnsbl_threshold;
        spdlog::info("policy=dnsbl client={} zone={} score={} threshold={} action={}", client_, f.zones, f.score,
                     threshold, f.allow_listed ? "allow" : f.refused(threshold) ? "reject" : "pass");
    } else if (!dnsbl_logged_) {
        dnsbl_logged_ = true;   // listed nowhere: the common case, so not a line per connection at info
        spdlog::debug("policy=dnsbl client={} zone= score=0 threshold={} action=pass", client_,
                      cfg_.policy.dnsbl_threshold);
    }
    co_return &f;
}

smtp::Reply SessionPolicy::dnsbl_reply(const DnsblFindings& f) const {
    // Postfix's wording, which operators and list maintainers know: the zone and the list's own reason.
    const std::string zone = f.zones.substr(0, f.zones.find(','));
    std::string text = fmt::format("Service unavailable; client [{}] blocked using {}", client_ip_, zone);
    if (!f.reason.empty()) text += "; " + f.reason;
    return smtp::Reply(554, "5.7.1", text);
}

asio::awaitable<std::optional<smtp::Reply>> SessionPolicy::at_greeting() {
    if (!mx_ || allow_listed_network_ || !cfg_.policy.dnsbl_at_connect) co_return std::nullopt;
    const DnsblFindings* f = co_await findings();
    if (f && f->refused(cfg_.policy.dnsbl_threshold)) co_return dnsbl_reply(*f);
    co_return std::nullopt;
}

asio::awaitable<std::string> SessionPolicy::greylist_source(const std::string& sender, const std::string& helo) {
    // RFC 6647 4.2: large senders retry from other addresses of their pool. Their SPF record names that pool, so
    // a sender whose domain's SPF passes is greylisted by that domain instead of by the client's network.
    const std::string network = policy::network_of(*address_, 24, 64).to_string();
    if (sender.empty()) co_return network;
    if (sender != spf_sender_) {
        mailauth::SpfQuery query{client_ip_, helo, sender, cfg_.hostname};
        const auto outcome = co_await mailauth::check_spf_mail_from(shared_.dns(), query, std::time(nullptr));
        spf_sender_ = sender;
        spf_source_ = outcome.result == mailauth::SpfResult::pass && !outcome.domain.empty()
                          ? "spf:" + util::ascii_lower(outcome.domain)
                          : network;
    }
    co_return spf_source_;
}

asio::awaitable<std::optional<smtp::Reply>> SessionPolicy::at_rcpt(const std::string& sender,
                                                                   const smtp::Mailbox& rcpt,
                                                                   const std::string& user, const std::string& helo) {
    // RFC 5321 4.5.1: postmaster must always be reachable, whatever the client's reputation or hurry.
    if (policy::is_postmaster(rcpt.local)) co_return std::nullopt;
    const std::string recipient = rcpt.to_string();
    auto refuse = [&](std::string_view limit, std::string text) {
        spdlog::warn("policy=rate client={} limit={} action=refuse{}", client_, limit,
                     user.empty() ? std::string() : " user=" + user);
        return smtp::Reply(451, "4.7.1", std::move(text));
    };
    if (!user.empty()) {
        // A stolen password must not become 100k messages: each account has its own budget.
        if (!message_counted_) {
            if (!shared_.take_user_message(user))
                co_return refuse("user_messages", fmt::format("Error: account {} sent too many messages, try again later", user));
            message_counted_ = true;
        }
        if (!shared_.take_user_recipient(user))
            co_return refuse("user_recipients", fmt::format("Error: account {} sent to too many recipients, try again later", user));
        co_return std::nullopt;
    }
    if (!address_ || allow_listed_network_) co_return std::nullopt;

    const DnsblFindings* f = mx_ ? co_await findings() : nullptr;
    if (f && f->refused(cfg_.policy.dnsbl_threshold)) co_return dnsbl_reply(*f);

    if (!message_counted_) {
        if (!shared_.take_message(*address_))
            co_return refuse("messages", fmt::format("Error: too many messages from {}, slow down", client_ip_));
        message_counted_ = true;
    }
    if (!shared_.take_recipient(*address_))
        co_return refuse("recipients", fmt::format("Error: too many recipients from {}, slow down", client_ip_));

    if (!mx_ || !cfg_.greylist.enabled || (f && f->allow_listed)) co_return std::nullopt;
    const std::string source = co_await greylist_source(sender, helo);
    const auto d = shared_.greylist(source, util::ascii_lower(sender), util::ascii_lower(recipient));
    using Kind = policy::GreylistDecision::Kind;
    const char* why = d.kind == Kind::known ? "known" : d.kind == Kind::retried ? "retried"
                      : d.kind == Kind::first ? "first" : "too_early";
    if (d.pass()) {
        spdlog::info("policy=greylist client={} source={} from=<{}> to=<{}> action=pass reason={}", client_, source,
                     sender, recipient, why);
        co_return std::nullopt;
    }
    const auto wait = rounded_up_seconds(d.wait);
    spdlog::info("policy=greylist client={} source={} from=<{}> to=<{}> action=defer reason={} wait={}s", client_,
                 source, sender, recipient, why, wait.count());
    // RFC 6647 2.1: a 4xx that says what it is, so a postmaster reading a bounce knows it will pass.
    co_return smtp::Reply(451, "4.7.1", fmt::format("Greylisted, please try again in {} seconds", wait.count()));
}

}  // namespace ferry::server
