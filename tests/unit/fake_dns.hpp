// A table of DNS answers for unit tests of code that asks dns::Lookup (SPF, DKIM keys, DMARC), and a way to run
// such a coroutine to its end. Names not in the table are NXDOMAIN; a name in the table without records of the
// asked type is NODATA.
#pragma once

#include <boost/asio.hpp>

#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <arpa/inet.h>

#include "dns/lookup.hpp"
#include "dns/resolver.hpp"

namespace ferry::testing {

class FakeDns : public dns::Lookup {
public:
    // Records in presentation-like form, added per name (lower case, no trailing dot).
    FakeDns& txt(const std::string& name, const std::string& text) { return add(name, dns::kTypeTxt, txt_rdata(text)); }
    FakeDns& a(const std::string& name, const std::string& ip) { return add(name, dns::kTypeA, ip_rdata(AF_INET, ip)); }
    FakeDns& aaaa(const std::string& name, const std::string& ip) { return add(name, dns::kTypeAaaa, ip_rdata(AF_INET6, ip)); }
    FakeDns& mx(const std::string& name, std::uint16_t pref, const std::string& host) {
        std::string r;
        r.push_back(static_cast<char>(pref >> 8));
        r.push_back(static_cast<char>(pref & 0xff));
        return add(name, dns::kTypeMx, r + name_rdata(host));
    }
    FakeDns& ptr(const std::string& name, const std::string& host) { return add(name, dns::kTypePtr, name_rdata(host)); }
    // A record of any type with its rdata as given (a TXT record of no strings: "").
    FakeDns& rdata(const std::string& name, int type, std::string rdata) { return add(name, type, std::move(rdata)); }
    // The name exists (NODATA for every type not added).
    FakeDns& exists(const std::string& name) { names_.insert(name); return *this; }
    // Every question about `name` fails for now (SERVFAIL / timeout).
    FakeDns& temporary(const std::string& name) { temporary_.insert(name); return *this; }

    boost::asio::awaitable<dns::Answer> query(std::string name, int type) override {
        asked.emplace_back(name, type);
        dns::Answer a;
        if (temporary_.count(name)) {
            a.status = dns::Answer::Status::temporary;
            a.why = "SERVFAIL";
            co_return a;
        }
        if (!names_.count(name)) {
            a.status = dns::Answer::Status::nxdomain;
            co_return a;
        }
        const auto it = records_.find({name, type});
        if (it == records_.end()) {
            a.status = dns::Answer::Status::no_data;
            co_return a;
        }
        a.status = dns::Answer::Status::data;
        a.rdata = it->second;
        co_return a;
    }

    std::vector<std::pair<std::string, int>> asked;   // every question, in order

    // TXT rdata: the text cut into character-strings of at most 255 octets.
    static std::string txt_rdata(const std::string& text) {
        std::string r;
        std::size_t at = 0;
        do {
            const std::size_t n = std::min<std::size_t>(255, text.size() - at);
            r.push_back(static_cast<char>(n));
            r.append(text, at, n);
            at += n;
        } while (at < text.size());
        return r;
    }
    static std::string name_rdata(const std::string& name) {
        std::string r;
        std::size_t at = 0;
        while (at < name.size()) {
            std::size_t dot = name.find('.', at);
            if (dot == std::string::npos) dot = name.size();
            r.push_back(static_cast<char>(dot - at));
            r.append(name, at, dot - at);
            at = dot + 1;
        }
        r.push_back('\0');
        return r;
    }
    static std::string ip_rdata(int family, const std::string& ip) {
        unsigned char b[16];
        if (::inet_pton(family, ip.c_str(), b) != 1) throw std::invalid_argument("bad address " + ip);
        return std::string(reinterpret_cast<const char*>(b), family == AF_INET ? 4 : 16);
    }

private:
    FakeDns& add(const std::string& name, int type, std::string rdata) {
        names_.insert(name);
        records_[{name, type}].push_back(std::move(rdata));
        return *this;
    }
    std::set<std::string> names_, temporary_;
    std::map<std::pair<std::string, int>, std::vector<std::string>> records_;
};

// Runs a coroutine to its end on a fresh io_context and returns its value (rethrows what it threw).
template <typename T>
T run_sync(boost::asio::awaitable<T> task) {
    boost::asio::io_context io;
    std::optional<T> result;
    std::exception_ptr error;
    boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
        if (e) error = e;
        else result = std::move(value);
    });
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

}  // namespace ferry::testing
