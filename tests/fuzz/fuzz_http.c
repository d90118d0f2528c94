/* fuzz_http.c -- the HTTP request path: raw bytes through libmicrohttpd
 * into the replica's handlers (consumer/http/httpd.c, included here so the
 * harness can reset the one-job slot between inputs).
 *
 * Two servers are started as a replica starts them (httpd_start: epoll,
 * suspend/resume, the connection and memory limits, --max-input 4096),
 * one with --auth-token, their event loops run by this one thread
 * (httpd_run, as the watchdog's thread runs a replica's); the first input byte
 * picks one. Each input is one client connection (a socketpair handed to
 * the daemon with MHD_add_connection): the rest of the bytes are sent, the
 * write side shut, and the harness plays the lifecycle (a job that arrives
 * is answered with its own input, as the echo core does) until the server
 * closes the connection. Then the slot is reset for the next input.
 *
 * Invariants: the server closes every connection within 10 s once the
 * client has sent everything; whatever it sends starts with a status line;
 * ASan/UBSan/LSan stay quiet. */
#include "../../consumer/http/httpd.c"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

static config cfgs[2];
static httpd *servers[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    static const char *base[] = {"--port", "0", "--bind", "127.0.0.1", "--max-input", "4096",
                                 "--http-timeout", "2", "--auth-token", "tok"};
    char *envp[] = {NULL};
    char err[256];
    (void)argc;
    (void)argv;
    log_init(LL_ERROR, 1, "fuzz");
    replica_init("fuzz", "http");
    for (int k = 0; k < 2; k++) {
        if (config_load(&cfgs[k], k ? 10 : 8, (char **)base, envp, 0, err, sizeof(err)) < 0 ||
            !(servers[k] = httpd_start(&cfgs[k], 1, err, sizeof(err)))) {
            fprintf(stderr, "fuzz_http: %s\n", err);
            abort();
        }
    }
    return 0;
}

/* The lifecycle's part: take a job that arrived and answer it. */
static void play_lifecycle(httpd *h) {
    job j;
    int status = 0;
    char err[256];
    memset(&j, 0, sizeof(j));
    int rc = httpd_job_wait(h, 0, &j, &status, err, sizeof(err));
    if (rc == CLAIM_OK)
        httpd_job_respond(h, 200, "application/octet-stream", j.input, j.input_len);
    else if (rc == CLAIM_REJECT)
        httpd_job_respond(h, status, "application/json", "{\"detail\":\"rejected\"}", 21);
    if (rc != CLAIM_NONE) job_free(&j);
}

/* Back to a replica that has not taken its job yet. */
static void reset_slot(httpd *h) {
    pthread_mutex_lock(&h->mu);
    if (h->slot == SLOT_WAITING || h->slot == SLOT_RECEIVING) fuzz_fail("slot %d after the close", (int)h->slot);
    h->slot = SLOT_FREE;
    h->job_conn = NULL;
    h->job_ready = h->job_taken = 0;
    h->reject_status = 0;
    job_free(&h->pending);
    memset(&h->pending, 0, sizeof(h->pending));
    free(h->resp_type);
    free(h->resp_body);
    h->resp_type = h->resp_body = NULL;
    h->resp_len = 0;
    pthread_mutex_unlock(&h->mu);
    replica_set_phase(PHASE_IDLE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int sv[2];
    struct sockaddr_in peer;
    char head[8], rbuf[16384];
    size_t off = 0, got = 0;
    int shut = 0;
    int64_t sent_at = 0;

    if (size < 1) return 0;
    httpd *h = servers[data[0] & 1];
    data++;
    size--;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) abort();
    memset(&peer, 0, sizeof(peer));
    peer.sin_family = AF_INET;
    peer.sin_port = htons(40000);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(h->d, sv[1], (struct sockaddr *)&peer, sizeof(peer)) != MHD_YES)
        fuzz_fail("MHD_add_connection refused");
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    int64_t start = clock_mono_ms();
    for (;;) {
        httpd_run(h);
        play_lifecycle(h);
        /* The end of the input is shut only once the server has read it all
         * (or stopped reading for 20 ms): libmicrohttpd's edge-triggered
         * epoll misses an EOF that arrives with the last bytes, and such a
         * connection waits for --http-timeout. */
        int queued = 0;
        if (off == size && !shut && sent_at == 0) sent_at = clock_mono_ms();
        if (off == size && !shut &&
            ((ioctl(sv[0], SIOCOUTQ, &queued) == 0 && queued == 0) || clock_mono_ms() - sent_at > 20)) {
            shutdown(sv[0], SHUT_WR);
            shut = 1;
        }
        struct pollfd p = {sv[0], (short)(POLLIN | (off < size ? POLLOUT : 0)), 0};
        poll(&p, 1, off == size && !shut ? 0 : 1);
        if (off < size && (p.revents & POLLOUT)) {
            ssize_t n = send(sv[0], data + off, size - off, MSG_NOSIGNAL);
            if (n > 0) off += (size_t)n;
            else if (n < 0 && errno != EAGAIN) off = size; /* the server closed early */
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(sv[0], rbuf, sizeof(rbuf), 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
            for (ssize_t i = 0; i < n && got < sizeof(head); i++) head[got++] = rbuf[i];
        }
        if (clock_mono_ms() - start > 10000) fuzz_fail("connection still open 10 s after the request");
    }
    close(sv[0]);
    if (got && (got < 7 || memcmp(head, "HTTP/1.", 7) != 0)) fuzz_fail("answer without a status line");
    while (open_connections(h) != 0) {
        if (clock_mono_ms() - start > 10000) fuzz_fail("the server never released the connection");
        httpd_run(h);
        usleep(50);
    }
    play_lifecycle(h);
    reset_slot(h);
    return 0;
}
