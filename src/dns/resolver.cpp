#include "dns/resolver.hpp"

#include <unbound.h>

#include <fmt/format.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "dns/wire.hpp"

namespace ferry::dns {

namespace {

// "127.0.0.1:5353" / "[::1]:53" -> "127.0.0.1@5353" / "::1@53", libunbound's forwarder syntax.
std::string unbound_address(const std::string& host_port) {
    const auto colon = host_port.rfind(':');
    std::string host = host_port.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return host + "@" + host_port.substr(colon + 1);
}

void check(int err, const char* what) {
    if (err != 0) throw std::runtime_error(fmt::format("dns: {}: {}", what, ub_strerror(err)));
}

constexpr int kRcodeServfail = 2;   // RFC 1035 4.1.1

// libunbound copies each record of the answer with memdup(), which returns NULL for zero octets, and then reports
// the whole lookup as SERVFAIL although the server answered NOERROR: one record with RDLENGTH 0 (a TXT record of
// no strings, which RFC 7208 4.5 and RFC 6376 3.6.2.2 simply skip) would make every other record at the name
// unreadable, and an SPF or DKIM check a temperror. When the message itself says NOERROR, the records are read
// from it instead (only for types whose rdata it holds as they are). libunbound then sets neither `secure` nor
// `bogus`, so such an answer is never `secure` (DANE does not trust it), and one that comes with a reason it is
// bogus (why_bogus, which libunbound does hand over) stays a failure.
bool read_from_message(const ub_result& r, Answer& a) {
    if (!r.answer_packet || r.answer_len <= 0 || !r.qname || r.why_bogus) return false;
    const std::string_view message(static_cast<const char*>(r.answer_packet), static_cast<std::size_t>(r.answer_len));
    if (message_rcode(message) != 0) return false;   // the server's own failure
    // The records are owned by the name the CNAME chain ends at; libunbound names it before copying them.
    const auto rdata = answer_rdata(message, r.canonname ? r.canonname : r.qname, r.qtype);
    if (!rdata || rdata->empty()) return false;
    a.status = Answer::Status::data;
    a.rdata = std::move(*rdata);
    return true;
}

Answer to_answer(int err, ub_result* r) {
    Answer a;
    if (err != 0) {
        a.why = ub_strerror(err);
        return a;
    }
    std::unique_ptr<ub_result, decltype(&ub_resolve_free)> owned(r, &ub_resolve_free);
    a.secure = r->secure != 0;
    if (r->canonname) a.canonical_name = r->canonname;
    if (r->bogus) {
        a.why = std::string("DNSSEC validation failed") + (r->why_bogus ? std::string(": ") + r->why_bogus : "");
        return a;
    }
    if (r->nxdomain) {
        a.status = Answer::Status::nxdomain;
        return a;
    }
    if (r->rcode == kRcodeServfail && read_from_message(*r, a)) return a;
    if (r->rcode != 0) {   // SERVFAIL, REFUSED, ...
        static constexpr const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
        a.why = r->rcode < 6 ? kNames[r->rcode] : fmt::format("rcode {}", r->rcode);
        return a;
    }
    if (!r->havedata) {
        a.status = Answer::Status::no_data;
        return a;
    }
    a.status = Answer::Status::data;
    for (int i = 0; r->data[i]; ++i) a.rdata.emplace_back(r->data[i], static_cast<std::size_t>(r->len[i]));
    return a;
}

}  // namespace

struct Resolver::Pending {
    Resolver* resolver;
    std::function<void(Answer)> done;
    asio::steady_timer timer;
    int async_id = 0;
    bool finished = false;
};

Resolver::Resolver(asio::any_io_executor executor, const config::DnsSettings& settings)
    : fd_(executor), timeout_(settings.timeout) {
    ctx_ = ub_ctx_create();
    if (!ctx_) throw std::runtime_error("dns: cannot create a libunbound context");
    try {
        // Callbacks come from ub_process() on our thread; a thread of libunbound's own does the network work.
        check(ub_ctx_async(ctx_, 1), "async");
        if (settings.resolver) {
            // unbound will not query loopback servers unless told: a local resolver is exactly what we want.
            check(ub_ctx_set_option(ctx_, "do-not-query-localhost:", "no"), "do-not-query-localhost");
            check(ub_ctx_set_fwd(ctx_, unbound_address(*settings.resolver).c_str()), "forwarder");
            // libunbound answers some special-use names itself with NXDOMAIN (RFC 6761 6.2 lets a resolver
            // configured for testing pass them on): the test domain and the reverse zones of the documentation
            // address blocks (RFC 5737, RFC 3849). The server named here is the authority for them instead, as
            // for everything else; .onion, localhost and the private address blocks stay unbound's own. (Last:
            // adding a zone finalizes the context, and no setting may follow.)
            for (const char* zone : {"test.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
                                     "113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."})
                check(ub_ctx_zone_add(ctx_, zone, "nodefault"), "local-zone nodefault");
        } else {
            check(ub_ctx_resolvconf(ctx_, nullptr), "reading /etc/resolv.conf");
        }
        fd_.assign(ub_fd(ctx_));
    } catch (...) {
        ub_ctx_delete(ctx_);
        throw;
    }
}

Resolver::~Resolver() {
    alive_.reset();
    pending_.clear();
    boost::system::error_code ignored;
    fd_.cancel(ignored);
    fd_.release();   // the descriptor is libunbound's
    ub_ctx_delete(ctx_);
}

void Resolver::watch() {
    // Armed only while lookups are outstanding, so an idle resolver does not keep the event loop running.
    if (watching_ || pending_.empty()) return;
    watching_ = true;
    fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
                       if (alive.expired()) return;   // the resolver is gone
                       watching_ = false;
                       if (!ec) ub_process(ctx_);   // runs on_result for every answer that is in
                       watch();
                   });
}

void Resolver::on_result(void* data, int err, ub_result* result) {
    auto* p = static_cast<Pending*>(data);
    p->resolver->finish(p, to_answer(err, result));
}

void Resolver::finish(Pending* p, Answer answer) {
    if (p->finished) return;
    p->finished = true;
    const auto node = pending_.extract(p);   // alive until the end of this call, or of its timer handler
    p->timer.cancel();
    if (pending_.empty() && watching_) {
        boost::system::error_code ignored;
        fd_.cancel(ignored);   // nothing left to wait for (a timed-out lookup's answer never comes)
    }
    p->done(std::move(answer));
}

void Resolver::cancel_all() {
    shut_down_ = true;
    std::vector<std::shared_ptr<Pending>> all;
    for (auto& [p, shared] : pending_) all.push_back(shared);
    for (auto& p : all) {
        ub_cancel(ctx_, p->async_id);
        Answer a;
        a.why = "resolver shut down";
        finish(p.get(), std::move(a));
    }
}

asio::awaitable<Answer> Resolver::query(std::string name, int type) {
    auto executor = co_await asio::this_coro::executor;
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Answer)>(
        [&](auto handler) {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            auto pending = std::make_shared<Pending>(Pending{
                this,
                [shared, executor](Answer a) mutable {
                    asio::post(executor, [shared, a = std::move(a)]() mutable { (*shared)(std::move(a)); });
                },
                asio::steady_timer(executor), 0, false});
            Pending* p = pending.get();
            if (shut_down_) {
                Answer a;
                a.why = "resolver shut down";
                p->done(std::move(a));
                return;
            }
            const int err = ub_resolve_async(ctx_, name.c_str(), type, 1 /* IN */, p, &Resolver::on_result,
                                             &p->async_id);
            if (err != 0) {
                Answer a;
                a.why = ub_strerror(err);
                p->done(std::move(a));
                return;
            }
            pending_.emplace(p, pending);
            p->timer.expires_after(timeout_);
            p->timer.async_wait([this, pending](boost::system::error_code ec) {
                if (ec || pending->finished) return;   // answered first
                ub_cancel(ctx_, pending->async_id);     // its callback will not come
                Answer a;
                a.why = fmt::format("no answer within {} ms", timeout_.count());
                finish(pending.get(), std::move(a));
            });
            watch();
        },
        asio::use_awaitable);
}

}  // namespace ferry::dns
