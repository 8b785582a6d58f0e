// LD_PRELOAD shim for bench/policy.py: each IPv4 connection a program (smtp-source) makes to 127.0.0.1 goes out
// from an address of its own in 127.0.0.0/8 (all of which are this host's on Linux's loopback), so the server sees
// a new client for every connection: DNSBL names that no cache holds yet, as from a stream of new senders. smtp-source
// has no option to bind its connections (and one client address is all a cache needs to answer every lookup after
// the first).
//
// The n-th connection comes from 127.A.B.C with A = 1 + n / 62500 (so never 127.0.0.x: 127.0.0.2 is the DNSBL test
// point, listed), B = n / 250 % 250, C = 1 + n % 250; n starts at $MANY_SOURCES_OFFSET (default 0), so that runs
// one after another use addresses no earlier run used. When bind() fails the connection goes out from the
// kernel's choice (127.0.0.1), as without the shim.
//
// Build: cc -shared -fPIC -O2 -o many_sources.so many_sources.c -ldl
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

static unsigned long next_source = 0;
static int started = 0;

int connect(int fd, const struct sockaddr* to, socklen_t len) {
    static int (*real_connect)(int, const struct sockaddr*, socklen_t) = 0;
    if (!real_connect) real_connect = (int (*)(int, const struct sockaddr*, socklen_t))dlsym(RTLD_NEXT, "connect");
    if (!started) {
        const char* offset = getenv("MANY_SOURCES_OFFSET");
        next_source = offset ? strtoul(offset, 0, 10) : 0;
        started = 1;
    }
    if (to && to->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in) &&
        ((const struct sockaddr_in*)to)->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
        const unsigned long n = next_source++ % (250UL * 62500UL);
        struct sockaddr_in from = {0};
        from.sin_family = AF_INET;
        from.sin_addr.s_addr = htonl((127UL << 24) | ((1 + n / 62500) << 16) | ((n / 250 % 250) << 8) | (1 + n % 250));
        (void)bind(fd, (const struct sockaddr*)&from, sizeof from);
    }
    return real_connect(fd, to, len);
}
