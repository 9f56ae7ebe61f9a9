// OpenSSL 3 (Debian's libssl-dev): TLS for wss://, SHA-1 for the WebSocket handshake, and X.509 for the
// security extension's certificates and signed firmware. The calls
// that are macros in OpenSSL's headers are wrapped as functions here (Swift cannot call macros).
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <openssl/rand.h>

static inline long copenssl_set_sni(SSL *ssl, const char *host) { return SSL_set_tlsext_host_name(ssl, host); }
static inline int copenssl_min_tls12(SSL_CTX *ctx) { return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }

// Certificates (the security extension's certificate store): the X509 stack macros as functions.
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/bn.h>
static inline STACK_OF(X509) *copenssl_x509_stack(void) { return sk_X509_new_null(); }
static inline int copenssl_x509_stack_push(STACK_OF(X509) *s, X509 *x) { return sk_X509_push(s, x); }
static inline void copenssl_x509_stack_free(STACK_OF(X509) *s) { sk_X509_pop_free(s, X509_free); }
