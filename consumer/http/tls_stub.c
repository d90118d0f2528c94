/* http/tls_stub.c -- keeps GnuTLS out of the process.
 *
 * oneshot never serves TLS: the platform (Verda's gateway, a Kubernetes
 * ingress, a service mesh) terminates it in front of the replica. Debian's
 * libmicrohttpd is built with HTTPS support, and loading it dynamically
 * drags in GnuTLS and eight more libraries whose loading and initialisation
 * cost about 3 ms of every replica's start (measured: an MHD daemon start
 * and stop takes 4.1 ms linked dynamically, 0.9 ms linked statically with
 * these stubs; `make bench`). So libmicrohttpd is linked statically and the
 * GnuTLS functions it references resolve here.
 *
 * Contract: these are only reachable with MHD_USE_TLS, which oneshot never
 * sets. Were it set, every call fails (negative GnuTLS-style error), so
 * MHD_start_daemon refuses to start instead of serving without TLS.
 * gnutls_global_init succeeds because MHD calls it from its constructor. */
#include <stddef.h>
#include <stdlib.h>

#define TLS_STUB_ERROR (-1250) /* GNUTLS_E_UNIMPLEMENTED_FEATURE */

/* gnutls_malloc is a variable (a function pointer) in GnuTLS's API. */
void *(*gnutls_malloc)(size_t) = malloc;

int gnutls_global_init(void);
int gnutls_global_init(void) { return 0; }
void gnutls_global_deinit(void);
void gnutls_global_deinit(void) {}
const char *gnutls_strerror(int error);
const char *gnutls_strerror(int error) {
    (void)error;
    return "TLS is not built into oneshot";
}

/* Everything else MHD references fails. */
#define TLS_STUB(name) \
    int name(void);    \
    int name(void) { return TLS_STUB_ERROR; }
TLS_STUB(gnutls_alpn_set_protocols)
TLS_STUB(gnutls_bye)
TLS_STUB(gnutls_certificate_allocate_credentials)
TLS_STUB(gnutls_certificate_free_credentials)
TLS_STUB(gnutls_certificate_server_set_request)
TLS_STUB(gnutls_certificate_set_dh_params)
TLS_STUB(gnutls_certificate_set_retrieve_function2)
TLS_STUB(gnutls_certificate_set_retrieve_function3)
TLS_STUB(gnutls_certificate_set_x509_key_mem)
TLS_STUB(gnutls_certificate_set_x509_key_mem2)
TLS_STUB(gnutls_certificate_set_x509_trust_mem)
TLS_STUB(gnutls_cipher_get)
TLS_STUB(gnutls_credentials_set)
TLS_STUB(gnutls_deinit)
TLS_STUB(gnutls_dh_params_deinit)
TLS_STUB(gnutls_dh_params_import_pkcs3)
TLS_STUB(gnutls_dh_params_init)
TLS_STUB(gnutls_handshake)
TLS_STUB(gnutls_init)
TLS_STUB(gnutls_priority_deinit)
TLS_STUB(gnutls_priority_init)
TLS_STUB(gnutls_priority_init2) /* libmicrohttpd 1.x (the static build) */
TLS_STUB(gnutls_priority_set)
TLS_STUB(gnutls_protocol_get_version)
TLS_STUB(gnutls_psk_allocate_server_credentials)
TLS_STUB(gnutls_psk_free_server_credentials)
TLS_STUB(gnutls_psk_set_server_credentials_function)
TLS_STUB(gnutls_record_check_pending)
TLS_STUB(gnutls_record_get_direction)
TLS_STUB(gnutls_record_recv)
TLS_STUB(gnutls_record_send)
TLS_STUB(gnutls_session_get_ptr)
TLS_STUB(gnutls_session_set_ptr)
TLS_STUB(gnutls_transport_set_int2)
