/*
 * Peer contender: librdkafka's C API, no binding in between.
 *
 *   librdkafka_bench --bootstrap HOST:PORT --scenario NAME --topic TOPIC
 *                    --size BYTES --count N [--linger-ms L]
 *
 * Links against the librdkafka shipped in the confluent-kafka wheel; no headers are
 * needed because the few prototypes used are declared below (the C ABI is stable).
 * Build (build-librdkafka-bench.sh does this):
 *   LIBDIR=<site-packages>/confluent_kafka.libs; LIB=$(basename $LIBDIR/librdkafka-*.so.1)
 *   gcc -O2 -std=gnu11 -o librdkafka_bench librdkafka_bench.c \
 *       -L$LIBDIR -l:$LIB -Wl,-rpath,$LIBDIR -lm
 *
 * Diagnostics go to stderr; exactly one JSON result line goes to stdout.
 * BENCH_FETCH_WAIT_MS, when set, overrides the consumers' fetch.wait.max.ms.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- the part of rdkafka.h this program uses ---- */
typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_topic_conf_s rd_kafka_topic_conf_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_topic_partition_list_s rd_kafka_topic_partition_list_t;
typedef struct rd_kafka_topic_partition_s rd_kafka_topic_partition_t;
struct rd_kafka_metadata;
typedef int rd_kafka_resp_err_t;

typedef struct rd_kafka_message_s {
    rd_kafka_resp_err_t err;
    rd_kafka_topic_t *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *_private;
} rd_kafka_message_t;

enum { RD_KAFKA_PRODUCER = 0, RD_KAFKA_CONSUMER = 1 };
enum { RD_KAFKA_CONF_OK = 0 };
#define RD_KAFKA_PARTITION_UA ((int32_t)-1)
#define RD_KAFKA_MSG_F_COPY 0x2
#define RD_KAFKA_RESP_ERR__QUEUE_FULL (-184)
#define RD_KAFKA_RESP_ERR__PARTITION_EOF (-191)
#define RD_KAFKA_RESP_ERR__FATAL (-150)

rd_kafka_conf_t *rd_kafka_conf_new(void);
int rd_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                      char *errstr, size_t errstr_size);
void rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t *conf,
                                 void (*cb)(rd_kafka_t *rk, const rd_kafka_message_t *m,
                                            void *opaque));
rd_kafka_t *rd_kafka_new(int type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);
void rd_kafka_destroy(rd_kafka_t *rk);
rd_kafka_topic_t *rd_kafka_topic_new(rd_kafka_t *rk, const char *topic,
                                     rd_kafka_topic_conf_t *conf);
void rd_kafka_topic_destroy(rd_kafka_topic_t *rkt);
int rd_kafka_produce(rd_kafka_topic_t *rkt, int32_t partition, int msgflags, void *payload,
                     size_t len, const void *key, size_t keylen, void *msg_opaque);
rd_kafka_resp_err_t rd_kafka_last_error(void);
const char *rd_kafka_err2str(rd_kafka_resp_err_t err);
int rd_kafka_poll(rd_kafka_t *rk, int timeout_ms);
rd_kafka_resp_err_t rd_kafka_flush(rd_kafka_t *rk, int timeout_ms);
rd_kafka_resp_err_t rd_kafka_metadata(rd_kafka_t *rk, int all_topics, rd_kafka_topic_t *only_rkt,
                                      const struct rd_kafka_metadata **metadatap, int timeout_ms);
void rd_kafka_metadata_destroy(const struct rd_kafka_metadata *metadata);
rd_kafka_resp_err_t rd_kafka_poll_set_consumer(rd_kafka_t *rk);
rd_kafka_topic_partition_list_t *rd_kafka_topic_partition_list_new(int size);
rd_kafka_topic_partition_t *rd_kafka_topic_partition_list_add(
    rd_kafka_topic_partition_list_t *list, const char *topic, int32_t partition);
void rd_kafka_topic_partition_list_destroy(rd_kafka_topic_partition_list_t *list);
rd_kafka_resp_err_t rd_kafka_subscribe(rd_kafka_t *rk,
                                       const rd_kafka_topic_partition_list_t *topics);
rd_kafka_message_t *rd_kafka_consumer_poll(rd_kafka_t *rk, int timeout_ms);
rd_kafka_resp_err_t rd_kafka_consumer_close(rd_kafka_t *rk);
void rd_kafka_message_destroy(rd_kafka_message_t *m);
const char *rd_kafka_message_errstr(const rd_kafka_message_t *m);
rd_kafka_queue_t *rd_kafka_queue_get_consumer(rd_kafka_t *rk);
void rd_kafka_queue_destroy(rd_kafka_queue_t *q);
ssize_t rd_kafka_consume_batch_queue(rd_kafka_queue_t *q, int timeout_ms,
                                     rd_kafka_message_t **msgs, size_t size);
/* ---- end of rdkafka.h part ---- */

#define BATCH 1000
/* Give up when nothing moves for this long (group join included). */
#define STALL_SECS 60.0

static struct {
    const char *bootstrap, *scenario, *topic;
    long size, count, linger_ms;
} opt = {.linger_ms = 5, .size = -1, .count = -1};

static void fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        fail(1, "config %s=%s: %s", name, value, err);
}

/* Delivery reports are served on the thread calling poll/flush, so plain counters do. */
static long acked, failed;
static rd_kafka_resp_err_t first_error;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err == 0) {
        acked++;
    } else {
        if (failed++ == 0) first_error = m->err;
    }
}

static rd_kafka_t *new_producer(long linger_ms, rd_kafka_topic_t **rkt) {
    char buf[64], err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", opt.bootstrap);
    set(conf, "acks", "all");
    /* kafka1c's default with acks=all: the same delivery guarantees on both sides. */
    set(conf, "enable.idempotence", "true");
    set(conf, "compression.type", "none");
    set(conf, "batch.size", "1000000");
    snprintf(buf, sizeof buf, "%ld", linger_ms);
    set(conf, "linger.ms", buf);
    /* The async scenario's whole count must fit the local queue. */
    snprintf(buf, sizeof buf, "%ld", opt.count + BATCH > 100000 ? opt.count + BATCH : 100000);
    set(conf, "queue.buffering.max.messages", buf);
    set(conf, "queue.buffering.max.kbytes", "2097151");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) fail(1, "producer: %s", err);
    *rkt = rd_kafka_topic_new(rk, opt.topic, NULL);
    if (!*rkt) fail(1, "topic %s: %s", opt.topic, rd_kafka_err2str(rd_kafka_last_error()));
    return rk;
}

static void produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, char *value, size_t len) {
    /* Copied like a real caller's buffer would be; a full queue is back-pressure. */
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value, len, NULL, 0,
                            NULL) == -1) {
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) fail(1, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 10);
    }
}

static void wait_acks(rd_kafka_t *rk, long expected) {
    double deadline = now() + STALL_SECS;
    while (acked + failed < expected) {
        rd_kafka_flush(rk, 1000);
        if (now() > deadline) fail(1, "timed out waiting for acks (%ld/%ld)", acked, expected);
    }
    if (failed) fail(1, "%ld deliveries failed, first: %s", failed, rd_kafka_err2str(first_error));
}

/* Metadata, the connection and the idempotent producer id are set up before the clock starts:
 * one acknowledged record (not counted). librdkafka sometimes waits 500 ms for its first
 * producer id, which would otherwise land inside the timing. */
static void warm_up(rd_kafka_t *rk, rd_kafka_topic_t *rkt) {
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (e) fail(1, "metadata: %s", rd_kafka_err2str(e));
    rd_kafka_metadata_destroy(md);
    static char one[] = "warm-up";
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, one, sizeof one - 1,
                            NULL, 0, NULL) == -1)
        rd_kafka_poll(rk, 10);
    wait_acks(rk, 1);
    acked = 0;
}

static void close_producer(rd_kafka_t *rk, rd_kafka_topic_t *rkt) {
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

static rd_kafka_t *new_consumer(void) {
    char group[160], err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(group, sizeof group, "peer-bench-c-%s-%d-%.0f", opt.scenario, (int)getpid(),
             now() * 1e6);
    set(conf, "bootstrap.servers", opt.bootstrap);
    set(conf, "group.id", group);
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    /* Tansu answers the second JoinGroup after about half the session timeout; a shorter
     * one only shortens the unmeasured join. */
    set(conf, "session.timeout.ms", "10000");
    const char *fw = getenv("BENCH_FETCH_WAIT_MS");
    if (fw && *fw) set(conf, "fetch.wait.max.ms", fw);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) fail(1, "consumer: %s", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, opt.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) fail(1, "subscribe: %s", rd_kafka_err2str(e));
    return rk;
}

static void close_consumer(rd_kafka_t *rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* 1 for a data message; consumer events are logged and skipped, fatal ones end the run. */
static int is_data(rd_kafka_message_t *m) {
    if (!m) return 0;
    if (m->err == 0) return 1;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) fail(1, "consumer: %s", rd_kafka_message_errstr(m));
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        fprintf(stderr, "consumer event: %s\n", rd_kafka_message_errstr(m));
    return 0;
}

struct result {
    long count;
    double secs;
    double *lat; /* seconds per message, or NULL */
    long nlat;
};

static char *make_value(void) {
    char *v = malloc(opt.size + 1);
    if (!v) fail(1, "out of memory");
    memset(v, 'x', opt.size);
    v[opt.size] = 0;
    return v;
}

static struct result produce_async(void) {
    rd_kafka_topic_t *rkt;
    rd_kafka_t *rk = new_producer(opt.linger_ms, &rkt);
    char *value = make_value();
    warm_up(rk, rkt);
    double t0 = now();
    /* Delivery reports are served by flush, or by poll on a full queue. */
    for (long i = 0; i < opt.count; i++) produce_one(rk, rkt, value, opt.size);
    wait_acks(rk, opt.count);
    struct result r = {acked, now() - t0, NULL, 0};
    close_producer(rk, rkt);
    free(value);
    return r;
}

static struct result produce_sync(void) {
    rd_kafka_topic_t *rkt;
    rd_kafka_t *rk = new_producer(0, &rkt);
    char *value = make_value();
    double *lat = malloc(sizeof(double) * opt.count);
    warm_up(rk, rkt);
    double t0 = now();
    for (long i = 0; i < opt.count; i++) {
        double s = now();
        produce_one(rk, rkt, value, opt.size);
        wait_acks(rk, i + 1);
        lat[i] = now() - s;
    }
    struct result r = {acked, now() - t0, lat, opt.count};
    close_producer(rk, rkt);
    free(value);
    return r;
}

static struct result produce_batch(void) {
    rd_kafka_topic_t *rkt;
    rd_kafka_t *rk = new_producer(opt.linger_ms, &rkt);
    char *value = make_value();
    warm_up(rk, rkt);
    long done = 0;
    double t0 = now();
    while (done < opt.count) {
        long n = opt.count - done < BATCH ? opt.count - done : BATCH;
        for (long i = 0; i < n; i++) produce_one(rk, rkt, value, opt.size);
        done += n;
        wait_acks(rk, done);
    }
    struct result r = {acked, now() - t0, NULL, 0};
    close_producer(rk, rkt);
    free(value);
    return r;
}

static struct result consume_poll(void) {
    rd_kafka_t *rk = new_consumer();
    long got = 0;
    double t0 = 0, last = now();
    while (got < opt.count) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (is_data(m)) {
            if (got == 0) {
                t0 = now();
                fprintf(stderr, "first message after %.3fs (group join + fetch)\n", t0 - last);
            }
            got++;
            last = now();
        } else if (now() - last > STALL_SECS) {
            fail(1, "stalled at %ld/%ld messages", got, opt.count);
        }
        if (m) rd_kafka_message_destroy(m);
    }
    struct result r = {got, now() - t0, NULL, 0};
    close_consumer(rk);
    return r;
}

static struct result consume_batch(void) {
    rd_kafka_t *rk = new_consumer();
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *msgs[BATCH];
    long got = 0;
    double t0 = 0, last = now();
    while (got < opt.count) {
        size_t want = opt.count - got < BATCH ? (size_t)(opt.count - got) : BATCH;
        ssize_t n = rd_kafka_consume_batch_queue(q, 1000, msgs, want);
        if (n < 0) fail(1, "consume_batch_queue: %s", rd_kafka_err2str(rd_kafka_last_error()));
        long data = 0;
        for (ssize_t i = 0; i < n; i++) {
            data += is_data(msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        if (data) {
            if (got == 0) {
                t0 = now();
                fprintf(stderr, "first batch after %.3fs (group join + fetch)\n", t0 - last);
            }
            got += data;
            last = now();
        } else if (now() - last > STALL_SECS) {
            fail(1, "stalled at %ld/%ld messages", got, opt.count);
        }
    }
    struct result r = {got, now() - t0, NULL, 0};
    rd_kafka_queue_destroy(q);
    close_consumer(rk);
    return r;
}

/* A run id and sequence number lead the value when they fit, so each round trip is
 * matched to its own message (and a non-empty topic is detected). */
static void e2e_value(char *v, const char *run, long seq) {
    char tag[96];
    int n = snprintf(tag, sizeof tag, "%s-%ld-", run, seq);
    memset(v, 'x', opt.size);
    if (n <= opt.size) memcpy(v, tag, n);
}

static double round_trip(rd_kafka_t *p, rd_kafka_topic_t *rkt, rd_kafka_t *c, char *v,
                         const char *run, long seq) {
    e2e_value(v, run, seq);
    double s = now(), deadline = s + STALL_SECS;
    produce_one(p, rkt, v, opt.size);
    for (;;) {
        rd_kafka_poll(p, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (is_data(m)) {
            double took = now() - s;
            int same = m->len == (size_t)opt.size && memcmp(m->payload, v, opt.size) == 0;
            rd_kafka_message_destroy(m);
            if (!same) fail(1, "round trip %ld: unexpected message (topic not empty?)", seq);
            return took;
        }
        if (m) rd_kafka_message_destroy(m);
        if (now() > deadline) fail(1, "round trip %ld: message never arrived", seq);
    }
}

static struct result e2e(void) {
    rd_kafka_t *c = new_consumer();
    rd_kafka_topic_t *rkt;
    rd_kafka_t *p = new_producer(0, &rkt);
    char *v = make_value();
    char run[64];
    snprintf(run, sizeof run, "%d.%.0f", (int)getpid(), now() * 1e6);
    double *lat = malloc(sizeof(double) * opt.count);
    double w = now();
    round_trip(p, rkt, c, v, run, -1); /* warm-up: group join, assignment, connections */
    fprintf(stderr, "warm-up round trip took %.3fs\n", now() - w);
    double t0 = now();
    for (long i = 0; i < opt.count; i++) lat[i] = round_trip(p, rkt, c, v, run, i);
    struct result r = {opt.count, now() - t0, lat, opt.count};
    wait_acks(p, opt.count + 1);
    close_producer(p, rkt);
    close_consumer(c);
    free(v);
    return r;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank, the same rule as the Python and Rust contenders. */
static void print_percentile(double *sorted, long n, double q) {
    if (n <= 0) {
        fputs("null", stdout);
        return;
    }
    long i = (long)ceil(q * n) - 1;
    if (i < 0) i = 0;
    if (i > n - 1) i = n - 1;
    printf("%.3f", sorted[i] * 1e6);
}

static long parse_long(const char *name, const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s) fail(2, "%s: not a number: %s", name, s);
    return v;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) fail(2, "%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--bootstrap")) opt.bootstrap = v;
        else if (!strcmp(a, "--scenario")) opt.scenario = v;
        else if (!strcmp(a, "--topic")) opt.topic = v;
        else if (!strcmp(a, "--size")) opt.size = parse_long(a, v);
        else if (!strcmp(a, "--count")) opt.count = parse_long(a, v);
        else if (!strcmp(a, "--linger-ms")) opt.linger_ms = parse_long(a, v);
        else fail(2, "unknown argument %s", a);
    }
    if (!opt.bootstrap || !opt.scenario || !opt.topic || opt.size < 0 || opt.count <= 0)
        fail(2, "usage: %s --bootstrap HOST:PORT --scenario NAME --topic TOPIC --size BYTES "
                "--count N [--linger-ms L]", argv[0]);

    struct result r;
    if (!strcmp(opt.scenario, "produce-async")) r = produce_async();
    else if (!strcmp(opt.scenario, "produce-sync")) r = produce_sync();
    else if (!strcmp(opt.scenario, "produce-batch")) r = produce_batch();
    else if (!strcmp(opt.scenario, "consume-poll")) r = consume_poll();
    else if (!strcmp(opt.scenario, "consume-batch")) r = consume_batch();
    else if (!strcmp(opt.scenario, "e2e")) r = e2e();
    else fail(2, "unsupported scenario %s", opt.scenario);

    if (r.lat) qsort(r.lat, r.nlat, sizeof(double), cmp_double);
    printf("{\"scenario\": \"%s\", \"count\": %ld, \"secs\": %.9f, \"p50_us\": ", opt.scenario,
           r.count, r.secs);
    print_percentile(r.lat, r.lat ? r.nlat : 0, 0.50);
    fputs(", \"p99_us\": ", stdout);
    print_percentile(r.lat, r.lat ? r.nlat : 0, 0.99);
    fputs("}\n", stdout);
    fflush(stdout);
    free(r.lat);
    return 0;
}
