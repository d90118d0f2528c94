/* healthcheck.c -- `oneshot healthcheck`: the container's HEALTHCHECK.
 *
 * The runtime image has no shell and no curl (an empty base), so the
 * binary asks its own replica: GET /health on 127.0.0.1 at the configured
 * port (--port / ONESHOT_PORT, default 8000), 2 s at most. Exit 0 when the
 * answer is 200 with "status":"ok", 1 otherwise (Docker's and podman's
 * convention for unhealthy), with one line saying why. */
#include "healthcheck.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/exitcodes.h"

#define HC_TIMEOUT_MS 2000

static int unhealthy(int fd, const char *why) {
    if (fd >= 0) close(fd);
    fprintf(stderr, "oneshot healthcheck: unhealthy: %s\n", why);
    return 1;
}

int healthcheck_run(const config *cfg) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)cfg->port)};
    char resp[1024];
    size_t got = 0;

    if (cfg->port <= 0) return unhealthy(-1, "no port (--port 0 picks one at random)");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return unhealthy(-1, "socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) return unhealthy(fd, "connect to 127.0.0.1 refused");
    static const char req[] = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) return unhealthy(fd, "write");
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, HC_TIMEOUT_MS) <= 0) return unhealthy(fd, "no answer within 2 s");
        ssize_t n = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        if (got == sizeof(resp) - 1) break;
    }
    resp[got] = '\0';
    close(fd);
    if (strncmp(resp, "HTTP/1.", 7) != 0 || strncmp(resp + 8, " 200", 4) != 0)
        return unhealthy(-1, "answer is not 200");
    if (!strstr(resp, "\"status\":\"ok\"")) return unhealthy(-1, "status is not ok");
    return OS_EXIT_OK;
}
