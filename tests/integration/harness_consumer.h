/*
 * harness_consumer.h: the webhook consumer every integration test that receives
 * deliveries uses, running inside the test process.
 *
 * A small threaded HTTP/1.1 server on 127.0.0.1:0 (plain sockets, or TLS through
 * libssl loaded at run time: CMake links the tests with libcrypto only). It keeps
 * connections alive, reads Content-Length bodies, verifies every delivery's Standard
 * Webhooks signature with sign_verify and the webhook's whsec_ key, records what
 * arrived (time, webhook-id, record, changeVersion, changeType, the answer it gave)
 * and behaves as its it_rule_t says: answer a status, fail the first K deliveries of
 * each record (or of one record), 429/503 with Retry-After, 410, hang until the
 * client gives up, reset the connection in the middle of an answer, delay, answer a
 * big body.
 *
 * A test that only needs a destination outside its process (the real tool an
 * operator would run) starts `breakhook sink` with it_sink_start (harness.h) instead.
 *
 * Threads: one acceptor and one thread per connection. Everything the threads record
 * lives in it_consumer_t under its mu; a test reads those fields only with mu held,
 * or through the functions below, which take it. Every wait is bounded (the timeout
 * times IT_PATIENCE). Functions that cannot go on fail the current cmocka test.
 */
#ifndef BREAKHOOK_TESTS_INTEGRATION_HARNESS_CONSUMER_H
#define BREAKHOOK_TESTS_INTEGRATION_HARNESS_CONSUMER_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/sign.h"
#include "harness_api.h"

#define IT_MAX_REC 8192 /* record ids the consumer keeps per-record state for */

typedef enum { IT_ACT_ANSWER, IT_ACT_HANG, IT_ACT_RESET } it_act_t;

/* How the consumer answers. A delivery "fails" when the rule applies to its record
 * (only_record 0: every record) and it is among the first fail_first deliveries of that
 * record at this consumer (fail_first < 0: every one); a failing delivery gets
 * fail_act (IT_ACT_ANSWER: fail_status, with Retry-After when retry_after >= 0), any other
 * one 200. delay_ms: wait this long before every answer. close_each: answer with
 * "Connection: close" and close, so every delivery needs a new connection. */
typedef struct it_rule {
    int64_t only_record;
    int fail_first;
    it_act_t fail_act;
    int fail_status;
    int retry_after;
    int delay_ms;
    int64_t slow_from, slow_to; /* records in [slow_from, slow_to] wait slow_ms instead */
    int slow_ms;
    bool close_each;
    size_t body_bytes; /* > 0: every answer's body is this many bytes of it_consumer_body_byte() */
} it_rule_t;

#define IT_RULE_OK ((it_rule_t){ 0, 0, IT_ACT_ANSWER, 0, -1, 0, 0, 0, 0, false, 0 })

typedef struct it_delivery {
    uint64_t at_ms;        /* arrival, monotonic (it_now_ms) */
    uint64_t answered_ms;  /* 0 until answered (or given up) */
    int64_t wall_s;        /* wall clock at arrival */
    char method[8];
    char path[128];
    char id[160];          /* webhook-id */
    char ts_text[32];      /* webhook-timestamp */
    int64_t ts;
    int verify;            /* sign_verify's answer */
    char ctype[96];
    char ua[96];
    bool chunked;
    char change_type[24];
    char version[24];
    uint64_t v;
    int64_t record;
    int nth;               /* 1-based delivery of this record at this consumer */
    bool failed_on_purpose;
    int status;            /* answered; 0: hung or reset */
    bool overlap;          /* another delivery of the record was in flight at arrival */
    char *body;
    size_t body_len;
} it_delivery_t;

typedef struct it_ack { /* a 2xx answer, in the order the consumer gave them */
    int64_t record;
    uint64_t v;
    uint64_t ms;
} it_ack_t;

typedef struct it_consumer it_consumer_t;

struct it_consumer {
    int lfd, port;
    SSL_CTX *ctx;                 /* TLS when set */
    pthread_t acceptor;
    bool acceptor_started;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    it_rule_t rule;
    unsigned char key[SIGN_KEY_MAX];
    size_t key_len;
    it_delivery_t *d;
    size_t n, cap;
    it_ack_t *acks;                  /* 2xx answers, in the order they were given */
    size_t n_acks, cap_acks;
    int per_record[IT_MAX_REC];
    int inflight[IT_MAX_REC];
    uint64_t acked_max[IT_MAX_REC];
    uint64_t arrived_max[IT_MAX_REC];
    int inflight_all, inflight_max;
    size_t connections, tls_failures, malformed, bad_signatures;
    size_t tls_resumed;          /* TLS handshakes that resumed an earlier session */
    struct it_cconn *conns;     /* one thread each, joined by it_consumer_free */
};

/* A consumer on 127.0.0.1:0 answering as rule says; TLS when ctx is given (then owned
 * by the consumer). Fails the test when it cannot listen. */
it_consumer_t *it_consumer_new(it_rule_t rule, SSL_CTX *ctx);
/* Stops the threads, closes every connection, frees everything. NULL: a no-op. */
void it_consumer_free(it_consumer_t *c);
/* The webhook's whsec_ key, against which every later delivery is verified; fails the
 * test when it does not parse. */
void it_consumer_set_key(it_consumer_t *c, const char *whsec);

/* A condition on what the consumer recorded, evaluated with its mu held. */
typedef bool (*it_consumer_pred_t)(it_consumer_t *c, const void *arg);
/* Waits until pred holds, at most timeout_ms * IT_PATIENCE; whether it held. */
bool it_consumer_wait(it_consumer_t *c, it_consumer_pred_t pred, const void *arg,
                      unsigned timeout_ms);

typedef struct it_rec_version {
    int64_t record;
    uint64_t v;
} it_rec_version_t;

/* Every record i in 1..n has its version v[i] (0: nothing expected) acknowledged. */
typedef struct it_finals {
    const uint64_t *v;
    size_t n;
} it_finals_t;

bool it_pred_acks_at_least(it_consumer_t *c, const void *arg);       /* const size_t * */
bool it_pred_deliveries_at_least(it_consumer_t *c, const void *arg); /* const size_t * */
bool it_pred_arrived(it_consumer_t *c, const void *arg);   /* it_rec_version_t: arrived */
bool it_pred_acked(it_consumer_t *c, const void *arg);     /* it_rec_version_t: 2xx given */
bool it_pred_finals(it_consumer_t *c, const void *arg);    /* it_finals_t */

/* The index of record in the per-record arrays; 0 (shared) for one outside
 * 1..IT_MAX_REC-1. */
size_t it_consumer_slot(int64_t record);
/* The number of deliveries and of 2xx answers so far. */
size_t it_consumer_count(it_consumer_t *c);
size_t it_consumer_acks(it_consumer_t *c);
/* A copy of the deliveries (malloc'd, caller frees; the bodies are not copied and stay
 * valid until it_consumer_free). */
it_delivery_t *it_consumer_snapshot(it_consumer_t *c, size_t *n);
/* Fails the test (naming what) unless every delivery's signature verified and each was
 * a POST of JSON with a record id and a changeVersion, not chunked, and no request was
 * malformed. */
void it_consumer_expect_signed(it_consumer_t *c, const char *what);
/* Byte i of a big answer body (rule.body_bytes): a pattern, so a test can tell the
 * first 4 KiB apart from any other 4 KiB. */
char it_consumer_body_byte(size_t i);

/* Creates a webhook on s to c (path /hook; https when c serves TLS), with ext_refs as
 * it_webhook_create, and gives c its key. */
void it_consumer_webhook(it_srv_t *s, it_consumer_t *c, const char *ext_refs, it_webhook_t *out);

/* Creates a new temporary directory in dir (n bytes) holding a test CA (ca.pem) and a
 * server certificate for IP 127.0.0.1 (srv.pem, srv.key), made with the openssl
 * command; fails the test when it cannot. The caller removes it (it_rmtree). */
void it_tls_certs_make(char *dir, size_t n);
/* A TLS server context with dir's srv.pem and srv.key, for it_consumer_new; fails the
 * test when libssl cannot be loaded or the files do not load. */
SSL_CTX *it_consumer_tls_ctx(const char *dir);

#endif
