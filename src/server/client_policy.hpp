// Connection and envelope policy on the I/O side: the DNS block and allow lists asked while a client is greeted,
// greylisting, the GCRA rate limits and the early-talker test's verdict, for the sessions of SmtpConnection.
// The decisions themselves are pure (src/policy/); this is where they meet the resolver, the clock, the table file
// under data_dir and the replies. Only the I/O thread touches it.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/lookup.hpp"
#include "policy/client_network.hpp"
#include "policy/greylist.hpp"
#include "policy/rate_limit.hpp"
#include "smtp/address.hpp"
#include "smtp/reply.hpp"

namespace ferry::server {

namespace asio = boost::asio;

// One configured list, with what it has done so far (the counters go into the log lines).
struct DnsblList {
    config::DnsblSettings settings;
    bool disabled = false;   // failed its RFC 5782 test points at start or reload
    std::uint64_t queries = 0, listings = 0, errors = 0;
};

// What the lists said about one client.
struct DnsblFindings {
    int score = 0;
    bool allow_listed = false;       // a list with a negative weight listed it
    std::string zones;               // the zones that listed it, "zen.test,bl.test" (for the log and the reply)
    std::string reason;              // the TXT record of the first block list that listed it, cleaned to one line
    bool refused(int threshold) const { return !allow_listed && score >= threshold; }
};

class ClientPolicy {
public:
    ClientPolicy(asio::any_io_executor executor, dns::Lookup& dns, const config::Config& cfg);

    // The greylist table is read (data_dir/greylist), the lists' test points are asked, and the table is saved
    // every 30 s when it changed. stop(): the last save.
    void start();
    void stop();
    // A reload: new lists (tested again), limits and greylist settings; the greylist and limiter state is kept.
    void reconfigure(const config::Config& cfg);

    const std::vector<std::shared_ptr<DnsblList>>& lists() const { return lists_; }
    dns::Lookup& dns() { return dns_; }
    const asio::any_io_executor& executor() const { return executor_; }

    // Rate limits: true when the event is allowed (and counted). A disabled limit allows everything.
    bool take_connection(const policy::IpAddress& client);
    bool take_message(const policy::IpAddress& client);
    bool take_recipient(const policy::IpAddress& client);
    bool take_user_message(const std::string& user);
    bool take_user_recipient(const std::string& user);

    policy::GreylistDecision greylist(std::string_view source, std::string_view sender, std::string_view recipient);

private:
    asio::awaitable<void> test_lists(std::vector<std::shared_ptr<DnsblList>> lists);
    asio::awaitable<void> save_loop();
    void save();
    std::string client_key(const policy::IpAddress& client) const;

    asio::any_io_executor executor_;
    dns::Lookup& dns_;
    std::filesystem::path greylist_file_;
    config::RateLimitSettings rates_;
    std::vector<std::shared_ptr<DnsblList>> lists_;
    policy::Greylist greylist_;
    policy::RateLimiter connections_, messages_, recipients_, user_messages_, user_recipients_;
    asio::steady_timer save_timer_;
    // Writes the greylist table's snapshots, in order: the write and its fsyncs can take a while on a busy disk,
    // and the I/O thread serves every session meanwhile.
    asio::thread_pool writer_{1};
    bool stopped_ = false;
};

// The policy of one session: started at accept, asked at the greeting and at each RCPT.
class SessionPolicy {
public:
    SessionPolicy(ClientPolicy& shared, const config::Config& cfg, bool mx, std::string client_ip, std::string client);

    bool allow_listed() const { return allow_listed_network_; }
    // At accept: the connection rate (421 4.7.0 when spent), then the DNS lists are asked in the background.
    std::optional<smtp::Reply> on_connect();
    // dnsbl_reject = "connect": the 554 greeting, once the lists answered.
    asio::awaitable<std::optional<smtp::Reply>> at_greeting();
    // A new transaction (MAIL accepted): its message is counted at its first recipient.
    void on_mail() { message_counted_ = false; }
    // A recipient the session accepted: the DNSBL verdict, the rate limits, greylisting. nullopt: accepted;
    // else the reply that refuses it. `user` is the authenticated account ("" without), `helo` for SPF.
    asio::awaitable<std::optional<smtp::Reply>> at_rcpt(const std::string& sender, const smtp::Mailbox& recipient,
                                                        const std::string& user, const std::string& helo);

private:
    struct Lookups;
    asio::awaitable<const DnsblFindings*> findings();
    asio::awaitable<std::string> greylist_source(const std::string& sender, const std::string& helo);
    smtp::Reply dnsbl_reply(const DnsblFindings& f) const;

    ClientPolicy& shared_;
    const config::Config& cfg_;
    bool mx_;
    std::string client_ip_, client_;
    std::optional<policy::IpAddress> address_;
    bool allow_listed_network_ = false;
    std::shared_ptr<Lookups> lookups_;   // null when no list is asked
    bool dnsbl_logged_ = false;
    bool message_counted_ = false;
    std::string spf_sender_, spf_source_;   // the greylist source of the last sender checked
};

}  // namespace ferry::server
