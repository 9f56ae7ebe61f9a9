// OpenSSL 3 (Debian's libssl-dev): TLS for wss:// and SHA-1 for the WebSocket handshake. The calls
// that are macros in OpenSSL's headers are wrapped as functions here (Swift cannot call macros).
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <openssl/rand.h>

static inline long copenssl_set_sni(SSL *ssl, const char *host) { return SSL_set_tlsext_host_name(ssl, host); }
static inline int copenssl_min_tls12(SSL_CTX *ctx) { return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
